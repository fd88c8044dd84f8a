package catalog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// maxIndexBytes caps what one registry can make the hub read and parse.
// The biggest public Helm indexes (full-history repositories) are a few
// tens of MB; anything beyond this is a mistake or an attack. A variable so
// tests can lower it.
var maxIndexBytes int64 = 32 << 20

// defaultTimeout bounds a fetch when the caller passes no client; the
// caller's context may cut it shorter.
const defaultTimeout = 2 * time.Minute

const userAgent = "outpost-hub (pack catalog)"

// Fetch reads the packs a registry offers, each validated and named
// "<name>/<pack>":
//
//   - builtin: the catalog embedded in the binary (see Builtin).
//   - pack-index: a PackIndex document (see ParsePackIndex) from spec.URL
//     (http or https; a URL that does not end in .yaml or .yml is a
//     directory and gets /index.yaml appended), or from spec.Directory on
//     the hub's file system: its index.yaml, or when there is none every
//     *.yaml pack file in it (see ParsePackFile).
//   - helm: a Helm chart repository (spec.URL, its index.yaml): every
//     chart becomes an addon pack of type helm (see the package doc).
//
// spec.CACert (PEM) is trusted in addition to the system's CAs. client may
// be nil. Downloads are capped at 32 MiB. One invalid pack fails the whole
// fetch with its field errors: keeping the registry's last good catalog is
// the caller's job. Errors name the registry and what was read.
func Fetch(ctx context.Context, name string, spec v1.RegistrySpec, client *http.Client) ([]v1.Pack, error) {
	if !reRegistryName.MatchString(name) {
		return nil, fmt.Errorf("registry %q: the name must be a DNS label (lower-case letters, digits and -, at most 63): %w", name, errs.ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("registry %q: %w", name, err)
	}
	switch spec.Type {
	case v1.RegistryBuiltin:
		packs, err := Builtin()
		if err != nil {
			return nil, fmt.Errorf("registry %q: %w", name, err)
		}
		for i := range packs {
			packs[i].Spec.Registry = name
			packs[i].Metadata.Name = name + "/" + packs[i].Spec.Name
		}
		return packs, nil
	case v1.RegistryPackIndex:
		return fetchPackIndex(ctx, name, spec, client)
	case v1.RegistryHelm:
		return fetchHelm(ctx, name, spec, client)
	}
	return nil, fmt.Errorf("registry %q: type %q is not one of builtin, pack-index, helm: %w", name, spec.Type, errs.ErrInvalid)
}

func fetchPackIndex(ctx context.Context, name string, spec v1.RegistrySpec, client *http.Client) ([]v1.Pack, error) {
	switch {
	case spec.URL != "" && spec.Directory != "":
		return nil, fmt.Errorf("registry %q: set url or directory, not both: %w", name, errs.ErrInvalid)
	case spec.Directory != "":
		in, err := readPackDir(spec.Directory)
		if err != nil {
			return nil, fmt.Errorf("registry %q: directory %s: %w", name, spec.Directory, err)
		}
		packs, err := makePacks(name, in)
		if err != nil {
			return nil, fmt.Errorf("registry %q: directory %s: %w", name, spec.Directory, err)
		}
		return packs, nil
	case spec.URL == "":
		return nil, fmt.Errorf("registry %q: a pack index needs a url or a directory: %w", name, errs.ErrInvalid)
	}
	u, err := parseHTTPURL(spec.URL)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", name, err)
	}
	if p := strings.ToLower(u.Path); !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") {
		u = u.JoinPath("index.yaml")
	}
	data, err := download(ctx, client, spec.CACert, name, u)
	if err != nil {
		return nil, err
	}
	idx, err := ParsePackIndex(data)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %s: not a pack index: %w", name, u.Redacted(), err)
	}
	packs, err := makePacks(name, indexSources(idx))
	if err != nil {
		return nil, fmt.Errorf("registry %q: %s: %w", name, u.Redacted(), err)
	}
	return packs, nil
}

func indexSources(idx *PackIndex) []sourced {
	out := make([]sourced, len(idx.Packs))
	for i, p := range idx.Packs {
		out[i] = sourced{spec: p, source: fmt.Sprintf("packs[%d]", i)}
	}
	return out
}

// readPackDir reads a pack-index directory: index.yaml if there is one,
// else the pack files. A directory with neither is an error rather than an
// empty catalog, because it is far more likely a wrong path or an unmounted
// volume than a registry that means to offer nothing.
func readPackDir(dir string) ([]sourced, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, errors.New("not a directory")
	}
	fsys := os.DirFS(dir)
	data, err := readLimited(fsys, "index.yaml")
	switch {
	case err == nil:
		idx, err := ParsePackIndex(data)
		if err != nil {
			return nil, fmt.Errorf("index.yaml: not a pack index: %w", err)
		}
		in := indexSources(idx)
		for i := range in {
			in[i].source = "index.yaml: " + in[i].source
		}
		return in, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	in, err := readPackFiles(fsys)
	if err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, errors.New("has neither an index.yaml nor any *.yaml pack file")
	}
	return in, nil
}

// parseHTTPURL parses a registry URL, which must be http or https.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %s: want an absolute http or https URL: %w", u.Redacted(), errs.ErrInvalid)
	}
	return u, nil
}

// download GETs u for registry name and returns the body, at most
// maxIndexBytes of it.
func download(ctx context.Context, client *http.Client, caPEM, name string, u *url.URL) ([]byte, error) {
	shown := u.Redacted()
	c, cleanup, err := httpClient(client, caPEM)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", name, err)
	}
	defer cleanup()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("registry %q: fetch %s: %w", name, shown, err)
	}
	req.Header.Set("Accept", "application/yaml, application/x-yaml, text/yaml, application/json;q=0.9, */*;q=0.8")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("registry %q: fetch %s: %w", name, shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("registry %q: fetch %s: the server answered %s", name, shown, resp.Status)
	}
	tooLarge := fmt.Errorf("registry %q: fetch %s: the index is larger than %d MiB", name, shown, maxIndexBytes>>20)
	if resp.ContentLength > maxIndexBytes {
		return nil, tooLarge
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("registry %q: fetch %s: %w", name, shown, err)
	}
	if int64(len(data)) > maxIndexBytes {
		return nil, tooLarge
	}
	return data, nil
}

// httpClient returns the client to fetch with: client (or a default one),
// with caPEM added to the trusted roots when set. The cleanup closes the idle
// connections of a transport made here, which would otherwise stay open
// until the process ends.
func httpClient(client *http.Client, caPEM string) (*http.Client, func(), error) {
	if client == nil {
		client = &http.Client{Timeout: defaultTimeout}
	}
	if strings.TrimSpace(caPEM) == "" {
		return client, func() {}, nil
	}
	var tr *http.Transport
	switch t := client.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, nil, fmt.Errorf("caCert: the HTTP client's transport is a %T; a custom CA needs an *http.Transport", client.Transport)
	}
	// Added to the system roots rather than replacing them, like the
	// agent's extra CA certificates: a registry behind a TLS-inspecting
	// proxy and one on a public host must both keep working.
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, nil, fmt.Errorf("caCert: no PEM certificate in it: %w", errs.ErrInvalid)
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	tr.TLSClientConfig.RootCAs = pool
	c := *client
	c.Transport = tr
	return &c, tr.CloseIdleConnections, nil
}
