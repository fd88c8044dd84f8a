package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-edge/outpost/internal/sim"
	"github.com/outpost-edge/outpost/internal/testutil/pgtest"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-e2e-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, pkg := range []string{"outpost", "outpost-agent"} {
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=e2e", "-o", filepath.Join(dir, pkg), "../../cmd/"+pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running binary whose output goes to a log file the test can read.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	mu      sync.Mutex
}

func start(t *testing.T, name, logPath string, env []string, bin string, args ...string) *proc {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, bin), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{t: t, name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// stop signals the process and waits for it to end.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("%s did not stop within 15s of %v", p.name, sig)
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// hub is a running `outpost server`.
type hub struct {
	*proc
	dir        string
	apiAddr    string
	agentAddr  string
	adminToken string
	caFile     string
	http       *http.Client
}

func startHub(t *testing.T, dir string, extra ...string) *hub {
	t.Helper()
	return startHubAt(t, dir, freePort(t), freePort(t), extra...)
}

// restartHub starts a hub again on the same data and addresses, as a
// supervisor would after a crash; its agents find it where it was.
func restartHub(t *testing.T, old *hub, extra ...string) *hub {
	t.Helper()
	h := startHubAt(t, old.dir, old.apiAddr, old.agentAddr, extra...)
	h.adminToken = old.adminToken
	return h
}

func startHubAt(t *testing.T, dir, apiAddr, agentAddr string, extra ...string) *hub {
	t.Helper()
	h := &hub{dir: dir, apiAddr: apiAddr, agentAddr: agentAddr}
	args := append([]string{"server",
		"--listen", h.apiAddr, "--agent-listen", h.agentAddr,
		"--data-dir", filepath.Join(dir, "data"),
		"--admin-token-file", filepath.Join(dir, "admin-token"),
		"--heartbeat-interval", "1s", "--offline-after", "4s",
		"--log-level", "debug",
	}, extra...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h.proc = start(t, "hub", filepath.Join(dir, "hub.log"), nil, "outpost", args...)
	h.caFile = filepath.Join(dir, "data", "pki", "ca.crt")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h.exited() {
			t.Fatalf("hub exited:\n%s", h.log())
		}
		if ca, err := os.ReadFile(h.caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			h.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			if resp, err := h.http.Get("https://" + h.apiAddr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub not ready after 30s:\n%s", h.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if tok, err := os.ReadFile(filepath.Join(dir, "admin-token")); err == nil {
		h.adminToken = strings.TrimSpace(string(tok))
	}
	return h
}

// startHubWithToken starts a hub on a database that already has its admin
// token (a second replica, a restart): no token file is written then.
func startHubWithToken(t *testing.T, dir, token string, extra ...string) *hub {
	h := startHub(t, dir, extra...)
	h.adminToken = token
	return h
}

// cli runs the outpost CLI with its own config file.
type cli struct {
	t      *testing.T
	config string
}

func newCLI(t *testing.T, h *hub, token string) *cli {
	c := &cli{t: t, config: filepath.Join(t.TempDir(), "config.yaml")}
	c.must("login", "--server", "https://"+h.apiAddr, "--token", token, "--ca-file", h.caFile)
	return c
}

func (c *cli) run(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(binDir, "outpost"), args...)
	cmd.Env = append(os.Environ(), "OUTPOST_CONFIG="+c.config)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), fmt.Errorf("outpost %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.must(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("outpost %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s (last: %s)", what, timeout, last)
}

// agentHost is one simulated edge host root with its agent process.
type agentHost struct {
	t        *testing.T
	name     string
	root     string
	userData string
	p        *proc
	// simulate runs the agent with the simulated distro provider.
	simulate bool
}

// newAgentHost lays out a simulated host root (see package sim): a
// machine-id and no DMI serial, so the host ID comes from the machine-id.
func newAgentHost(t *testing.T, base, name, machineID string) *agentHost {
	root := filepath.Join(base, name)
	err := sim.WriteRoot(root, sim.Host{
		MachineID: machineID, Hostname: name,
		OSName: "Ubuntu", OSVersion: "22.04", Kernel: "6.1.0-test",
		CPUModel: "Test CPU", Cores: 2, MemoryKiB: 4096000,
		Disks: map[string]int64{"vda": 20 << 30},
		NICs:  map[string][2]string{"eth0": {"52:54:00:12:34:56", "10.0.0.5/24"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &agentHost{t: t, name: name, root: root, userData: filepath.Join(root, "user-data.yaml")}
}

func (a *agentHost) writeUserData(h *hub, extra string) {
	ca, err := os.ReadFile(h.caFile)
	if err != nil {
		a.t.Fatal(err)
	}
	ud := fmt.Sprintf("hub:\n  url: https://%s\n  caCert: |\n%s%s", h.agentAddr, indent(string(ca), "    "), extra)
	if err := os.WriteFile(a.userData, []byte(ud), 0o600); err != nil {
		a.t.Fatal(err)
	}
}

func indent(s, pre string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(pre + l + "\n")
	}
	return b.String()
}

func (a *agentHost) start() {
	args := []string{"run", "--user-data", a.userData, "--root", a.root, "--log-level", "debug"}
	if a.simulate {
		args = append(args, "--simulate")
	}
	a.p = start(a.t, "agent "+a.name, filepath.Join(a.root, "agent.log"), nil, "outpost-agent", args...)
}

func (a *agentHost) stop() { a.p.stop(syscall.SIGTERM) }

func (a *agentHost) id() string {
	cmd := exec.Command(filepath.Join(binDir, "outpost-agent"), "id", "--user-data", a.userData, "--root", a.root)
	out, err := cmd.Output()
	if err != nil {
		a.t.Fatalf("outpost-agent id: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
