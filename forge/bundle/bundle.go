package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

// Names of the bundle's own entries, and the manifest schema it writes.
const (
	ManifestPath  = "bundle.json"
	SignaturePath = "bundle.sig"
	SchemaVersion = 1
	// Algorithm is the only signature algorithm.
	Algorithm = "ed25519"
)

// signingContext goes before the manifest in the signed message, so that a
// bundle signature can never pass for a signature of anything else the same
// key might sign.
const signingContext = "outpost-bundle-v1\x00"

// Limits on the entries read before the signature is checked: a hostile
// archive must not make the agent allocate gigabytes for them.
const (
	maxManifestSize  = 64 << 20
	maxSignatureSize = 4 << 10
)

// Roots are the directories a bundle's content lives under; anything else
// is refused, so a bundle cannot name a path the agent would treat as its own
// (bundle.json) or that means something to another reader.
var Roots = []string{"artifacts/", "charts/"}

var (
	// ErrUntrusted is a bundle whose signature does not verify with any
	// trusted key, or that has none.
	ErrUntrusted = errors.New("signature does not verify with any trusted key")
	// ErrCorrupt is a bundle whose content does not match its signed manifest,
	// or that is not a well-formed bundle.
	ErrCorrupt = errors.New("corrupt bundle")
)

var reName = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// Manifest is bundle.json.
type Manifest struct {
	SchemaVersion int       `json:"schemaVersion"`
	Name          string    `json:"name"`
	Created       time.Time `json:"created"`
	// Definition is the cluster the bundle installs.
	Definition ClusterDefinition `json:"definition"`
	// Files lists every other entry of the bundle, sorted by path.
	Files []File `json:"files"`
}

// ClusterDefinition is a cluster as exported from the hub: its profiles as
// hosts receive them (versions resolved, values merged) and the values of
// the profiles' variables.
type ClusterDefinition struct {
	Profiles  []v1.RenderedProfile `json:"profiles" yaml:"profiles"`
	Variables map[string]string    `json:"variables,omitempty" yaml:"variables,omitempty"`
}

// File is one content file of a bundle.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Signature is bundle.sig.
type Signature struct {
	Algorithm string `json:"algorithm"`
	// KeyID names the signing key (see KeyID). It is not trusted: it only
	// lets an error say which key a site is missing.
	KeyID     string `json:"keyId"`
	Signature []byte `json:"signature"`
}

