package e2e

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
)

func hostState(c *cli, id string) (v1.EdgeHost, bool) {
	var h v1.EdgeHost
	out, err := c.run("hosts", "get", id, "-o", "json")
	if err != nil {
		return h, false
	}
	if err := jsonUnmarshal(out, &h); err != nil {
		return h, false
	}
	return h, true
}

func waitHost(t *testing.T, c *cli, id string, timeout time.Duration, want func(v1.EdgeHost) bool, what string) v1.EdgeHost {
	t.Helper()
	var got v1.EdgeHost
	eventually(t, timeout, "host "+id+" "+what, func() (bool, string) {
		h, ok := hostState(c, id)
		got = h
		if !ok {
			return false, "not found"
		}
		return want(h), h.Status.State + "/" + h.Status.Health
	})
	return got
}

func readyHealthy(h v1.EdgeHost) bool {
	return h.Status.State == v1.HostReady && h.Status.Health == v1.HealthHealthy
}

// TestIntegrationEnrollment runs the hub and three agents as processes and
// walks the three ways in (token, pre-registration, approval), the tokens
// that must be refused, Offline and back, and deletion.
func TestIntegrationEnrollment(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir)
	admin := newCLI(t, h, h.adminToken)

	// --- by registration token ---
	out := admin.must("tokens", "create", "store-rollout", "--max-uses", "1", "--label", "site=store-17")
	token := findToken(t, out, "ort_")

	a1 := newAgentHost(t, dir, "host1", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
	a1.writeUserData(h, "registration:\n  token: "+token+"\nhost:\n  name: Store 17 till\n")
	id1 := a1.id()
	if id1 != "edge-0a1b2c3d4e5f60718293a4b5c6d7e8f9" {
		t.Fatalf("host ID from machine-id with the default prefix: got %q", id1)
	}
	a1.start()
	got := waitHost(t, admin, id1, 20*time.Second, readyHealthy, "Ready and Healthy")
	if got.Metadata.Labels["site"] != "store-17" || got.Metadata.Labels["name"] != "Store 17 till" {
		t.Errorf("labels from token and user-data: %v", got.Metadata.Labels)
	}
	if got.Spec.DisplayName != "Store 17 till" {
		t.Errorf("display name %q", got.Spec.DisplayName)
	}
	inv := got.Status.Inventory
	if inv == nil || inv.CPU.Cores != 2 || inv.MemoryMiB != 4000 || inv.OS.Name != "Ubuntu" || len(inv.Disks) != 1 || len(inv.NICs) != 1 {
		t.Errorf("inventory not reported as the host has it: %+v", inv)
	}
	if got.Status.AgentVersion != "e2e" {
		t.Errorf("agent version %q", got.Status.AgentVersion)
	}
	var tok v1.RegistrationToken
	admin.json(&tok, "tokens", "get", "store-rollout")
	if tok.Status.Uses != 1 || tok.Status.State != v1.TokenUsedUp {
		t.Errorf("token after one use of one: uses %d state %s", tok.Status.Uses, tok.Status.State)
	}

	// --- refused tokens: nothing is created, the agent says why ---
	revoked := findToken(t, admin.must("tokens", "create", "to-revoke"), "ort_")
	admin.must("tokens", "revoke", "to-revoke")
	expiring := findToken(t, admin.must("tokens", "create", "short-lived", "--expires", time.Now().Add(2*time.Second).UTC().Format(time.RFC3339)), "ort_")
	time.Sleep(2500 * time.Millisecond)
	bad := []struct {
		name, token, want string
	}{
		{"bad", "ort_nosuchtokenid_" + strings.Repeat("x", 40), "not valid"},
		{"expired", expiring, "expired"},
		{"revoked", revoked, "revoked"},
		{"usedup", token, "no uses left"},
	}
	for i, b := range bad {
		a := newAgentHost(t, dir, "refused-"+b.name, strings.Repeat(string(rune('a'+i)), 32))
		a.writeUserData(h, "registration:\n  token: "+b.token+"\n")
		a.start()
		eventually(t, 15*time.Second, "agent with "+b.name+" token logs the refusal", func() (bool, string) {
			return strings.Contains(a.p.log(), b.want), lastLine(a.p.log())
		})
		a.stop()
		if _, ok := hostState(admin, a.id()); ok {
			t.Errorf("%s token created host %s", b.name, a.id())
		}
	}

	// --- by pre-registration: the ID is known before the box arrives ---
	a2 := newAgentHost(t, dir, "host2", "11112222333344445555666677778888")
	a2.writeUserData(h, "host:\n  idPrefix: clinic-\n")
	id2 := a2.id()
	admin.must("hosts", "register", id2, "--name", "Clinic front desk", "--label", "site=clinic-3")
	pre, _ := hostState(admin, id2)
	if pre.Status.State != v1.HostUnpaired {
		t.Fatalf("pre-registered host is %s, want Unpaired", pre.Status.State)
	}
	a2.start()
	got = waitHost(t, admin, id2, 20*time.Second, readyHealthy, "paired after pre-registration")
	if got.Metadata.Labels["site"] != "clinic-3" || got.Spec.DisplayName != "Clinic front desk" {
		t.Errorf("pre-registration labels lost: %v", got.Metadata.Labels)
	}
	var list v1.List[v1.EdgeHost]
	admin.json(&list, "hosts", "ls")
	if n := count(list.Items, id2); n != 1 {
		t.Errorf("host %s listed %d times after pairing", id2, n)
	}

	// --- by approval: no token, not pre-registered ---
	a3 := newAgentHost(t, dir, "host3", "99990000aaaabbbbccccddddeeeeffff")
	a3.writeUserData(h, "")
	id3 := a3.id()
	a3.start()
	waitHost(t, admin, id3, 20*time.Second, func(e v1.EdgeHost) bool { return e.Status.State == v1.HostPendingApproval }, "waiting for approval")
	var pending v1.List[v1.EdgeHost]
	admin.json(&pending, "hosts", "ls", "--state", v1.HostPendingApproval)
	if len(pending.Items) != 1 || pending.Items[0].Metadata.Name != id3 {
		t.Errorf("pending filter: %v", names(pending.Items))
	}
	admin.must("hosts", "approve", id3)
	waitHost(t, admin, id3, 20*time.Second, readyHealthy, "Ready after approval")
	if !strings.Contains(a3.p.log(), "enrolled") {
		t.Errorf("agent 3 log has no enrollment after approval:\n%s", a3.p.log())
	}

	// --- re-enrolling the same host does not duplicate it ---
	a1.stop()
	os.Remove(filepath.Join(a1.root, "var/lib/outpost-agent/host.crt"))
	a1.start()
	waitHost(t, admin, id1, 20*time.Second, readyHealthy, "back after losing its certificate")
	admin.json(&list, "hosts", "ls")
	if len(list.Items) != 3 || count(list.Items, id1) != 1 {
		t.Errorf("after re-enrollment the hub lists %v", names(list.Items))
	}

	// --- Offline when the agent stops, Healthy when it comes back ---
	a2.stop()
	waitHost(t, admin, id2, 15*time.Second, func(e v1.EdgeHost) bool { return e.Status.Health == v1.HealthOffline }, "Offline after its agent stopped")
	a2.start()
	waitHost(t, admin, id2, 15*time.Second, readyHealthy, "Healthy after its agent restarted")
	if n := strings.Count(a2.p.log(), "msg=enrolled"); n > 1 {
		t.Errorf("agent 2 enrolled %d times; a restart must reuse its identity", n)
	}

	// --- a deleted host's certificate stops working at once ---
	certFile := filepath.Join(a3.root, "var/lib/outpost-agent/host.crt")
	keyFile := filepath.Join(a3.root, "var/lib/outpost-agent/host.key")
	// Freeze agent 3 so it does not re-enroll on its own once deleted.
	a3.p.cmd.Process.Signal(syscall.SIGSTOP)
	if code := agentCall(t, h, certFile, keyFile); code != http.StatusOK {
		t.Fatalf("heartbeat with host 3's certificate before delete: %d", code)
	}
	admin.must("hosts", "delete", id3)
	if code := agentCall(t, h, certFile, keyFile); code != http.StatusUnauthorized {
		t.Errorf("heartbeat with a deleted host's certificate: %d, want 401", code)
	}
	a3.p.cmd.Process.Signal(syscall.SIGCONT)
}

func agentCall(t *testing.T, h *hub, certFile, keyFile string) int {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("load agent certificate: %v", err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: h.http.Transport.(*http.Transport).TLSClientConfig.RootCAs, Certificates: []tls.Certificate{cert},
	}}}
	req, _ := http.NewRequest("POST", "https://"+h.agentAddr+v1.AgentPathHeartbeat, strings.NewReader(`{}`))
	req.Header.Set(v1.HeaderAgentProtocol, "1")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("agent call: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func findToken(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, prefix) {
			return f
		}
	}
	t.Fatalf("no %s token in:\n%s", prefix, out)
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func count(hosts []v1.EdgeHost, id string) int {
	n := 0
	for _, h := range hosts {
		if h.Metadata.Name == id {
			n++
		}
	}
	return n
}

func names(hosts []v1.EdgeHost) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Metadata.Name+"="+h.Status.State)
	}
	return out
}
