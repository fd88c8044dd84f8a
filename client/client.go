package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// The sentinels an API error can unwrap to. They are re-exported because
// packages outside this module cannot import internal/errs, yet need
// errors.Is to tell "not found" from "conflict".
var (
	ErrNotFound        = errs.ErrNotFound
	ErrAlreadyExists   = errs.ErrAlreadyExists
	ErrConflict        = errs.ErrConflict
	ErrInvalid         = errs.ErrInvalid
	ErrBadRequest      = errs.ErrBadRequest
	ErrUnauthenticated = errs.ErrUnauthenticated
	ErrForbidden       = errs.ErrForbidden
	ErrGone            = errs.ErrGone
	ErrTooLarge        = errs.ErrTooLarge
	ErrUnavailable     = errs.ErrUnavailable
)

// APIError is an error response of the hub: its HTTP status and body.
type APIError = errs.APIError

// maxErrorBody bounds how much of an error response is read: error bodies
// are small, and a misbehaving proxy must not make the client buffer a page.
const maxErrorBody = 1 << 20

// Config says how to reach the hub.
type Config struct {
	// Server is the base URL of the user API listener, e.g.
	// "https://hub.example.com:7080". A missing scheme means https.
	Server string
	// Token is the API token sent as "Authorization: Bearer".
	Token string
	// CAFile or CAPEM is the CA that signs the hub's serving certificate
	// (the hub's DATA/pki/ca.crt); CAFile wins if both are set. With neither,
	// the system roots are used.
	CAFile string
	CAPEM  []byte
	// InsecureSkipVerify disables certificate verification; for tests only.
	InsecureSkipVerify bool
	// HTTPClient, when set, is used as is and the TLS fields above are
	// ignored.
	HTTPClient *http.Client
	// UserAgent is sent with every request; empty means "outpost-client".
	UserAgent string
}

// Client talks to one hub with one token. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	token     string
	userAgent string
	http      *http.Client
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	base, err := parseServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tlsConfig, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		hc = &http.Client{
			// No overall Timeout: it would cut watch streams. Requests are
			// bounded by their context instead.
			Transport: &http.Transport{
				Proxy: http.ProxyFromEnvironment,
				DialContext: (&net.Dialer{
					Timeout:   30 * time.Second,
					KeepAlive: 30 * time.Second,
				}).DialContext,
				TLSClientConfig:     tlsConfig,
				TLSHandshakeTimeout: 10 * time.Second,
				ForceAttemptHTTP2:   true,
				MaxIdleConns:        10,
				IdleConnTimeout:     90 * time.Second,
			},
		}
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "outpost-client"
	}
	return &Client{base: base, token: cfg.Token, userAgent: ua, http: hc}, nil
}

// Server returns the base URL the client talks to.
func (c *Client) Server() string { return c.base.String() }

func parseServer(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no hub server address")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("hub server address %q: %w", s, err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("hub server address %q: scheme must be https or http", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("hub server address %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("hub server address %q: must not have a query or fragment", s)
	}
	// Keep a path prefix (a hub behind a reverse proxy at /outpost) but
	// without the trailing slash, so joining "/api/v1/..." gives one slash.
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	pemData := cfg.CAPEM
	source := "CA certificate"
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pemData = b
		source = fmt.Sprintf("CA file %q", cfg.CAFile)
	}
	if len(pemData) > 0 {
		// Only the hub CA: trusting the system roots as well would let any
		// public CA vouch for a hub impostor.
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", source)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// apiPath escapes each segment, so a name can never reach another route.
func apiPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api/v1")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func (c *Client) url(path string, query url.Values) string {
	// path is already escaped segment by segment (apiPath), so it is
	// appended as text: going through url.URL.Path would unescape a "%2F".
	s := c.base.String() + path
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, query), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// do sends a request and decodes a 2xx JSON body into out. It reports
// whether there was a body to decode, so callers can tell "204 No Content"
// from a zero object.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) (bool, error) {
	req, err := c.newRequest(ctx, method, path, query, body)
	if err != nil {
		return false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, transportError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, readError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, resp.Body)
		return false, nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, fmt.Errorf("read response: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return false, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return false, fmt.Errorf("decode response: %w", err)
	}
	return true, nil
}

// transportError drops the method and URL net/http puts in front of a
// failed request: callers name the operation, and "Get https://...: dial
// tcp ..." reads worse than "cannot reach the hub: dial tcp ...".
func transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err() // the caller gave up; the hub is not at fault
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach the hub: %w", ue.Err)
	}
	return err
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return decodeError(resp.StatusCode, b)
}

// decodeError turns an error response into an *APIError. Bodies that are not
// the hub's JSON (a proxy's HTML page) still get a code from the status, so
// errors.Is keeps working.
func decodeError(status int, body []byte) error {
	var e v1.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
		e = v1.Error{Code: codeForStatus(status)}
		if text := strings.TrimSpace(string(body)); text != "" && len(text) <= 200 && !strings.HasPrefix(text, "<") {
			e.Message = text
		}
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("http status %d", status)
	}
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		// A 422 is only actionable if the reader learns which field is bad.
		e.Message = e.Field + ": " + e.Message
	}
	return errs.FromAPI(status, e)
}

func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return v1.CodeBadRequest
	case http.StatusUnauthorized:
		return v1.CodeUnauthenticated
	case http.StatusForbidden:
		return v1.CodeForbidden
	case http.StatusNotFound:
		return v1.CodeNotFound
	case http.StatusConflict:
		return v1.CodeConflict
	case http.StatusGone:
		return v1.CodeGone
	case http.StatusRequestEntityTooLarge:
		return v1.CodeTooLarge
	case http.StatusUnprocessableEntity:
		return v1.CodeInvalid
	case http.StatusMethodNotAllowed:
		return v1.CodeMethodNotAllowed
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return v1.CodeUnavailable
	}
	return v1.CodeInternal
}
