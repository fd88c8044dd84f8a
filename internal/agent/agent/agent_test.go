package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/pki"
)

// specSink collects what OnSpec was called with.
type specSink struct {
	mu    sync.Mutex
	specs []v1.HostSpec
}

func (s *specSink) on(spec v1.HostSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs = append(s.specs, spec)
}

func (s *specSink) revisions() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int64
	for _, sp := range s.specs {
		out = append(out, sp.Metadata.Revision)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEnrollHeartbeatSpecAndRestart(t *testing.T) {
	hub := newFakeHub(t)
	env := newTestEnv(t, hub, "good-token")
	var sink specSink
	cfg := env.config()
	cfg.OnSpec = sink.on
	a, stop := env.start(t, cfg)
	host := a.HostID()
	if host != "edge-0123456789abcdef0123456789abcdef" {
		t.Fatalf("host ID = %q, want one from machine-id with the default prefix", host)
	}

	rec := env.log.wait(t, "enrolled", 1)[0]
	if rec.attrs["host"] != host || rec.attrs["project"] != "from-token" {
		t.Errorf("enrolled log attrs = %v", rec.attrs)
	}
	if st := a.Status(); st.Phase != PhaseEnrolled || st.Project != "from-token" || st.CertificateNotAfter.IsZero() {
		t.Errorf("status = %+v", st)
	}
	hub.mu.Lock()
	req := hub.enrolls[0]
	hub.mu.Unlock()
	if req.HostID != host || req.RegistrationToken != "good-token" || req.Project != "" ||
		req.Labels["name"] != "Store 42" || req.Labels["region"] != "eu" ||
		req.AgentVersion != "v0.0.1-test" || req.Inventory == nil || req.Inventory.Hostname != "store-42" {
		t.Errorf("enroll request = %+v", req)
	}
	if csr, err := pki.ParseCSR([]byte(req.CSR)); err != nil || csr.Subject.CommonName != host {
		t.Errorf("CSR: %v %v", csr, err)
	}
	for _, f := range []string{fileKey, fileCert, fileCA, fileIdentity} {
		if _, err := os.Stat(filepath.Join(env.stateDir, f)); err != nil {
			t.Errorf("state file %s: %v", f, err)
		}
	}

	// Heartbeats: the first carries the inventory, the next ones only its
	// hash, since nothing changed.
	eventually(t, "3 heartbeats", func() bool { hub.mu.Lock(); defer hub.mu.Unlock(); return len(hub.heartbeats) >= 3 })
	hub.mu.Lock()
	hbs := append([]v1.HeartbeatRequest(nil), hub.heartbeats...)
	hub.mu.Unlock()
	if hbs[0].Inventory == nil || hbs[1].Inventory != nil || hbs[2].Inventory != nil {
		t.Errorf("inventory sent in heartbeats: %v %v %v", hbs[0].Inventory != nil, hbs[1].Inventory != nil, hbs[2].Inventory != nil)
	}
	if hbs[1].InventoryHash == "" || hbs[1].InventoryHash != hbs[0].Inventory.Hash() {
		t.Errorf("heartbeat hash %q does not match the inventory sent", hbs[1].InventoryHash)
	}
	// A change on the host goes out with the next heartbeat.
	os.WriteFile(filepath.Join(env.root.Dir, "proc/meminfo"), []byte("MemTotal: 4096000 kB\n"), 0o644)
	eventually(t, "a heartbeat with the new inventory", func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		for _, hb := range hub.heartbeats {
			if hb.Inventory != nil && hb.Inventory.MemoryMiB == 4000 {
				return true
			}
		}
		return false
	})

	// A spec on the hub reaches the agent through the long-poll, on disk
	// first.
	hub.setSpec(host, 5, "hash-5")
	rec = env.log.wait(t, "spec received", 1)[0]
	if rec.attrs["host"] != host || rec.attrs["revision"] != "5" {
		t.Errorf("spec received attrs = %v", rec.attrs)
	}
	eventually(t, "OnSpec(5)", func() bool { return len(sink.revisions()) == 1 })
	data, err := os.ReadFile(filepath.Join(env.stateDir, fileSpec))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk v1.HostSpec
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.Metadata.Revision != 5 || onDisk.Hash != "hash-5" {
		t.Errorf("spec.json = %s (%v)", data, err)
	}
	hub.setSpec(host, 9, "hash-9")
	env.log.wait(t, "spec received", 2)
	if got := a.Status().SpecRevision; got != 9 {
		t.Errorf("status spec revision = %d", got)
	}
	hub.mu.Lock()
	if !hub.http2 {
		t.Error("some requests did not use HTTP/2")
	}
	hub.mu.Unlock()
	stop()

	// A restart reuses the identity (no enrollment) and applies the cached
	// spec before it hears from the hub.
	enrollsBefore := hub.count(v1.AgentPathEnroll)
	heartbeatsBefore := hub.count(v1.AgentPathHeartbeat)
	var sink2 specSink
	env2 := *env
	env2.log = newLogRecorder()
	cfg2 := env2.config()
	cfg2.OnSpec = sink2.on
	env2.start(t, cfg2)
	env2.log.wait(t, "already enrolled", 1)
	env2.log.wait(t, "spec loaded from cache", 1)
	eventually(t, "heartbeats after restart", func() bool { return hub.count(v1.AgentPathHeartbeat) >= heartbeatsBefore+2 })
	if got := hub.count(v1.AgentPathEnroll); got != enrollsBefore {
		t.Errorf("restart enrolled again (%d enroll calls, want %d)", got, enrollsBefore)
	}
	if got := sink2.revisions(); len(got) != 1 || got[0] != 9 {
		t.Errorf("OnSpec after restart = %v, want the cached [9]", got)
	}
	// since=9 in the poll: the hub has nothing newer, so nothing arrives.
	time.Sleep(300 * time.Millisecond)
	if n := len(env2.log.find("spec received")); n != 0 {
		t.Errorf("restart received the spec again %d times", n)
	}
}

