package catalog

import (
	"strings"
	"testing"
)

func TestChecksumFor(t *testing.T) {
	a, b, c := digestOf("a"), digestOf("b"), digestOf("c")
	// k3s's sha256sum-arm64.txt: one "<sha256>  <file>" line per asset.
	k3sList := a + "  k3s-arm64\n" + b + "  k3s-airgap-images-arm64.tar.gz\n" + c + "  k3s-airgap-images-arm64.tar.zst\n"
	tests := []struct {
		name, content, file, want, err string
	}{
		{"list", k3sList, "k3s-arm64", a, ""},
		{"list, another entry", k3sList, "k3s-airgap-images-arm64.tar.zst", c, ""},
		{"list without the file", k3sList, "k3s", "", `lists no sha256 for "k3s"`},
		{"dl.k8s.io: the bare hash", a + "\n", "kubeadm", a, ""},
		{"bare hash without a newline", strings.ToUpper(a), "kubelet", a, ""},
		{"binary mode marker", a + " *runc.amd64\n" + b + " *runc.arm64\n", "runc.arm64", b, ""},
		{"path in the list", a + "  ./bin/rke2.linux-amd64.tar.gz\n", "rke2.linux-amd64.tar.gz", a, ""},
		{"comments and blank lines", "# sha256\n\n" + a + "  crictl-v1.31.1-linux-amd64.tar.gz\n", "crictl-v1.31.1-linux-amd64.tar.gz", a, ""},
		{"BSD form", "SHA256 (containerd-1.7.22-linux-amd64.tar.gz) = " + b + "\n", "containerd-1.7.22-linux-amd64.tar.gz", b, ""},
		{"two bare hashes are ambiguous", a + "\n" + b + "\n", "x", "", "lists no sha256"},
		{"not a hash", "deadbeef  k3s\n", "k3s", "", "lists no sha256"},
		{"empty", "", "k3s", "", "lists no sha256"},
	}
	for _, tt := range tests {
		got, err := ChecksumFor([]byte(tt.content), tt.file)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: ChecksumFor = %q, %v; want an error about %q", tt.name, got, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("%s: ChecksumFor = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestArtifactFileName(t *testing.T) {
	for u, want := range map[string]string{
		"https://github.com/k3s-io/k3s/releases/download/v1.30.4%2Bk3s1/k3s-arm64": "k3s-arm64",
		"https://dl.k8s.io/release/v1.30.4/bin/linux/amd64/kubeadm":                "kubeadm",
		"https://example.com/a%20b.tgz?x=1":                                        "a b.tgz",
	} {
		if got, err := ArtifactFileName(u); err != nil || got != want {
			t.Errorf("ArtifactFileName(%s) = %q, %v; want %q", u, got, err, want)
		}
	}
	if _, err := ArtifactFileName("https://example.com/"); err == nil {
		t.Error("a URL without a file name passed")
	}
}
