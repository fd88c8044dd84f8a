package catalog

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// ArtifactFileName is the name an artifact's file is listed under in its
// checksum file: the last segment of the URL's path, unescaped
// (…/download/v1.30.4%2Bk3s1/k3s-arm64 is "k3s-arm64").
func ArtifactFileName(artifactURL string) (string, error) {
	u, err := url.Parse(artifactURL)
	if err != nil {
		return "", err
	}
	name := path.Base(u.Path)
	if name == "." || name == "/" {
		return "", fmt.Errorf("%s names no file", u.Redacted())
	}
	return name, nil
}

// ChecksumFor finds the SHA-256 of fileName in the content of a checksum
// file. Upstreams publish two formats, and both are read:
//
//   - a list, one "<sha256>  <file name>" line per file, as sha256sum
//     writes it (the name may start with "*" for binary mode or carry a
//     directory): k3s's and rke2's sha256sum-<arch>.txt, containerd's
//     *.sha256sum, runc's runc.sha256sum, the CNI plugins' *.sha256. The
//     BSD form "SHA256 (<file name>) = <sha256>" is read too.
//   - a bare hash and nothing else: dl.k8s.io's <binary>.sha256 (kubeadm,
//     kubelet, kubectl). It names no file; it is the checksum of the file
//     it sits beside, whatever fileName is.
//
// The hash is returned in lower case.
func ChecksumFor(content []byte, fileName string) (string, error) {
	var bare []string
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "SHA256 ("); ok {
			name, sum, ok := strings.Cut(rest, ") = ")
			if ok && reSHA256.MatchString(sum) && sameFile(name, fileName) {
				return strings.ToLower(sum), nil
			}
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || !reSHA256.MatchString(fields[0]) {
			continue
		}
		if len(fields) == 1 {
			bare = append(bare, fields[0])
			continue
		}
		name := strings.TrimPrefix(strings.Join(fields[1:], " "), "*")
		if sameFile(name, fileName) {
			return strings.ToLower(fields[0]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read checksum file: %w", err)
	}
	if len(bare) == 1 {
		return strings.ToLower(bare[0]), nil
	}
	return "", fmt.Errorf("the checksum file lists no sha256 for %q", fileName)
}

func sameFile(listed, want string) bool {
	return listed == want || path.Base(strings.TrimPrefix(listed, "./")) == want
}
