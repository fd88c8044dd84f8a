package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

var created = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testManifest() Manifest {
	return Manifest{
		Name:    "store-eu",
		Created: created,
		Definition: ClusterDefinition{
			Profiles: []v1.RenderedProfile{{
				Profile: "edge-k3s", Version: "1.2.0", Type: v1.ProfileFull, Hash: "sha256:p",
				Layers: []v1.RenderedLayer{
					{Name: "k3s", Layer: v1.LayerK8s, Type: v1.PackDistro, Pack: "k3s", Version: "1.30.4+k3s1", Values: "cluster: {}\n", Hash: "h1",
						Artifacts: []v1.Artifact{{Name: "k3s", Arch: "amd64", URL: "https://example.com/k3s"}}},
					{Name: "hello", Layer: v1.LayerAddon, Type: v1.PackHelm, Version: "0.1.0", Hash: "h2",
						Chart: &v1.ChartRef{Repository: "https://charts.example.com", Name: "hello", Version: "0.1.0"}},
				},
			}},
			Variables: map[string]string{"vip": "10.0.0.10"},
		},
	}
}

// fixture writes two content files and returns the files map for Write.
func fixture(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"artifacts/k3s/1.30.4+k3s1/amd64/k3s": "#!/bin/sh\necho k3s binary\n",
		"charts/hello-0.1.0.tgz":              "fake chart archive",
	}
	out := map[string]string{}
	for p, content := range files {
		local := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		out[p] = local
	}
	return out
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func keys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func writeBundle(t *testing.T, priv ed25519.PrivateKey, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	if err := Write(w, testManifest(), fixture(t), priv); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

func open(data []byte, trusted ...ed25519.PublicKey) (*Bundle, error) {
	return OpenReader(bytes.NewReader(data), int64(len(data)), "test.tar", trusted)
}

func TestRoundTrip(t *testing.T) {
	pub, priv := keys(t)
	other, _ := keys(t)
	for _, gz := range []bool{false, true} {
		data := writeBundle(t, priv, gz)
		b, err := open(data, other, pub)
		if err != nil {
			t.Fatalf("gzip=%v: Open: %v", gz, err)
		}
		if b.KeyID != KeyID(pub) {
			t.Errorf("KeyID = %s, want %s", b.KeyID, KeyID(pub))
		}
		m := b.Manifest
		if m.Name != "store-eu" || !m.Created.Equal(created) || m.SchemaVersion != SchemaVersion {
			t.Errorf("manifest head = %q %v %d", m.Name, m.Created, m.SchemaVersion)
		}
		if !reflect.DeepEqual(m.Definition, testManifest().Definition) {
			t.Errorf("definition changed:\n%+v", m.Definition)
		}
		wantFiles := []File{
			{Path: "artifacts/k3s/1.30.4+k3s1/amd64/k3s", Size: 26, SHA256: sha("#!/bin/sh\necho k3s binary\n")},
			{Path: "charts/hello-0.1.0.tgz", Size: 18, SHA256: sha("fake chart archive")},
		}
		if !reflect.DeepEqual(m.Files, wantFiles) {
			t.Errorf("files = %+v\nwant %+v", m.Files, wantFiles)
		}

		dir := t.TempDir()
		if err := b.Extract(dir); err != nil {
			t.Fatalf("Extract: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "artifacts/k3s/1.30.4+k3s1/amd64/k3s"))
		if err != nil || string(got) != "#!/bin/sh\necho k3s binary\n" {
			t.Errorf("extracted artifact = %q, %v", got, err)
		}
		var back Manifest
		raw, err := os.ReadFile(filepath.Join(dir, ManifestPath))
		if err != nil || json.Unmarshal(raw, &back) != nil || back.Name != "store-eu" {
			t.Errorf("extracted manifest = %s, %v", raw, err)
		}
		if _, err := os.Stat(filepath.Join(dir, SignaturePath)); err != nil {
			t.Errorf("signature not extracted: %v", err)
		}
	}
}

// The same inputs make the same archive, so a bundle can be rebuilt and
// compared.
func TestWriteIsDeterministic(t *testing.T) {
	_, priv := keys(t)
	files := fixture(t)
	var a, b bytes.Buffer
	if err := Write(&a, testManifest(), files, priv); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, testManifest(), files, priv); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of the same bundle differ")
	}
}

// rewrite copies a plain-tar bundle entry by entry, letting edit change an
// entry's content (nil drops the entry) or add entries after the last.
func rewrite(t *testing.T, data []byte, edit func(name string, content []byte) []byte, extra map[string][]byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(tr)
		content = edit(hdr.Name, content)
		if content == nil {
			continue
		}
		hdr.Size = int64(len(content))
		tw.WriteHeader(hdr)
		tw.Write(content)
	}
	for name, content := range extra {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(content)), Mode: 0o644})
		tw.Write(content)
	}
	tw.Close()
	return out.Bytes()
}

