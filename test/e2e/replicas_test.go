package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/testutil/pgtest"
)

// TestIntegrationPostgresReplicas runs two hub processes on one real
// PostgreSQL database, as behind a load balancer: a host held waiting for
// approval on replica 1 is let in by an approval made on replica 2 (the wake
// crosses processes through LISTEN/NOTIFY), and a restart of both loses
// nothing.
func TestIntegrationPostgresReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	dir1, dir2 := filepath.Join(dir, "r1"), filepath.Join(dir, "r2")
	r1 := startHub(t, dir1, "--database-url", dsn)
	// Replicas share the CA and the secrets key (in production: the same
	// secrets mounted on each).
	if err := os.MkdirAll(filepath.Join(dir2, "data", "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pki/ca.crt", "pki/ca.key", "secret.key"} {
		b, err := os.ReadFile(filepath.Join(dir1, "data", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir2, "data", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r2 := startHubWithToken(t, dir2, r1.adminToken, "--database-url", dsn)
	c1 := newCLI(t, r1, r1.adminToken)
	c2 := newCLI(t, r2, r1.adminToken)

	a := newAgentHost(t, dir, "pg-host", "abcdefabcdefabcdefabcdefabcdef01")
	a.writeUserData(r1, "")
	id := a.id()
	a.start()
	waitHost(t, c2, id, 20*time.Second, func(h v1.EdgeHost) bool { return h.Status.State == v1.HostPendingApproval }, "pending, seen from replica 2")
	c2.must("hosts", "approve", id)
	// The agent's enroll call is parked on replica 1; only a cross-process
	// notification can answer it before its 30 s wait runs out.
	eventually(t, 10*time.Second, "agent enrolled through replica 1 after approval on replica 2", func() (bool, string) {
		return strings.Contains(a.p.log(), "msg=enrolled"), lastLine(a.p.log())
	})
	waitHost(t, c1, id, 15*time.Second, readyHealthy, "Ready and Healthy on replica 1")

	// Metrics count the host on both replicas (their caches follow the log).
	for _, h := range []*hub{r1, r2} {
		eventually(t, 10*time.Second, "metrics on "+h.apiAddr, func() (bool, string) {
			resp, err := h.http.Get("https://" + h.apiAddr + "/metrics")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `outpost_hosts{health="Healthy",state="Ready"} 1`), "no Ready/Healthy host in metrics"
		})
	}

	a.stop()
	r1.stop(syscall.SIGTERM)
	r2.stop(syscall.SIGTERM)
	if !strings.Contains(r1.log(), "hub shutting down") {
		t.Errorf("replica 1 did not shut down gracefully:\n%s", r1.log())
	}
	r1 = startHubWithToken(t, dir1, r2.adminToken, "--database-url", dsn)
	c1 = newCLI(t, r1, r1.adminToken)
	h, ok := hostState(c1, id)
	if !ok || h.Status.State != v1.HostReady || h.Status.Inventory == nil {
		t.Fatalf("after restarting both replicas: %+v", h.Status)
	}
}