func TestPendingApproval(t *testing.T) {
	hub := newFakeHub(t)
	env := newTestEnv(t, hub, "")
	a, _ := env.start(t, env.config())
	rec := env.log.wait(t, "pending approval", 1)[0]
	if rec.attrs["host"] != a.HostID() || rec.attrs["project"] != "waiting-room" {
		t.Errorf("pending approval attrs = %v", rec.attrs)
	}
	eventually(t, "phase PendingApproval", func() bool { return a.Status().Phase == PhasePendingApproval })
	hub.mu.Lock()
	first := hub.enrolls[0]
	hub.mu.Unlock()
	if first.Project != "waiting-room" || first.RegistrationToken != "" {
		t.Errorf("token-less enroll request: project %q token %q", first.Project, first.RegistrationToken)
	}
	// While pending the hub holds each request (wait=1s here): no spinning.
	time.Sleep(1500 * time.Millisecond)
	if n := hub.count(v1.AgentPathEnroll); n > 4 {
		t.Errorf("%d enroll calls in 1.5s while pending", n)
	}
	hub.approve()
	env.log.wait(t, "enrolled", 1)
	if n := len(env.log.find("pending approval")); n != 1 {
		t.Errorf("pending approval logged %d times, want once", n)
	}
	// Every repeat was the same request: same key and host.
	hub.mu.Lock()
	defer hub.mu.Unlock()
	for _, r := range hub.enrolls[1:] {
		if r.CSR != first.CSR {
			t.Error("a repeated enrollment used another CSR")
		}
	}
}

func TestRefusedTokenRetriesSlowly(t *testing.T) {
	hub := newFakeHub(t)
	hub.refuseCode = v1.CodeTokenRevoked
	env := newTestEnv(t, hub, "good-token")
	a, _ := env.start(t, env.config())
	rec := env.log.wait(t, "enrollment refused", 1)[0]
	if rec.level != 8 /* slog.LevelError */ || rec.attrs["code"] != v1.CodeTokenRevoked || rec.attrs["host"] != a.HostID() {
		t.Errorf("refusal log = %v %v", rec.level, rec.attrs)
	}
	if st := a.Status(); st.Phase != PhaseEnrolling || !strings.Contains(st.LastError, "refused") {
		t.Errorf("status = %+v", st)
	}
	time.Sleep(time.Second)
	// 300ms doubling to 600ms, from the upper half: at most ~5 calls a second.
	if n := hub.count(v1.AgentPathEnroll); n > 5 {
		t.Errorf("%d enroll calls in about a second after refusals", n)
	}
	// Someone fixes the token on the hub: the agent gets in by itself.
	hub.mu.Lock()
	hub.refuseCode = ""
	hub.mu.Unlock()
	env.log.wait(t, "enrolled", 1)
}