func TestOpenRefuses(t *testing.T) {
	pub, priv := keys(t)
	wrong, _ := keys(t)
	good := writeBundle(t, priv, false)
	goodGz := writeBundle(t, priv, true)
	same := func(_ string, c []byte) []byte { return c }

	// resign makes a bundle whose manifest is signed by the right key but
	// does not describe the content: only the content check can catch it.
	resign := func(edit func(*Manifest)) []byte {
		return rewrite(t, good, func(name string, c []byte) []byte {
			switch name {
			case ManifestPath:
				var m Manifest
				json.Unmarshal(c, &m)
				edit(&m)
				c, _ = json.Marshal(m)
				return c
			case SignaturePath:
				return nil // replaced below
			}
			return c
		}, nil)
	}
	resigned := func(edit func(*Manifest)) []byte {
		data := resign(edit)
		// Put a fresh signature right after the manifest.
		tr := tar.NewReader(bytes.NewReader(data))
		var out bytes.Buffer
		tw := tar.NewWriter(&out)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			c, _ := io.ReadAll(tr)
			tw.WriteHeader(hdr)
			tw.Write(c)
			if hdr.Name == ManifestPath {
				sig, _ := json.Marshal(Signature{Algorithm: Algorithm, KeyID: KeyID(pub), Signature: ed25519.Sign(priv, signedMessage(c))})
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: SignaturePath, Size: int64(len(sig)), Mode: 0o644})
				tw.Write(sig)
			}
		}
		tw.Close()
		return out.Bytes()
	}

	tests := []struct {
		name    string
		data    []byte
		trusted []ed25519.PublicKey
		is      error
		msg     string
	}{
		{"wrong key", good, []ed25519.PublicKey{wrong}, ErrUntrusted,
			`bundle "test.tar": signature does not verify with any trusted key (it names key ` + KeyID(pub)},
		{"no keys", good, nil, ErrUntrusted, "no trusted keys given"},
		{"tampered manifest", rewrite(t, good, func(name string, c []byte) []byte {
			if name == ManifestPath {
				return bytes.Replace(c, []byte("10.0.0.10"), []byte("10.6.6.66"), 1)
			}
			return c
		}, nil), []ed25519.PublicKey{pub}, ErrUntrusted, "signature does not verify with any trusted key"},
		{"tampered file", rewrite(t, good, func(name string, c []byte) []byte {
			if strings.HasSuffix(name, "/k3s") {
				return bytes.Replace(c, []byte("k3s binary"), []byte("evil stuff"), 1)
			}
			return c
		}, nil), []ed25519.PublicKey{pub}, ErrCorrupt, "artifacts/k3s/1.30.4+k3s1/amd64/k3s: sha256 "},
		{"file grown", rewrite(t, good, func(name string, c []byte) []byte {
			if strings.HasPrefix(name, "charts/") {
				return append(c, '!')
			}
			return c
		}, nil), []ed25519.PublicKey{pub}, ErrCorrupt, "charts/hello-0.1.0.tgz is 19 bytes, the manifest says 18"},
		{"file dropped", rewrite(t, good, func(name string, c []byte) []byte {
			if strings.HasPrefix(name, "charts/") {
				return nil
			}
			return c
		}, nil), []ed25519.PublicKey{pub}, ErrCorrupt, "charts/hello-0.1.0.tgz is missing"},
		{"file added", rewrite(t, good, same, map[string][]byte{"artifacts/extra": []byte("x")}),
			[]ed25519.PublicKey{pub}, ErrCorrupt, "artifacts/extra is not in the signed manifest"},
		{"signature missing", rewrite(t, good, func(name string, c []byte) []byte {
			if name == SignaturePath {
				return nil
			}
			return c
		}, nil), []ed25519.PublicKey{pub}, ErrCorrupt, `entry "artifacts/k3s/1.30.4+k3s1/amd64/k3s" where bundle.sig should be`},
		{"not a bundle", rewrite(t, good, func(name string, c []byte) []byte {
			if name == ManifestPath {
				return nil
			}
			return c
		}, nil), []ed25519.PublicKey{pub}, ErrCorrupt, "not an outpost bundle"},
		{"truncated tar", good[:len(good)-2048], []ed25519.PublicKey{pub}, ErrCorrupt, "truncated"},
		{"truncated gzip", goodGz[:len(goodGz)-30], []ed25519.PublicKey{pub}, ErrCorrupt, "truncated"},
		{"empty file", nil, []ed25519.PublicKey{pub}, ErrCorrupt, "not a tar archive"},
		{"signed manifest with a traversal path", resigned(func(m *Manifest) {
			m.Files[0].Path = "artifacts/../../etc/passwd"
		}), []ed25519.PublicKey{pub}, ErrCorrupt, `path "artifacts/../../etc/passwd" is not a clean relative path`},
		{"signed manifest with a wrong hash", resigned(func(m *Manifest) {
			m.Files[1].SHA256 = strings.Repeat("0", 64)
		}), []ed25519.PublicKey{pub}, ErrCorrupt, "charts/hello-0.1.0.tgz: sha256"},
		{"future schema", resigned(func(m *Manifest) { m.SchemaVersion = 2 }), []ed25519.PublicKey{pub}, ErrCorrupt, "schema version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := open(tt.data, tt.trusted...)
			if err == nil {
				t.Fatalf("Open accepted the bundle: %+v", b.Manifest)
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v\nwant %v containing %q", err, tt.is, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), `bundle "test.tar": `) {
				t.Errorf("err %q does not name the bundle", err)
			}
		})
	}
}