// Write writes a bundle as a plain tar: bundle.json, bundle.sig, then the
// files (bundle path → local file) in path order. m's Files are computed
// here; a zero Created is now. Compress by passing a gzip.Writer, or use
// WriteFile.
func Write(w io.Writer, m Manifest, files map[string]string, priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return errors.New("write bundle: no ed25519 private key")
	}
	if !reName.MatchString(m.Name) {
		return fmt.Errorf("write bundle %q: the name must be lower-case letters, digits, '.', '_' and '-', at most 63", m.Name)
	}
	m.SchemaVersion = SchemaVersion
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.Created = m.Created.UTC().Truncate(time.Second)
	m.Files = nil
	paths := make([]string, 0, len(files))
	for p := range files {
		if err := checkPath(p); err != nil {
			return fmt.Errorf("write bundle %q: %w", m.Name, err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		f, err := hashFile(files[p])
		if err != nil {
			return fmt.Errorf("write bundle %q: %s: %w", m.Name, p, err)
		}
		f.Path = p
		m.Files = append(m.Files, f)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write bundle %q: %w", m.Name, err)
	}
	manifest = append(manifest, '\n')
	pub := priv.Public().(ed25519.PublicKey)
	sig, err := json.MarshalIndent(Signature{
		Algorithm: Algorithm,
		KeyID:     KeyID(pub),
		Signature: ed25519.Sign(priv, signedMessage(manifest)),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("write bundle %q: %w", m.Name, err)
	}

	tw := tar.NewWriter(w)
	for _, e := range []struct {
		name string
		data []byte
	}{{ManifestPath, manifest}, {SignaturePath, append(sig, '\n')}} {
		if err := tw.WriteHeader(header(e.name, int64(len(e.data)), m.Created)); err != nil {
			return fmt.Errorf("write bundle %q: %w", m.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("write bundle %q: %w", m.Name, err)
		}
	}
	for _, f := range m.Files {
		if err := writeEntry(tw, f, files[f.Path], m.Created); err != nil {
			return fmt.Errorf("write bundle %q: %s: %w", m.Name, f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write bundle %q: %w", m.Name, err)
	}
	return nil
}

func signedMessage(manifest []byte) []byte {
	return append([]byte(signingContext), manifest...)
}

func header(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  mtime,
		Format:   tar.FormatPAX,
	}
}

// writeEntry copies a file into the archive and checks it is still the file
// that was hashed: the manifest is already signed, and a file that changed
// in between would make a bundle no site accepts.
func writeEntry(tw *tar.Writer, f File, local string, mtime time.Time) error {
	r, err := os.Open(local)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := tw.WriteHeader(header(f.Path, f.Size, mtime)); err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(r, f.Size))
	if err != nil {
		return err
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("%s changed while the bundle was written", local)
	}
	return nil
}

func hashFile(local string) (File, error) {
	r, err := os.Open(local)
	if err != nil {
		return File{}, err
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return File{}, err
	}
	if !st.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s is not a regular file", local)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return File{}, err
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkPath accepts clean relative paths under one of Roots.
func checkPath(p string) error {
	if p == "" || path.Clean(p) != p || path.IsAbs(p) || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
		return fmt.Errorf("path %q is not a clean relative path", p)
	}
	for _, r := range Roots {
		if strings.HasPrefix(p, r) && len(p) > len(r) {
			return nil
		}
	}
	return fmt.Errorf("path %q is not under %s", p, strings.Join(Roots, " or "))
}

// WriteFile writes a bundle to path, gzip-compressed when the name ends in
// .gz or .tgz. The file appears only when complete.
func WriteFile(name string, m Manifest, files map[string]string, priv ed25519.PrivateKey) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	var w io.Writer = bw
	var zw *gzip.Writer
	if strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".tgz") {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	if err := Write(w, m, files, priv); err != nil {
		return err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("write bundle %s: %w", name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write bundle %s: %w", name, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("write bundle %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write bundle %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write bundle %s: %w", name, err)
	}
	return nil
}

// Bundle is an opened bundle whose signature and content have been checked.
type Bundle struct {
	Manifest Manifest
	// KeyID names the trusted key that verified the signature.
	KeyID string

	name     string
	src      io.ReaderAt
	size     int64
	closer   io.Closer
	manifest []byte // bundle.json as verified
	sig      []byte
}

// Open opens the bundle file at path; see OpenReader. Close the bundle when
// done.
func Open(name string, trusted []ed25519.PublicKey) (*Bundle, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bundle %q: %w", name, err)
	}
	b, err := OpenReader(f, st.Size(), name, trusted)
	if err != nil {
		f.Close()
		return nil, err
	}
	b.closer = f
	return b, nil
}

// OpenReader checks a bundle: first that bundle.json's signature verifies
// with one of the trusted keys, before anything in the manifest is used;
// then that the archive holds exactly the manifest's files with their sizes
// and hashes. Errors name the bundle and wrap ErrUntrusted or ErrCorrupt.
// The archive is read again by Extract, so r must stay readable.
func OpenReader(r io.ReaderAt, size int64, name string, trusted []ed25519.PublicKey) (*Bundle, error) {
	b := &Bundle{name: name, src: r, size: size}
	if err := b.verifySignature(trusted); err != nil {
		return nil, err
	}
	if err := b.walkContent(nil); err != nil {
		return nil, err
	}
	return b, nil
}

// Close closes the file Open opened.
func (b *Bundle) Close() error {
	if b.closer == nil {
		return nil
	}
	return b.closer.Close()
}

// Name is the name the bundle was opened under (its path).
func (b *Bundle) Name() string { return b.name }

func (b *Bundle) errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("bundle %q: %w: %s", b.name, sentinel, fmt.Sprintf(format, args...))
}

// reader opens the archive from the start, undoing gzip if it is compressed.
func (b *Bundle) reader() (*tar.Reader, error) {
	sr := io.NewSectionReader(b.src, 0, b.size)
	br := bufio.NewReaderSize(sr, 1<<20)
	magic, err := br.Peek(2)
	if err != nil {
		return nil, b.errorf(ErrCorrupt, "not a tar archive: %v", err)
	}
	if magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, b.errorf(ErrCorrupt, "gzip: %v", err)
		}
		return tar.NewReader(zr), nil
	}
	return tar.NewReader(br), nil
}

// readHead reads the archive's first two entries, which must be bundle.json
// and bundle.sig.
func (b *Bundle) readHead(tr *tar.Reader) (manifest, sig []byte, err error) {
	read := func(want string, limit int64) ([]byte, error) {
		hdr, err := tr.Next()
		if err != nil {
			return nil, b.errorf(ErrCorrupt, "reading %s: %v", want, err)
		}
		if hdr.Name != want {
			return nil, b.errorf(ErrCorrupt, "not an outpost bundle: entry %q where %s should be", hdr.Name, want)
		}
		if hdr.Size > limit {
			return nil, b.errorf(ErrCorrupt, "%s is %d bytes, more than the %d allowed", want, hdr.Size, limit)
		}
		data, err := io.ReadAll(io.LimitReader(tr, limit))
		if err != nil {
			return nil, b.errorf(ErrCorrupt, "reading %s: %v", want, err)
		}
		return data, nil
	}
	if manifest, err = read(ManifestPath, maxManifestSize); err != nil {
		return nil, nil, err
	}
	if sig, err = read(SignaturePath, maxSignatureSize); err != nil {
		return nil, nil, err
	}
	return manifest, sig, nil
}