func TestReenrollWhenHubRejectsCertificate(t *testing.T) {
	hub := newFakeHub(t)
	env := newTestEnv(t, hub, "good-token")
	a, _ := env.start(t, env.config())
	env.log.wait(t, "enrolled", 1)
	eventually(t, "a heartbeat", func() bool { return hub.count(v1.AgentPathHeartbeat) >= 1 })
	keyBefore, _ := os.ReadFile(filepath.Join(env.stateDir, fileKey))

	hub.revokeAll() // the host was deleted on the hub
	env.log.wait(t, "hub no longer accepts the host certificate; enrolling again", 1)
	env.log.wait(t, "enrolled", 2)
	eventually(t, "heartbeats with the new certificate", func() bool {
		hub.mu.Lock()
		defer hub.mu.Unlock()
		return len(hub.heartbeats) >= 3
	})
	if a.Status().Phase != PhaseEnrolled {
		t.Errorf("phase = %s", a.Status().Phase)
	}
	keyAfter, _ := os.ReadFile(filepath.Join(env.stateDir, fileKey))
	if string(keyBefore) != string(keyAfter) {
		t.Error("re-enrollment replaced the host key")
	}
}

// A hub that no longer trusts the certificate's CA refuses it during the
// TLS handshake, before any status code: that must also lead to a new
// enrollment, not to retrying the dead certificate for ever.
func TestReenrollWhenHandshakeRejectsCertificate(t *testing.T) {
	hub := newFakeHub(t)
	env := newTestEnv(t, hub, "good-token")
	env.start(t, env.config())
	env.log.wait(t, "enrolled", 1)
	eventually(t, "a heartbeat", func() bool { return hub.count(v1.AgentPathHeartbeat) >= 1 })

	stranger, _ := pki.NewCA("another CA")
	hub.clientCAs.Store(stranger.Pool())
	hub.srv.CloseClientConnections() // force new handshakes
	rec := env.log.wait(t, "hub no longer accepts the host certificate; enrolling again", 1)[0]
	if !strings.Contains(rec.attrs["error"], "certificate") {
		t.Errorf("re-enrolled because of %q, want the TLS alert", rec.attrs["error"])
	}
	hub.clientCAs.Store(hub.ca.Pool())
	env.log.wait(t, "enrolled", 2)
}

func TestHeartbeatIntervalFromHub(t *testing.T) {
	hub := newFakeHub(t)
	hub.interval = 1 // the agent's own is 50ms
	env := newTestEnv(t, hub, "good-token")
	env.start(t, env.config())
	env.log.wait(t, "enrolled", 1)
	time.Sleep(1500 * time.Millisecond)
	// The first heartbeat goes at once, then one a second (±10%).
	if n := hub.count(v1.AgentPathHeartbeat); n < 1 || n > 3 {
		t.Errorf("%d heartbeats in 1.5s with a 1s interval from the hub", n)
	}
}

func TestRenewal(t *testing.T) {
	hub := newFakeHub(t)
	hub.ttl = 2 * time.Second // lifetime 3s with the 1s back-dating: renewal 1s after issue
	env := newTestEnv(t, hub, "good-token")
	a, _ := env.start(t, env.config())
	env.log.wait(t, "enrolled", 1)
	serial := func() string {
		data, _ := os.ReadFile(filepath.Join(env.stateDir, fileCert))
		c, err := pki.ParseCertificate(data)
		if err != nil {
			t.Fatal(err)
		}
		return c.SerialNumber.String()
	}
	first, firstEnd := serial(), a.Status().CertificateNotAfter
	env.log.wait(t, "certificate renewed", 2)
	if serial() == first {
		t.Error("host.crt still holds the first certificate")
	}
	if got := a.Status().CertificateNotAfter; got.Before(firstEnd) {
		t.Errorf("certificate end %v before the first %v", got, firstEnd)
	}
	hbs := hub.count(v1.AgentPathHeartbeat)
	eventually(t, "heartbeats after renewal", func() bool { return hub.count(v1.AgentPathHeartbeat) >= hbs+2 })
	if n := len(env.log.find("enrolled")); n != 1 {
		t.Errorf("enrolled %d times, want renewals only", n)
	}
	// The renewed certificate is what is on disk.
	data, _ := os.ReadFile(filepath.Join(env.stateDir, fileCert))
	cert, err := pki.ParseCertificate(data)
	if err != nil || !cert.NotAfter.Equal(a.Status().CertificateNotAfter) {
		t.Errorf("host.crt ends %v, status says %v (%v)", cert.NotAfter, a.Status().CertificateNotAfter, err)
	}
}