// A bundle that changes between Open and Extract leaves nothing behind.
func TestExtractRechecks(t *testing.T) {
	pub, priv := keys(t)
	data := writeBundle(t, priv, false)
	src := bytes.Clone(data)
	b, err := OpenReader(bytes.NewReader(src), int64(len(src)), "test.tar", []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte("fake chart archive"))
	src[i] = 'F'
	dir := t.TempDir()
	if err := b.Extract(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Extract = %v, want ErrCorrupt", err)
	}
	var left []string
	filepath.Walk(dir, func(p string, info os.FileInfo, _ error) error {
		if info != nil && !info.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) != 0 {
		t.Errorf("files left after a failed extract: %v", left)
	}
}

func TestWriteRefuses(t *testing.T) {
	_, priv := keys(t)
	files := fixture(t)
	tests := []struct {
		name  string
		m     Manifest
		files map[string]string
		priv  ed25519.PrivateKey
		msg   string
	}{
		{"bad name", Manifest{Name: "Store EU"}, files, priv, `the name must be lower-case`},
		{"path outside the roots", testManifest(), map[string]string{"etc/passwd": files["charts/hello-0.1.0.tgz"]}, priv, `path "etc/passwd" is not under artifacts/ or charts/`},
		{"traversal", testManifest(), map[string]string{"charts/../x": files["charts/hello-0.1.0.tgz"]}, priv, "not a clean relative path"},
		{"missing file", testManifest(), map[string]string{"charts/x.tgz": "/nonexistent/x"}, priv, "charts/x.tgz: open /nonexistent/x"},
		{"directory", testManifest(), map[string]string{"charts/x.tgz": t.TempDir()}, priv, "is not a regular file"},
		{"no key", testManifest(), files, nil, "no ed25519 private key"},
	}
	for _, tt := range tests {
		err := Write(io.Discard, tt.m, tt.files, tt.priv)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.msg)
		}
	}
}