func (b *Bundle) verifySignature(trusted []ed25519.PublicKey) error {
	if len(trusted) == 0 {
		return b.errorf(ErrUntrusted, "no trusted keys given")
	}
	tr, err := b.reader()
	if err != nil {
		return err
	}
	manifest, sigData, err := b.readHead(tr)
	if err != nil {
		return err
	}
	var sig Signature
	if err := json.Unmarshal(sigData, &sig); err != nil {
		return b.errorf(ErrUntrusted, "%s: %v", SignaturePath, err)
	}
	if sig.Algorithm != Algorithm {
		return b.errorf(ErrUntrusted, "%s: algorithm %q, want %s", SignaturePath, sig.Algorithm, Algorithm)
	}
	msg := signedMessage(manifest)
	for _, k := range trusted {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig.Signature) {
			b.KeyID = KeyID(k)
			break
		}
	}
	if b.KeyID == "" {
		return fmt.Errorf("bundle %q: %w (it names key %s; trusted: %s)", b.name, ErrUntrusted, sig.KeyID, keyIDs(trusted))
	}
	// Only now is the manifest worth reading.
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return b.errorf(ErrCorrupt, "%s: %v", ManifestPath, err)
	}
	if m.SchemaVersion != SchemaVersion {
		return b.errorf(ErrCorrupt, "%s: schema version %d, this agent reads %d", ManifestPath, m.SchemaVersion, SchemaVersion)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			return b.errorf(ErrCorrupt, "%s: %v", ManifestPath, err)
		}
		if seen[f.Path] {
			return b.errorf(ErrCorrupt, "%s: %s is listed twice", ManifestPath, f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 || len(f.SHA256) != sha256.Size*2 {
			return b.errorf(ErrCorrupt, "%s: %s has a bad size or sha256", ManifestPath, f.Path)
		}
	}
	b.Manifest, b.manifest, b.sig = m, manifest, sigData
	return nil
}

func keyIDs(keys []ed25519.PublicKey) string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = KeyID(k)
	}
	return strings.Join(ids, ", ")
}

// walkContent reads the archive after the head and checks every entry
// against the manifest. With sink it also hands each entry over while it is
// read; sink's writer is only kept if the whole entry matches.
func (b *Bundle) walkContent(sink func(f File, r io.Reader) error) error {
	tr, err := b.reader()
	if err != nil {
		return err
	}
	manifest, _, err := b.readHead(tr)
	if err != nil {
		return err
	}
	if !bytes.Equal(manifest, b.manifest) {
		// The source changed since the signature was checked.
		return b.errorf(ErrCorrupt, "%s changed after its signature was checked", ManifestPath)
	}
	want := make(map[string]File, len(b.Manifest.Files))
	for _, f := range b.Manifest.Files {
		want[f.Path] = f
	}
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return b.errorf(ErrCorrupt, "truncated or damaged archive: %v", err)
		}
		f, ok := want[hdr.Name]
		switch {
		case !ok:
			return b.errorf(ErrCorrupt, "%s is not in the signed manifest", hdr.Name)
		case seen[hdr.Name]:
			return b.errorf(ErrCorrupt, "%s appears twice", hdr.Name)
		case hdr.Typeflag != tar.TypeReg:
			return b.errorf(ErrCorrupt, "%s is not a regular file", hdr.Name)
		case hdr.Size != f.Size:
			return b.errorf(ErrCorrupt, "%s is %d bytes, the manifest says %d", hdr.Name, hdr.Size, f.Size)
		}
		seen[hdr.Name] = true
		h := sha256.New()
		var r io.Reader = io.TeeReader(tr, h)
		if sink != nil {
			err = sink(f, r)
		} else {
			_, err = io.Copy(io.Discard, r)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return b.errorf(ErrCorrupt, "truncated archive in %s", hdr.Name)
			}
			return fmt.Errorf("bundle %q: %s: %w", b.name, hdr.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
			return b.errorf(ErrCorrupt, "%s: sha256 %s, the manifest says %s", hdr.Name, got, f.SHA256)
		}
	}
	for _, f := range b.Manifest.Files {
		if !seen[f.Path] {
			return b.errorf(ErrCorrupt, "%s is missing (truncated archive?)", f.Path)
		}
	}
	return nil
}

// Extract writes the bundle into dir: bundle.json, bundle.sig and every
// file at its bundle path. Content is checked again as it is written, since
// the archive may have changed since Open; a file that does not match is
// removed and Extract fails.
func (b *Bundle) Extract(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extract bundle %q: %w", b.name, err)
	}
	var pending []string // written but not yet checked to the end
	err := b.walkContent(func(f File, r io.Reader) error {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		pending = append(pending, dst)
		if _, err := io.Copy(out, r); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		// Half-checked content must not look like an import.
		for _, p := range pending {
			os.Remove(p)
		}
		return err
	}
	for _, e := range []struct {
		name string
		data []byte
	}{{SignaturePath, b.sig}, {ManifestPath, b.manifest}} {
		if err := os.WriteFile(filepath.Join(dir, e.name), e.data, 0o644); err != nil {
			return fmt.Errorf("extract bundle %q: %w", b.name, err)
		}
	}
	return nil
}
