package agent

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/pki"
)

func TestBackoff(t *testing.T) {
	b := newBackoff(100*time.Millisecond, time.Second)
	b.rand = func() float64 { return 0.999999 } // the top of each range
	var got []time.Duration
	for range 7 {
		got = append(got, b.Next().Round(10*time.Millisecond))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits = %v, want %v ms", got, want)
		}
	}
	b.Reset()
	if d := b.Next().Round(10 * time.Millisecond); d != 100*time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}

	// The wait is drawn from the upper half and never exceeds max, even
	// after very many failures (no overflow).
	b = newBackoff(time.Second, time.Minute)
	for range 200 {
		d := b.Next()
		if d > time.Minute || d <= 0 {
			t.Fatalf("wait %v out of (0, 1m]", d)
		}
	}
	if d := b.Next(); d < 30*time.Second {
		t.Errorf("capped wait %v below max/2", d)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		d := jitter(10 * time.Second)
		if d < 9*time.Second || d > 11*time.Second {
			t.Fatalf("jitter(10s) = %v, want within ±10%%", d)
		}
	}
}

// signClient issues a client certificate without pki's back-dating, so
// tests control its lifetime exactly.
func signClient(t *testing.T, ca *pki.CA, pub any, cn string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: bigSerial(),
		Subject:      pkixName(cn),
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(randReader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return pki.EncodeCertificate(der)
}

func TestIdentityPersistence(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := store{dir: dir}
	key, err := s.loadOrCreateKey()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, fileKey))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host.key mode = %v, want 0600", fi.Mode().Perm())
	}
	again, err := s.loadOrCreateKey()
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(again.Public()) {
		t.Fatal("a second start made a new key")
	}

	ca, _ := pki.NewCA("hub")
	other, _ := pki.NewCA("other hub")
	now := time.Now()
	certPEM := signClient(t, ca, key.Public(), "edge-1", now.Add(-time.Minute), now.Add(time.Hour))
	c, err := checkCert(certPEM, "edge-1", key, ca.Pool(), now)
	if err != nil {
		t.Fatal(err)
	}
	c.project = "stores"
	if err := s.saveCreds(c, ca.CertPEM, "edge-1", now); err != nil {
		t.Fatal(err)
	}
	pool, caPEM, err := s.loadCA()
	if err != nil || pool == nil || string(caPEM) != string(ca.CertPEM) {
		t.Fatalf("loadCA = %v, %v", pool, err)
	}
	got, why := s.loadCreds("edge-1", key, pool, now)
	if got == nil {
		t.Fatalf("stored identity not reused: %s", why)
	}
	if got.project != "stores" || !got.cert.Equal(c.cert) {
		t.Errorf("loaded identity = %q %v", got.project, got.cert.Subject)
	}

	otherKey, _ := pki.NewKey()
	tests := []struct {
		name   string
		hostID string
		key    any
		pool   *x509.CertPool
		now    time.Time
	}{
		{"host ID changed", "edge-2", key, pool, now},
		{"another key", "edge-1", otherKey, pool, now},
		{"another CA", "edge-1", key, other.Pool(), now},
		{"expired", "edge-1", key, pool, now.Add(2 * time.Hour)},
		{"no CA", "edge-1", key, nil, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := key
			if tt.key != any(key) {
				k = otherKey
			}
			if c, _ := s.loadCreds(tt.hostID, k, tt.pool, tt.now); c != nil {
				t.Error("an unusable identity was reused")
			}
		})
	}

	if err := s.dropCert(); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.loadCreds("edge-1", key, pool, now); c != nil {
		t.Error("dropped certificate still loads")
	}
	if _, err := os.Stat(filepath.Join(dir, fileKey)); err != nil {
		t.Error("dropCert removed the key")
	}
	if err := s.dropCert(); err != nil {
		t.Errorf("dropCert twice: %v", err)
	}
}

func TestRenewAt(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &x509.Certificate{NotBefore: start, NotAfter: start.Add(30 * time.Hour)}
	if got, want := renewAt(c), start.Add(20*time.Hour); !got.Equal(want) {
		t.Errorf("renewAt = %v, want %v", got, want)
	}
}

func TestInventoryTracker(t *testing.T) {
	invA := &v1.Inventory{Arch: "amd64", MemoryMiB: 1024}
	invB := &v1.Inventory{Arch: "amd64", MemoryMiB: 2048}
	steps := []struct {
		name     string
		inv      *v1.Inventory
		ok       bool // the hub accepted the heartbeat
		askAgain bool // the hub answered SendInventory
		wantSent bool
	}{
		{"first heartbeat sends it", invA, true, false, true},
		{"unchanged: hash only", invA, true, false, false},
		{"changed: sent", invB, false, false, true},
		{"not accepted: sent again", invB, true, false, true},
		{"accepted: hash only", invB, true, true, false},
		{"hub asked: sent", invB, true, false, true},
		{"back to normal", invB, true, false, false},
		{"no inventory: nothing", nil, true, false, false},
	}
	var tr inventoryTracker
	for _, s := range steps {
		var req v1.HeartbeatRequest
		tr.prepare(&req, s.inv)
		if sent := req.Inventory != nil; sent != s.wantSent {
			t.Fatalf("%s: inventory sent = %v, want %v", s.name, sent, s.wantSent)
		}
		if req.InventoryHash != s.inv.Hash() {
			t.Fatalf("%s: hash %q, want %q", s.name, req.InventoryHash, s.inv.Hash())
		}
		if s.ok {
			tr.done(&req, &v1.HeartbeatResponse{SendInventory: s.askAgain})
		}
	}
}