// With insecureSkipVerify the first contact trusts any certificate; after
// enrollment the hub CA is pinned and checked, only the name is not.
func TestInsecureSkipVerifyThenPinned(t *testing.T) {
	hub := newFakeHub(t, "hub.invalid") // a certificate without 127.0.0.1
	env := newTestEnv(t, hub, "good-token")
	env.ud.Hub.CACert = ""
	env.ud.Hub.InsecureSkipVerify = true
	env.start(t, env.config())
	env.log.wait(t, "enrolled", 1)
	eventually(t, "heartbeats over the pinned CA", func() bool { return hub.count(v1.AgentPathHeartbeat) >= 2 })
}

func TestHubNameMismatchIsNotTrusted(t *testing.T) {
	hub := newFakeHub(t, "hub.invalid")
	env := newTestEnv(t, hub, "good-token")
	env.start(t, env.config())
	rec := env.log.wait(t, "enrollment failed", 1)[0]
	if !strings.Contains(rec.attrs["error"], "certificate") {
		t.Errorf("error = %q, want a certificate error", rec.attrs["error"])
	}
	if hub.count(v1.AgentPathEnroll) != 0 {
		t.Error("the agent talked to a hub it cannot verify")
	}
}

func TestSpecCache(t *testing.T) {
	hub := newFakeHub(t)
	env := newTestEnv(t, hub, "good-token")
	var seen []int64
	cfg := env.config()
	cfg.OnSpec = func(s v1.HostSpec) {
		// OnSpec must find the spec already on disk.
		data, err := os.ReadFile(filepath.Join(env.stateDir, fileSpec))
		var disk v1.HostSpec
		if err != nil || json.Unmarshal(data, &disk) != nil || disk.Metadata.Revision != s.Metadata.Revision {
			t.Errorf("OnSpec(%d) before the spec was on disk (%s)", s.Metadata.Revision, data)
		}
		seen = append(seen, s.Metadata.Revision)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rev := a.loadCachedSpec(); rev != 0 || len(seen) != 0 {
		t.Fatalf("no cache: rev %d, OnSpec %v", rev, seen)
	}

	spec := func(host string, rev int64) []byte {
		b, _ := json.Marshal(v1.HostSpec{Metadata: v1.ObjectMeta{Name: host, Revision: rev}, Hash: "h"})
		// A field this agent version does not know must survive in the cache.
		return append(b[:len(b)-1], []byte(`,"future":{"x":1}}`)...)
	}
	if _, err := a.takeSpec(spec(a.HostID(), 3), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.takeSpec(spec(a.HostID(), 3), 3); err == nil {
		t.Error("a spec not newer than since was taken")
	}
	if _, err := a.takeSpec(spec("edge-someone-else", 4), 3); err == nil {
		t.Error("another host's spec was taken")
	}
	if _, err := a.takeSpec([]byte("{not json"), 3); err == nil {
		t.Error("a broken spec was taken")
	}
	data, _ := os.ReadFile(filepath.Join(env.stateDir, fileSpec))
	if !strings.Contains(string(data), `"future"`) {
		t.Errorf("cache lost unknown fields: %s", data)
	}
	if fi, _ := os.Stat(filepath.Join(env.stateDir, fileSpec)); fi.Mode().Perm() != 0o600 {
		t.Errorf("spec.json mode %v, want 0600", fi.Mode().Perm())
	}
	if rev := a.loadCachedSpec(); rev != 3 {
		t.Errorf("cached revision = %d", rev)
	}
	if len(seen) != 2 || seen[0] != 3 || seen[1] != 3 {
		t.Errorf("OnSpec calls = %v", seen)
	}

	// Another host's cache (host.id changed) is not applied.
	os.WriteFile(filepath.Join(env.stateDir, fileSpec), spec("edge-old-name", 7), 0o600)
	if rev := a.loadCachedSpec(); rev != 0 || len(seen) != 2 {
		t.Errorf("foreign cache: rev %d, OnSpec %v", rev, seen)
	}
	// A damaged cache is ignored, not fatal.
	os.WriteFile(filepath.Join(env.stateDir, fileSpec), []byte("{"), 0o600)
	if rev := a.loadCachedSpec(); rev != 0 {
		t.Errorf("damaged cache: rev %d", rev)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without user-data succeeded")
	}
	hub := newFakeHub(t)
	env := newTestEnv(t, hub, "")
	env.ud.Hub.URL = "http://plain"
	if _, err := New(env.config()); err == nil || !strings.Contains(err.Error(), "hub.url") {
		t.Errorf("New with a bad hub URL: %v", err)
	}
	env = newTestEnv(t, hub, "")
	os.Remove(filepath.Join(env.root.Dir, "etc/machine-id"))
	if _, err := New(env.config()); err == nil || !strings.Contains(err.Error(), "host ID") {
		t.Errorf("New without any host ID: %v", err)
	}
}
