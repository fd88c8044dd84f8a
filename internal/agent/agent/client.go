package agent

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
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpproxy"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/internal/errs"
)

// Response size limits: specs carry manifests; the rest is small.
const (
	maxSpecBody  = 64 << 20
	maxOtherBody = 1 << 20
)

// swapTransport lets one http.Client move to new TLS settings (a client
// certificate after enrollment, a renewed one later). TLS identity is fixed
// per connection, so new settings need new connections: a new transport.
type swapTransport struct {
	cur atomic.Pointer[http.Transport]
}

func (s *swapTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.cur.Load().RoundTrip(req)
}

// swap makes t the transport for new requests. Requests in flight finish on
// the old one, whose connections close once idle.
func (s *swapTransport) swap(t *http.Transport) {
	if old := s.cur.Swap(t); old != nil {
		old.CloseIdleConnections()
		// A long-poll in flight keeps its connection busy now; close it
		// once that request is over rather than when IdleConnTimeout says.
		time.AfterFunc(2*time.Minute, old.CloseIdleConnections)
	}
}

// tlsSettings is what the agent trusts and presents.
type tlsSettings struct {
	// bootstrap verifies the hub before enrollment: hub.caCert/caFile or
	// the system pool, plus the site's caCerts.
	bootstrap *x509.CertPool
	// pinned is the hub CA from enrollment; once set it is the only trust.
	pinned   *x509.CertPool
	insecure bool
	client   *tls.Certificate
}

func (ts tlsSettings) config() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ts.client != nil {
		cfg.Certificates = []tls.Certificate{*ts.client}
	}
	switch {
	case ts.pinned != nil && ts.insecure:
		// insecureSkipVerify is usually there because the hub's name is not
		// in its certificate; after enrollment the chain to the pinned CA is
		// still checked, only the name is not.
		pinned := ts.pinned
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("hub sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pinned, Intermediates: inter})
			if err != nil {
				return fmt.Errorf("hub certificate does not chain to the pinned hub CA: %w", err)
			}
			return nil
		}
	case ts.pinned != nil:
		cfg.RootCAs = ts.pinned
	case ts.insecure:
		cfg.InsecureSkipVerify = true
	default:
		cfg.RootCAs = ts.bootstrap
	}
	return cfg
}

// bootstrapPool builds the pre-enrollment trust from user-data.
func bootstrapPool(root hostos.Root, ud *userdata.UserData) (*x509.CertPool, error) {
	var pool *x509.CertPool
	var hubCA string
	switch {
	case ud.Hub.CACert != "":
		hubCA = ud.Hub.CACert
	case ud.Hub.CAFile != "":
		data, err := root.ReadFile(ud.Hub.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read hub.caFile: %w", err)
		}
		hubCA = string(data)
	}
	if hubCA != "" {
		pool = x509.NewCertPool()
		if err := addPEM(pool, hubCA); err != nil {
			return nil, fmt.Errorf("hub CA: %w", err)
		}
	} else {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil {
			pool = x509.NewCertPool()
		}
	}
	for i, c := range ud.CACerts {
		if err := addPEM(pool, c); err != nil {
			return nil, fmt.Errorf("caCerts[%d]: %w", i, err)
		}
	}
	return pool, nil
}

func addPEM(pool *x509.CertPool, bundle string) error {
	certs, err := userdata.ParseCertificates(bundle)
	if err != nil {
		return err
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return nil
}

// proxyFunc applies the site's proxy settings, or the environment's when
// user-data has none. As the site settings promise, httpProxy alone serves
// HTTPS too (the hub is always HTTPS).
func proxyFunc(p userdata.Proxy) func(*http.Request) (*url.URL, error) {
	if p.IsZero() {
		return http.ProxyFromEnvironment
	}
	cfg := httpproxy.Config{HTTPProxy: p.HTTPProxy, HTTPSProxy: p.HTTPSProxy, NoProxy: p.NoProxy}
	if cfg.HTTPSProxy == "" {
		cfg.HTTPSProxy = cfg.HTTPProxy
	}
	f := cfg.ProxyFunc()
	return func(r *http.Request) (*url.URL, error) { return f(r.URL) }
}

func newTransport(ts tlsSettings, proxy func(*http.Request) (*url.URL, error)) *http.Transport {
	return &http.Transport{
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       ts.config(),
		TLSHandshakeTimeout:   15 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pings find a dead WAN link under a parked long-poll in seconds
		// instead of waiting for TCP to give up.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}
}

// call sends one agent API request. in, when not nil, is sent as JSON; a 200
// body is decoded into out, or copied into *raw. Error statuses come back as
// *errs.APIError. The status is returned for 2xx and 304.
func (a *Agent) call(ctx context.Context, method, path string, query url.Values, in any, out any, raw *[]byte) (int, error) {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode %s request: %w", path, err)
		}
		body = bytes.NewReader(data)
	}
	u := a.hubURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set(v1.HeaderAgentProtocol, strconv.Itoa(v1.AgentProtocolVersion))
	req.Header.Set("User-Agent", "outpost-agent/"+a.cfg.Version)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	limit := int64(maxOtherBody)
	if path == v1.AgentPathSpec {
		limit = maxSpecBody
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return 0, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if int64(len(data)) > limit {
		return 0, fmt.Errorf("%s %s: response larger than %d bytes", method, path, limit)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return resp.StatusCode, nil
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if raw != nil {
			*raw = data
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return 0, fmt.Errorf("%s %s: decode response: %w", method, path, err)
			}
		}
		return resp.StatusCode, nil
	}
	var apiErr v1.Error
	if json.Unmarshal(data, &apiErr) != nil || apiErr.Code == "" {
		apiErr = v1.Error{Message: strings.TrimSpace(string(data))}
		if len(apiErr.Message) > 200 {
			apiErr.Message = apiErr.Message[:200]
		}
	}
	return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, errs.FromAPI(resp.StatusCode, apiErr))
}

// apiError returns the hub's error response inside err, if any.
func apiError(err error) (*errs.APIError, bool) {
	var e *errs.APIError
	ok := errors.As(err, &e)
	return e, ok
}

// isAuthFailure reports whether the hub no longer accepts the host's
// certificate: 401/403 from an mTLS call, or the TLS layer rejecting the
// certificate (a hub that checks it during the handshake answers with an
// alert rather than a status).
func isAuthFailure(err error) bool {
	if e, ok := apiError(err); ok {
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		msg := op.Err.Error()
		return strings.Contains(msg, "certificate")
	}
	return false
}

// isRefusal reports whether the hub turned enrollment down for a reason a
// person must fix (bad token, bad request): retrying fast will not help.
func isRefusal(err error) bool {
	e, ok := apiError(err)
	if !ok {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}
