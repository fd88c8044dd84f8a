package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/hostos"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/pki"
)

var randReader = rand.Reader

func bigSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	return n
}

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }

// fakeHub speaks the agent protocol well enough to drive the agent through
// enrollment, approval, refusal, renewal, revocation and spec delivery. The
// real hub is exercised by the end-to-end tests; this one lets the agent's
// own tests run without it and control every answer.
type fakeHub struct {
	t   *testing.T
	ca  *pki.CA
	srv *httptest.Server

	clientCAs atomic.Pointer[x509.CertPool]

	mu         sync.Mutex
	ttl        time.Duration
	token      string // the token that works
	refuseCode string // when set, enrollment answers 401 with this code
	approved   bool   // whether a token-less host is approved
	approveCh  chan struct{}
	valid      map[string]bool // serials of certificates still accepted
	calls      map[string]int
	http2      bool // every request so far came over HTTP/2
	heartbeats []v1.HeartbeatRequest
	enrolls    []v1.EnrollRequest
	spec       []byte
	specRev    int64
	specCh     chan struct{}
	interval   int // IntervalSeconds answered to heartbeats; 0 lets the agent keep its own
}

func newFakeHub(t *testing.T, serverNames ...string) *fakeHub {
	t.Helper()
	ca, err := pki.NewCA("fake hub")
	if err != nil {
		t.Fatal(err)
	}
	if len(serverNames) == 0 {
		serverNames = []string{"127.0.0.1"}
	}
	key, _ := pki.NewKey()
	certPEM, err := ca.SignServer(key, serverNames, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(key)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHub{
		t: t, ca: ca, ttl: time.Hour, token: "good-token",
		approveCh: make(chan struct{}), valid: map[string]bool{}, calls: map[string]int{},
		http2: true, specCh: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+v1.AgentPathEnroll, h.enroll)
	mux.HandleFunc("POST "+v1.AgentPathRenew, h.mtls(h.renew))
	mux.HandleFunc("POST "+v1.AgentPathHeartbeat, h.mtls(h.heartbeat))
	mux.HandleFunc("GET "+v1.AgentPathSpec, h.mtls(h.getSpec))
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.calls[r.URL.Path]++
		if r.ProtoMajor != 2 {
			h.http2 = false
		}
		h.mu.Unlock()
		if r.Header.Get(v1.HeaderAgentProtocol) != strconv.Itoa(v1.AgentProtocolVersion) {
			writeErr(w, 400, v1.CodeBadRequest, "no protocol header")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	h.clientCAs.Store(ca.Pool())
	h.srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
		// Per connection, so a test can make the hub stop trusting the
		// agents' certificates at the TLS layer, as a hub with a new CA does.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{
				Certificates: []tls.Certificate{pair},
				ClientAuth:   tls.VerifyClientCertIfGiven,
				ClientCAs:    h.clientCAs.Load(),
				NextProtos:   []string{"h2", "http/1.1"},
			}, nil
		},
	}
	h.srv.EnableHTTP2 = true
	h.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes the tests make fail on purpose
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	return h
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v1.Error{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (h *fakeHub) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[path]
}

func (h *fakeHub) issue(csrPEM, cn string) (string, error) {
	csr, err := pki.ParseCSR([]byte(csrPEM))
	if err != nil {
		return "", err
	}
	if csr.Subject.CommonName != cn {
		return "", fmt.Errorf("csr is for %q", csr.Subject.CommonName)
	}
	now := time.Now()
	h.mu.Lock()
	ttl := h.ttl
	h.mu.Unlock()
	certPEM := signClient(h.t, h.ca, csr.PublicKey, cn, now.Add(-time.Second), now.Add(ttl))
	cert, _ := pki.ParseCertificate(certPEM)
	h.mu.Lock()
	h.valid[cert.SerialNumber.String()] = true
	h.mu.Unlock()
	return string(certPEM), nil
}

func (h *fakeHub) enroll(w http.ResponseWriter, r *http.Request) {
	var req v1.EnrollRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeErr(w, 400, v1.CodeBadRequest, err.Error())
		return
	}
	h.mu.Lock()
	h.enrolls = append(h.enrolls, req)
	refuse, token, approved, approveCh := h.refuseCode, h.token, h.approved, h.approveCh
	h.mu.Unlock()
	project := req.Project
	switch {
	case req.RegistrationToken != "" && refuse != "":
		writeErr(w, 401, refuse, "registration token refused")
		return
	case req.RegistrationToken != "" && req.RegistrationToken != token:
		writeErr(w, 401, v1.CodeTokenInvalid, "registration token is not valid")
		return
	case req.RegistrationToken != "":
		project = "from-token"
	case !approved:
		wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
		select {
		case <-approveCh:
		case <-time.After(time.Duration(wait) * time.Second):
			writeJSON(w, 202, v1.EnrollResponse{Status: v1.EnrollPending, HostID: req.HostID, Project: project, RetryAfterSeconds: 10})
			return
		case <-r.Context().Done():
			return
		}
	}
	cert, err := h.issue(req.CSR, req.HostID)
	if err != nil {
		writeErr(w, 422, v1.CodeInvalid, err.Error())
		return
	}
	writeJSON(w, 200, v1.EnrollResponse{Status: v1.EnrollApproved, HostID: req.HostID, Project: project, Certificate: cert, CACertificate: string(h.ca.CertPEM)})
}

func (h *fakeHub) approve() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.approved {
		h.approved = true
		close(h.approveCh)
	}
}

// revokeAll makes every certificate issued so far stop working, as deleting
// the host on the hub does.
func (h *fakeHub) revokeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.valid = map[string]bool{}
}

