package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/auth"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/sqlite"
	"github.com/outpost-edge/outpost/internal/hub/watch"
	"github.com/outpost-edge/outpost/pki"
)

var admin = &auth.Principal{TokenName: "test", Roles: []v1.ProjectRole{{Project: "*", Role: v1.RoleAdmin}}}

type fixture struct {
	svc   *Service
	store store.Store
	clock atomic.Pointer[time.Time]
}

func (f *fixture) advance(d time.Duration) {
	t := f.clock.Load().Add(d)
	f.clock.Store(&t)
}

// newFixture runs a service on a real SQLite store in a temp dir, with a
// clock the test moves.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wh := watch.New(st, log)
	f := &fixture{store: st}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	f.clock.Store(&now)
	f.svc = New(cfg, st, wh, ca, log)
	f.svc.now = func() time.Time { return *f.clock.Load() }
	done := make(chan struct{})
	go func() { wh.Run(ctx); close(done) }()
	<-wh.Ready()
	if err := f.svc.hosts.load(ctx, st); err != nil {
		t.Fatal(err)
	}
	f.svc.presence.load(nil, now)
	go f.svc.trainLoop(ctx)
	if err := f.svc.EnsureProject(ctx, DefaultProject, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return f
}

func enrollRequest(t testing.TB, id, token string) *v1.EnrollRequest {
	t.Helper()
	key, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	return &v1.EnrollRequest{HostID: id, CSR: csr, RegistrationToken: token, AgentVersion: "1.0.0",
		Inventory: &v1.Inventory{Arch: "amd64", CPU: v1.CPU{Cores: 4}, MemoryMiB: 8192}}
}