func TestWriteFileAndOpen(t *testing.T) {
	pub, priv := keys(t)
	for _, name := range []string{"b.tar", "b.tar.gz"} {
		out := filepath.Join(t.TempDir(), name)
		if err := WriteFile(out, testManifest(), fixture(t), priv); err != nil {
			t.Fatalf("WriteFile: %v", err)
		}
		raw, _ := os.ReadFile(out)
		if gz := bytes.HasPrefix(raw, []byte{0x1f, 0x8b}); gz != strings.HasSuffix(name, ".gz") {
			t.Errorf("%s: gzip = %v", name, gz)
		}
		b, err := Open(out, []ed25519.PublicKey{pub})
		if err != nil {
			t.Fatalf("Open(%s): %v", name, err)
		}
		if err := b.Extract(t.TempDir()); err != nil {
			t.Errorf("Extract: %v", err)
		}
		b.Close()
		entries, _ := os.ReadDir(filepath.Dir(out))
		if len(entries) != 1 {
			t.Errorf("temporary files left: %v", entries)
		}
	}
}

func TestKeys(t *testing.T) {
	pub, priv := keys(t)
	privPEM, err := EncodePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := EncodePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN PRIVATE KEY-----")) || !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Errorf("PEM types:\n%s%s", privPEM, pubPEM)
	}
	priv2, err := ParsePrivateKey(privPEM)
	if err != nil || !priv2.Equal(priv) {
		t.Errorf("ParsePrivateKey = %v", err)
	}
	pub2, err := ParsePublicKey(pubPEM)
	if err != nil || !pub2.Equal(pub) {
		t.Errorf("ParsePublicKey = %v", err)
	}
	other, _ := keys(t)
	otherPEM, _ := EncodePublicKey(other)
	both, err := ParsePublicKeys(append(pubPEM, otherPEM...))
	if err != nil || len(both) != 2 || !both[1].Equal(other) {
		t.Errorf("ParsePublicKeys = %d keys, %v", len(both), err)
	}
	// A key made by openssl (genpkey -algorithm ed25519; pkey -pubout).
	const opensslPub = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA+8U4HE6o0G9EuAnbuw9bZbtZu2vCT8HvC+X/PjDMNYI=\n-----END PUBLIC KEY-----\n"
	if _, err := ParsePublicKey([]byte(opensslPub)); err != nil {
		t.Errorf("openssl key: %v", err)
	}
	if len(KeyID(pub)) != 16 || KeyID(pub) == KeyID(other) {
		t.Errorf("KeyID = %s / %s", KeyID(pub), KeyID(other))
	}

	bad := []struct {
		name string
		data string
		msg  string
	}{
		{"nothing", "hello", "no PEM public key found"},
		{"private as public", string(privPEM), "PEM block is a PRIVATE KEY, want a PUBLIC KEY"},
		{"two where one is wanted", string(pubPEM) + string(otherPEM), "want one key, found 2"},
		{"truncated", string(pubPEM) + "-----BEGIN PUBLIC KEY-----\nAAAA", "incomplete PEM block"},
	}
	for _, b := range bad {
		if _, err := ParsePublicKey([]byte(b.data)); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%s: err = %v, want %q", b.name, err, b.msg)
		}
	}
	if _, err := ParsePrivateKey(pubPEM); err == nil || !strings.Contains(err.Error(), "want a PKCS#8 PRIVATE KEY") {
		t.Errorf("ParsePrivateKey(public) = %v", err)
	}
}