func (h *fakeHub) mtls(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeErr(w, 401, v1.CodeUnauthenticated, "no client certificate")
			return
		}
		cert := r.TLS.VerifiedChains[0][0]
		h.mu.Lock()
		ok := h.valid[cert.SerialNumber.String()]
		h.mu.Unlock()
		if !ok {
			writeErr(w, 401, v1.CodeUnauthenticated, "certificate belongs to an earlier enrollment")
			return
		}
		next(w, r, cert.Subject.CommonName)
	}
}

func (h *fakeHub) renew(w http.ResponseWriter, r *http.Request, host string) {
	var req v1.RenewRequest
	json.NewDecoder(r.Body).Decode(&req)
	cert, err := h.issue(req.CSR, host)
	if err != nil {
		writeErr(w, 422, v1.CodeInvalid, err.Error())
		return
	}
	writeJSON(w, 200, v1.RenewResponse{Certificate: cert, CACertificate: string(h.ca.CertPEM)})
}

func (h *fakeHub) heartbeat(w http.ResponseWriter, r *http.Request, host string) {
	var req v1.HeartbeatRequest
	json.NewDecoder(r.Body).Decode(&req)
	h.mu.Lock()
	h.heartbeats = append(h.heartbeats, req)
	interval := h.interval
	h.mu.Unlock()
	writeJSON(w, 200, v1.HeartbeatResponse{IntervalSeconds: interval})
}

func (h *fakeHub) setSpec(host string, rev int64, hash string) {
	spec := v1.HostSpec{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindHostSpec},
		Metadata: v1.ObjectMeta{Name: host, Project: "from-token", Revision: rev},
		Hash:     hash,
	}
	data, _ := json.Marshal(spec)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spec, h.specRev = data, rev
	close(h.specCh)
	h.specCh = make(chan struct{})
}

func (h *fakeHub) getSpec(w http.ResponseWriter, r *http.Request, host string) {
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	deadline := time.After(time.Duration(wait) * time.Second)
	for {
		h.mu.Lock()
		spec, rev, ch := h.spec, h.specRev, h.specCh
		h.mu.Unlock()
		if spec != nil && rev > since {
			w.Header().Set("Content-Type", "application/json")
			w.Write(spec)
			return
		}
		select {
		case <-ch:
		case <-deadline:
			w.WriteHeader(http.StatusNotModified)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// logRecorder keeps every log record so tests can wait for the lines the
// agent promises ("enrolled", "pending approval", "spec received").
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
	attrs   []slog.Attr
	changed chan struct{}
	parent  *logRecorder
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newLogRecorder() *logRecorder { return &logRecorder{changed: make(chan struct{})} }

func (l *logRecorder) root() *logRecorder {
	if l.parent != nil {
		return l.parent
	}
	return l
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{parent: l.root(), attrs: append(append([]slog.Attr{}, l.attrs...), as...)}
}

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range l.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	root := l.root()
	root.mu.Lock()
	root.records = append(root.records, rec)
	close(root.changed)
	root.changed = make(chan struct{})
	root.mu.Unlock()
	return nil
}

// find returns the records with message msg.
func (l *logRecorder) find(msg string) []logRecord {
	root := l.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	var out []logRecord
	for _, r := range root.records {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// wait blocks until n records with message msg exist.
func (l *logRecorder) wait(t *testing.T, msg string, n int) []logRecord {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		root := l.root()
		root.mu.Lock()
		ch := root.changed
		root.mu.Unlock()
		if got := l.find(msg); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %d log lines %q; log:\n%s", n, msg, l.dump())
		}
	}
}

func (l *logRecorder) dump() string {
	root := l.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	s := ""
	for _, r := range root.records {
		s += fmt.Sprintf("  %s %s %v\n", r.level, r.msg, r.attrs)
	}
	return s
}

// testEnv is one agent's world: a fake host root, a state directory and
// user-data pointing at the fake hub.
type testEnv struct {
	hub      *fakeHub
	root     hostos.Root
	stateDir string
	ud       *userdata.UserData
	log      *logRecorder
}

func newTestEnv(t *testing.T, hub *fakeHub, token string) *testEnv {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for p, c := range map[string]string{
		"etc/machine-id": "0123456789abcdef0123456789abcdef\n",
		"etc/hostname":   "store-42\n",
		"proc/meminfo":   "MemTotal: 2048000 kB\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(c), 0o644)
	}
	ud := &userdata.UserData{
		Hub:          userdata.Hub{URL: hub.srv.URL, CACert: string(hub.ca.CertPEM)},
		Registration: userdata.Registration{Token: token, Project: "waiting-room"},
		Host:         userdata.Host{Name: "Store 42", Labels: map[string]string{"region": "eu"}},
	}
	ud.SetDefaults()
	return &testEnv{hub: hub, root: hostos.Root{Dir: root}, stateDir: filepath.Join(dir, "state"), ud: ud, log: newLogRecorder()}
}

func (e *testEnv) config() Config {
	return Config{
		Root: e.root, UserData: e.ud, StateDir: e.stateDir, Version: "v0.0.1-test",
		Logger:            slog.New(e.log),
		HeartbeatInterval: 50 * time.Millisecond,
		PollWait:          time.Second,
		RetryMin:          10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		RefusedRetryMin: 300 * time.Millisecond, RefusedRetryMax: 600 * time.Millisecond,
	}
}

// start runs an agent; stop (also run at the end of the test) cancels it
// and checks that it stops cleanly and soon.
func (e *testEnv) start(t *testing.T, cfg Config) (a *Agent, stop func()) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run after cancel = %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("agent did not stop within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return a, stop
}