func (f *fixture) enrolled(t testing.TB, id string) *AgentIdentity {
	t.Helper()
	ctx := context.Background()
	tok, err := f.svc.CreateRegistrationToken(ctx, admin, DefaultProject, &v1.RegistrationToken{Metadata: v1.ObjectMeta{Name: "t-" + id}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Enroll(ctx, enrollRequest(t, id, tok.Token), 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertificate([]byte(res.Response.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.svc.AuthenticateAgent(cert)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A heartbeat that changes nothing must not write: the revision stays put.
func TestHeartbeatIsNotAWrite(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	a := f.enrolled(t, "edge-1")
	inv := &v1.Inventory{Arch: "amd64", CPU: v1.CPU{Cores: 4}, MemoryMiB: 8192}
	if _, err := f.svc.Heartbeat(ctx, a, &v1.HeartbeatRequest{AgentVersion: "1.0.0", InventoryHash: inv.Hash()}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.store.Revision(ctx)
	for range 50 {
		resp, err := f.svc.Heartbeat(ctx, a, &v1.HeartbeatRequest{AgentVersion: "1.0.0", InventoryHash: inv.Hash()})
		if err != nil {
			t.Fatal(err)
		}
		if resp.SendInventory {
			t.Fatal("hub asked for an inventory it has")
		}
	}
	if after, _ := f.store.Revision(ctx); after != before {
		t.Fatalf("50 unchanged heartbeats moved the revision %d -> %d", before, after)
	}

	// A changed inventory is asked for, then stored once.
	changed := &v1.Inventory{Arch: "amd64", CPU: v1.CPU{Cores: 4}, MemoryMiB: 16384}
	resp, err := f.svc.Heartbeat(ctx, a, &v1.HeartbeatRequest{AgentVersion: "1.0.0", InventoryHash: changed.Hash()})
	if err != nil || !resp.SendInventory {
		t.Fatalf("changed inventory hash not asked for: %+v %v", resp, err)
	}
	if _, err := f.svc.Heartbeat(ctx, a, &v1.HeartbeatRequest{AgentVersion: "1.0.0", InventoryHash: changed.Hash(), Inventory: changed}); err != nil {
		t.Fatal(err)
	}
	h, err := f.svc.GetHost(ctx, admin, DefaultProject, "edge-1")
	if err != nil || h.Status.Inventory.MemoryMiB != 16384 {
		t.Fatalf("inventory not updated: %+v %v", h.Status.Inventory, err)
	}
}

// Hosts silent for longer than OfflineAfter turn Offline; a heartbeat brings
// them back. The clock is the fixture's, so this takes no wall time.
func TestOfflineAndBack(t *testing.T) {
	f := newFixture(t, Config{OfflineAfter: time.Minute})
	ctx := context.Background()
	a := f.enrolled(t, "edge-2")
	if _, err := f.svc.Heartbeat(ctx, a, &v1.HeartbeatRequest{}); err != nil {
		t.Fatal(err)
	}
	health := func() string {
		h, err := f.svc.GetHost(ctx, admin, DefaultProject, "edge-2")
		if err != nil {
			t.Fatal(err)
		}
		return h.Status.Health
	}
	f.advance(59 * time.Second)
	f.svc.markOffline(ctx)
	if got := health(); got != v1.HealthHealthy {
		t.Fatalf("after 59s of silence: %s", got)
	}
	f.advance(2 * time.Second)
	f.svc.markOffline(ctx)
	if got := health(); got != v1.HealthOffline {
		t.Fatalf("after 61s of silence: %s, want Offline", got)
	}
	if _, err := f.svc.Heartbeat(ctx, a, &v1.HeartbeatRequest{Health: v1.HealthUnhealthy, HealthMessage: "disk full"}); err != nil {
		t.Fatal(err)
	}
	if got := health(); got != v1.HealthUnhealthy {
		t.Fatalf("after an unhealthy heartbeat: %s", got)
	}
	evs, err := f.svc.ListEvents(ctx, admin, DefaultProject, "EdgeHost/edge-2")
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs.Items {
		reasons = append(reasons, e.Reason)
	}
	want := []string{"Paired", "Healthy", "Offline", "Unhealthy"}
	if len(reasons) != len(want) {
		t.Fatalf("events %v, want %v", reasons, want)
	}
	for i := range want {
		if reasons[i] != want[i] {
			t.Fatalf("events %v, want %v", reasons, want)
		}
	}
}

// A token with one use left, raced by many hosts, admits exactly one.
func TestTokenMaxUsesUnderRace(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	tok, err := f.svc.CreateRegistrationToken(ctx, admin, DefaultProject, &v1.RegistrationToken{
		Metadata: v1.ObjectMeta{Name: "one"}, Spec: v1.RegistrationTokenSpec{MaxUses: 1}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	var ok, usedUp atomic.Int32
	for i := range n {
		req := enrollRequest(t, "race-"+string(rune('a'+i)), tok.Token)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Enroll(ctx, req, 0)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, errs.ErrTokenUsedUp):
				usedUp.Add(1)
			default:
				t.Errorf("enroll: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || usedUp.Load() != n-1 {
		t.Fatalf("%d enrolled, %d refused as used up; want 1 and %d", ok.Load(), usedUp.Load(), n-1)
	}
	hosts, err := f.svc.ListHosts(ctx, admin, DefaultProject, HostFilter{})
	if err != nil || len(hosts.Items) != 1 {
		t.Fatalf("hosts after the race: %d (%v)", len(hosts.Items), err)
	}
}

// Re-enrolling with a new key needs a token, and makes the old certificate
// useless; the same key gets a new certificate without one.
func TestReEnrollment(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	first := enrollRequest(t, "edge-3", "")
	tok, _ := f.svc.CreateRegistrationToken(ctx, admin, DefaultProject, &v1.RegistrationToken{Metadata: v1.ObjectMeta{Name: "t"}})
	first.RegistrationToken = tok.Token
	res, err := f.svc.Enroll(ctx, first, 0)
	if err != nil {
		t.Fatal(err)
	}
	oldCert, _ := pki.ParseCertificate([]byte(res.Response.Certificate))

	again := *first
	again.RegistrationToken = ""
	if _, err := f.svc.Enroll(ctx, &again, 0); err != nil {
		t.Fatalf("same key, no token: %v", err)
	}
	if _, err := f.svc.AuthenticateAgent(oldCert); err != nil {
		t.Fatalf("same-key re-enrollment invalidated the old certificate: %v", err)
	}

	stranger := enrollRequest(t, "edge-3", "")
	if _, err := f.svc.Enroll(ctx, stranger, 0); !errors.Is(err, errs.ErrConflict) {
		t.Fatalf("new key without token: %v, want conflict", err)
	}
	stranger.RegistrationToken = tok.Token
	if _, err := f.svc.Enroll(ctx, stranger, 0); err != nil {
		t.Fatalf("new key with token: %v", err)
	}
	if _, err := f.svc.AuthenticateAgent(oldCert); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("old certificate after re-enrollment with a new key: %v, want unauthenticated", err)
	}
}

// A pending enrollment held open is answered as soon as a person approves.
func TestPendingEnrollmentWakesOnApproval(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	req := enrollRequest(t, "edge-4", "")
	res, err := f.svc.Enroll(ctx, req, 0)
	if err != nil || !res.Pending {
		t.Fatalf("first enrollment: %+v %v", res, err)
	}
	got := make(chan *EnrollResult, 1)
	go func() {
		r, err := f.svc.Enroll(ctx, req, 30*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := f.svc.ApproveHost(ctx, admin, DefaultProject, "edge-4"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r == nil || r.Pending || r.Response.Certificate == "" {
			t.Fatalf("after approval: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held enrollment not answered within 5s of approval")
	}
}

func TestRegistrationState(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	tests := []struct {
		name string
		tok  v1.RegistrationToken
		want string
	}{
		{"fresh", v1.RegistrationToken{}, v1.TokenActive},
		{"revoked wins", v1.RegistrationToken{Spec: v1.RegistrationTokenSpec{Revoked: true, ExpiresAt: &past}}, v1.TokenRevoked},
		{"expired", v1.RegistrationToken{Spec: v1.RegistrationTokenSpec{ExpiresAt: &past}}, v1.TokenExpired},
		{"not yet expired", v1.RegistrationToken{Spec: v1.RegistrationTokenSpec{ExpiresAt: &future}}, v1.TokenActive},
		{"used up", v1.RegistrationToken{Spec: v1.RegistrationTokenSpec{MaxUses: 2}, Status: v1.RegistrationTokenStatus{Uses: 2}}, v1.TokenUsedUp},
		{"one left", v1.RegistrationToken{Spec: v1.RegistrationTokenSpec{MaxUses: 2}, Status: v1.RegistrationTokenStatus{Uses: 1}}, v1.TokenActive},
		{"unlimited", v1.RegistrationToken{Status: v1.RegistrationTokenStatus{Uses: 1000}}, v1.TokenActive},
	}
	for _, tt := range tests {
		if got := registrationState(&tt.tok, now); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"site": "store-1", "tier": "gold"}
	tests := []struct {
		sel   string
		match bool
		bad   bool
	}{
		{"", true, false},
		{"site=store-1", true, false},
		{"site==store-1,tier=gold", true, false},
		{"site!=store-1", false, false},
		{"site!=store-2", true, false},
		{"tier", true, false},
		{"!tier", false, false},
		{"!missing", true, false},
		{"missing", false, false},
		{"bad key=1", false, true},
	}
	for _, tt := range tests {
		reqs, err := ParseSelector(tt.sel)
		if (err != nil) != tt.bad {
			t.Errorf("%q: err %v", tt.sel, err)
			continue
		}
		if err == nil && matches(reqs, labels) != tt.match {
			t.Errorf("%q matches %v: got %v", tt.sel, labels, !tt.match)
		}
	}
}

func BenchmarkHeartbeat(b *testing.B) {
	f := newFixture(b, Config{})
	ctx := context.Background()
	a := f.enrolled(b, "edge-bench")
	req := &v1.HeartbeatRequest{AgentVersion: "1.0.0", InventoryHash: (&v1.Inventory{Arch: "amd64", CPU: v1.CPU{Cores: 4}, MemoryMiB: 8192}).Hash()}
	f.svc.Heartbeat(ctx, a, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.Heartbeat(ctx, a, req); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHostMatcherRejectsUnknownFilters(t *testing.T) {
	for _, f := range []HostFilter{{State: "Readdy"}, {Health: "Fine"}, {Selector: "a b"}} {
		_, err := HostMatcher(f)
		var fe *errs.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("HostMatcher(%+v) = %v, want a field error", f, err)
		}
	}
	match, err := HostMatcher(HostFilter{State: "ready", Health: "HEALTHY"})
	if err != nil {
		t.Fatal(err)
	}
	if !match(&v1.EdgeHost{Status: v1.EdgeHostStatus{State: v1.HostReady, Health: v1.HealthHealthy}}) {
		t.Error("state and health filters are case-insensitive")
	}
}

// authPrincipal builds a principal from "project=role,…".
type authPrincipal struct{ roles string }

func (a *authPrincipal) p() *auth.Principal {
	p := &auth.Principal{TokenName: "t"}
	for _, pr := range strings.Split(a.roles, ",") {
		proj, role, _ := strings.Cut(pr, "=")
		p.Roles = append(p.Roles, v1.ProjectRole{Project: proj, Role: role})
	}
	return p
}
