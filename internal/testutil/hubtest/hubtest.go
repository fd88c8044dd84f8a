package hubtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-edge/outpost/internal/hub/server"
)

// Hub is a running in-process hub.
type Hub struct {
	// URL is the user API's base URL (https://127.0.0.1:PORT), AgentURL the
	// agent API's.
	URL      string
	AgentURL string
	// AdminToken is the hub-admin API token the first start created.
	AdminToken string
	// CAPEM is the hub CA certificate, which signs both listeners'
	// certificates; CAFile is where the hub keeps it.
	CAPEM   []byte
	CAFile  string
	DataDir string

	pool *x509.CertPool
	// tr is shared by every Client so tests do not open a connection per
	// request; its idle connections are closed when the hub stops.
	tr *http.Transport

	mu         sync.Mutex
	transports []*http.Transport
}

type config struct {
	heartbeat    time.Duration
	offlineAfter time.Duration
	certTTL      time.Duration
	log          *slog.Logger
}

// Option changes how Start configures the hub.
type Option func(*config)

// WithHeartbeatInterval sets the heartbeat interval agents are told to use.
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.heartbeat = d }
}

// WithOfflineAfter sets how long a silent host stays Healthy before it is
// Offline; short values let tests watch hosts go offline in seconds.
func WithOfflineAfter(d time.Duration) Option {
	return func(c *config) { c.offlineAfter = d }
}

// WithAgentCertTTL sets the lifetime of the agent certificates the hub signs.
func WithAgentCertTTL(d time.Duration) Option {
	return func(c *config) { c.certTTL = d }
}

// WithLogger replaces the default logger, which passes warnings and errors
// to the test log.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.log = l }
}

// startTimeout bounds how long a hub may take to come up or go down; both
// normally take milliseconds, so hitting it means a hang worth failing on.
const startTimeout = 30 * time.Second

// Start runs a hub with a fresh data directory on free loopback ports, waits
// until it is ready, and stops it when tb ends.
func Start(tb testing.TB, opts ...Option) *Hub {
	tb.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	// TempDir's own cleanup is registered first, so it runs after the hub
	// has stopped and closed its database.
	dir := tb.TempDir()
	logs := &tbWriter{tb: tb}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}

	type addrs struct{ user, agent string }
	ready := make(chan addrs, 1)
	cfg := server.Config{
		// Port 0 on both: OnReady tells the ports the kernel chose, so
		// parallel tests never race for a port.
		Listen:            "127.0.0.1:0",
		AgentListen:       "127.0.0.1:0",
		DataDir:           filepath.Join(dir, "data"),
		AdminTokenFile:    filepath.Join(dir, "admin-token"),
		HeartbeatInterval: c.heartbeat,
		OfflineAfter:      c.offlineAfter,
		AgentCertTTL:      c.certTTL,
		Version:           "hubtest",
		Log:               c.log,
		OnReady:           func(user, agent string) { ready <- addrs{user, agent} },
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg) }()

	h := &Hub{DataDir: cfg.DataDir, CAFile: filepath.Join(cfg.DataDir, "pki", "ca.crt")}
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("hubtest: hub stopped with: %v", err)
			}
		case <-time.After(startTimeout):
			tb.Errorf("hubtest: hub did not stop within %s", startTimeout)
		}
		logs.close()
	})
	tb.Cleanup(h.closeIdle)

	select {
	case a := <-ready:
		h.URL, h.AgentURL = "https://"+a.user, "https://"+a.agent
	case err := <-done:
		tb.Fatalf("hubtest: hub did not start: %v", err)
	case <-time.After(startTimeout):
		tb.Fatalf("hubtest: hub did not report its addresses within %s", startTimeout)
	}

	token, err := os.ReadFile(cfg.AdminTokenFile)
	if err != nil {
		tb.Fatalf("hubtest: read admin token: %v", err)
	}
	h.AdminToken = strings.TrimSpace(string(token))
	if h.CAPEM, err = os.ReadFile(h.CAFile); err != nil {
		tb.Fatalf("hubtest: read hub CA: %v", err)
	}
	h.pool = x509.NewCertPool()
	if !h.pool.AppendCertsFromPEM(h.CAPEM) {
		tb.Fatalf("hubtest: %s holds no PEM certificate", h.CAFile)
	}
	h.tr = h.newTransport(nil)

	if err := h.waitReady(startTimeout); err != nil {
		tb.Fatalf("hubtest: %v", err)
	}
	return h
}

// waitReady polls /readyz: OnReady fires as soon as the listeners are bound,
// and a test should not race the first request against the store check.
func (h *Hub) waitReady(timeout time.Duration) error {
	client := h.Client("")
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(h.URL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz answered %s", resp.Status)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("hub not ready within %s: %v", timeout, last)
}

func (h *Hub) newTransport(cert *tls.Certificate) *http.Transport {
	tc := &tls.Config{RootCAs: h.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	h.mu.Lock()
	h.transports = append(h.transports, tr)
	h.mu.Unlock()
	return tr
}

func (h *Hub) closeIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tr := range h.transports {
		tr.CloseIdleConnections()
	}
}

// Client returns an HTTP client that trusts the hub CA and, when token is
// not empty, sends it as the bearer token of every request. It has no
// timeout, so watch streams can stay open; bound requests with a context.
func (h *Hub) Client(token string) *http.Client {
	if token == "" {
		return &http.Client{Transport: h.tr}
	}
	return &http.Client{Transport: bearer{token: token, next: h.tr}}
}

// AgentClient returns an HTTP client for AgentURL that trusts the hub CA and
// presents cert (nil: none, as for enrollment).
func (h *Hub) AgentClient(cert *tls.Certificate) *http.Client {
	if cert == nil {
		return &http.Client{Transport: h.tr}
	}
	return &http.Client{Transport: h.newTransport(cert)}
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// requestTimeout bounds one Do; Do is for requests that answer, not watches.
const requestTimeout = 30 * time.Second

// Do sends one request to the user API and returns the response with its
// whole body (also left readable in resp.Body). path is relative to URL
// unless it is a full URL. body is sent as is when it is []byte, string or
// io.Reader, as JSON otherwise, and not at all when nil. Transport errors
// fail tb; error statuses do not.
func (h *Hub) Do(tb testing.TB, method, path, token string, body any) (*http.Response, []byte) {
	tb.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("hubtest: encode %s %s body: %v", method, path, err)
		}
		r = bytes.NewReader(data)
	}
	target := path
	if !strings.HasPrefix(path, "https://") && !strings.HasPrefix(path, "http://") {
		target = h.URL + path
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		tb.Fatalf("hubtest: %s %s: %v", method, path, err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.Client(token).Do(req)
	if err != nil {
		tb.Fatalf("hubtest: %s %s: %v", method, path, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatalf("hubtest: %s %s: read body: %v", method, path, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return resp, data
}

// tbWriter passes the hub's log lines to the test log until the hub has
// stopped; testing panics on a Log after the test ended.
type tbWriter struct {
	mu     sync.Mutex
	tb     testing.TB
	closed bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.tb.Log("hub: " + strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}