func TestProxyFunc(t *testing.T) {
	tests := []struct {
		name   string
		proxy  userdata.Proxy
		target string
		want   string
	}{
		{"https proxy", userdata.Proxy{HTTPSProxy: "http://sp:3128", HTTPProxy: "http://p:3128"}, "https://hub.example.com/agent/v1/enroll", "http://sp:3128"},
		{"http proxy serves https too", userdata.Proxy{HTTPProxy: "http://p:3128"}, "https://hub.example.com/", "http://p:3128"},
		{"bare host:port", userdata.Proxy{HTTPProxy: "p:3128"}, "https://hub.example.com/", "http://p:3128"},
		{"no proxy domain", userdata.Proxy{HTTPProxy: "http://p:3128", NoProxy: "localhost,.example.com"}, "https://hub.example.com/", ""},
		{"no proxy cidr", userdata.Proxy{HTTPProxy: "http://p:3128", NoProxy: "10.0.0.0/8"}, "https://10.1.2.3:7443/", ""},
		{"http target", userdata.Proxy{HTTPProxy: "http://p:3128", HTTPSProxy: "http://sp:3128"}, "http://mirror.example.org/x", "http://p:3128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := url.Parse(tt.target)
			got, err := proxyFunc(tt.proxy)(&http.Request{URL: u})
			if err != nil {
				t.Fatal(err)
			}
			gotS := ""
			if got != nil {
				gotS = got.String()
			}
			if gotS != tt.want {
				t.Errorf("proxy for %s = %q, want %q", tt.target, gotS, tt.want)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	api := func(status int, code string) error {
		return fmt.Errorf("POST x: %w", errs.FromAPI(status, v1.Error{Code: code}))
	}
	tlsAlert := &url.Error{Op: "Post", URL: "https://hub", Err: &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}}
	tests := []struct {
		name          string
		err           error
		auth, refusal bool
	}{
		{"401", api(401, v1.CodeUnauthenticated), true, true},
		{"403", api(403, v1.CodeForbidden), true, true},
		{"token revoked", api(401, v1.CodeTokenRevoked), true, true},
		{"conflict", api(409, v1.CodeConflict), false, true},
		{"too many requests", api(429, ""), false, false},
		{"unavailable", api(503, v1.CodeUnavailable), false, false},
		{"tls alert", tlsAlert, true, false},
		{"refused connection", &url.Error{Op: "Post", URL: "https://hub", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, false, false},
	}
	for _, tt := range tests {
		if got := isAuthFailure(tt.err); got != tt.auth {
			t.Errorf("%s: isAuthFailure = %v", tt.name, got)
		}
		if got := isRefusal(tt.err); got != tt.refusal {
			t.Errorf("%s: isRefusal = %v", tt.name, got)
		}
	}
}

// With insecureSkipVerify and a pinned CA, the hub's name is not checked
// but its chain to the pinned CA is.
func TestPinnedInsecureStillChecksChain(t *testing.T) {
	hubCA, _ := pki.NewCA("hub")
	stranger, _ := pki.NewCA("stranger")
	key, _ := pki.NewKey()
	certPEM, err := hubCA.SignServer(key, []string{"some.other.name"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, _ := pki.ParseCertificate(certPEM)
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{serverCert}}

	ok := tlsSettings{pinned: hubCA.Pool(), insecure: true}.config()
	if !ok.InsecureSkipVerify || ok.VerifyConnection == nil {
		t.Fatal("pinned+insecure config does not verify the chain itself")
	}
	if err := ok.VerifyConnection(state); err != nil {
		t.Errorf("hub certificate from the pinned CA refused: %v", err)
	}
	bad := tlsSettings{pinned: stranger.Pool(), insecure: true}.config()
	if err := bad.VerifyConnection(state); err == nil {
		t.Error("hub certificate from another CA accepted")
	}
	if cfg := (tlsSettings{pinned: hubCA.Pool()}).config(); cfg.InsecureSkipVerify || cfg.RootCAs == nil {
		t.Error("pinned config does not verify normally")
	}
	if cfg := (tlsSettings{insecure: true}).config(); !cfg.InsecureSkipVerify {
		t.Error("insecure bootstrap config verifies")
	}
}
