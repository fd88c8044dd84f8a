package kubetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Version is the Kubernetes version of the kube-apiserver the tests run,
// the one scripts/build-kube.sh builds.
const Version = "v1.32.3"

// Env is a connection to the test binary's shared API server. Each Start
// returns its own Env (Config is a copy a test may change), all on the same
// server.
type Env struct {
	// Config authenticates as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for the same server and
	// user, for kubectl (--kubeconfig) and code that reads one.
	Kubeconfig string
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
}

// UniqueName returns prefix followed by a number no other call in this test
// binary returns, for namespaces and other objects that must not collide
// with another test's on the shared server. The result is a valid DNS label
// when prefix is a short one.
func (e *Env) UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1))
}

// missingError marks a binary that is not on the machine: the one failure
// that is a skip rather than an error outside CI. Fix says how to get it.
type missingError struct{ what, fix string }

func (e *missingError) Error() string { return e.what + "; " + e.fix }

var (
	mu       sync.Mutex
	srv      *server
	srvErr   error
	stopped  bool
	reported bool
	nameSeq  atomic.Int64
)

// Main runs the package's tests and then stops the shared servers, so no
// etcd or kube-apiserver outlives the test binary. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Start returns a connection to the test binary's shared API server,
// starting etcd and kube-apiserver on first use. Without the binaries it
// skips tb with the command that provides them, or, under CI, builds
// kube-apiserver (scripts/build-kube.sh) and fails when etcd is missing.
func Start(tb testing.TB) *Env {
	tb.Helper()
	ci := os.Getenv("CI") != ""
	s, first, err := shared(ci)
	if err != nil {
		startFailed(tb, err, ci)
		return nil
	}
	if first {
		tb.Logf("kubetest: etcd and kube-apiserver %s ready in %s (%s)", Version, s.startup.Round(time.Millisecond), s.dir)
	}
	env, err := s.env()
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	api := s.apiserver
	tb.Cleanup(func() {
		// What the server said is often the clue to a failure (a webhook, a
		// storage error), and its files are gone when the binary ends.
		if tb.Failed() {
			tb.Logf("kubetest: end of the kube-apiserver log:\n%s", lastLines(api.tail(), 30))
		}
	})
	return env
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startFailed ends tb: a skip when a binary is missing on a developer's
// machine, a failure under CI or for any other error.
func startFailed(tb testing.TB, err error, ci bool) {
	tb.Helper()
	var m *missingError
	if errors.As(err, &m) && !ci {
		tb.Skipf("kubetest: %v", err)
		return
	}
	tb.Fatalf("kubetest: %v", err)
}

// Stop stops the shared servers, if they were started, and removes their
// files. Start fails after Stop.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	stopped = true
	if srv != nil {
		srv.stop()
		srv = nil
	}
}

func shared(ci bool) (s *server, first bool, err error) {
	mu.Lock()
	defer mu.Unlock()
	if stopped {
		return nil, false, errors.New("the shared server was stopped")
	}
	if srv == nil && srvErr == nil {
		// A failed start is remembered: retrying it for every test would only
		// repeat the same error slowly.
		srv, srvErr = startServer(ci)
	}
	if srvErr != nil {
		return nil, false, srvErr
	}
	first = !reported
	reported = true
	return srv, first, nil
}

type server struct {
	dir        string // temp dir: certificates, etcd data, logs, kubeconfig
	etcd       *proc
	apiserver  *proc
	host       string // https://127.0.0.1:port
	token      string
	caPEM      []byte
	kubeconfig string
	startup    time.Duration
}

func (s *server) restConfig() *rest.Config {
	return &rest.Config{
		Host:            s.host,
		BearerToken:     s.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caPEM},
		// The defaults (5 requests/s) would make tests that create a few
		// dozen objects wait on the client, not the server.
		QPS:   200,
		Burst: 400,
	}
}

func (s *server) env() (*Env, error) {
	cfg := s.restConfig()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Env{Config: rest.CopyConfig(cfg), Kubeconfig: s.kubeconfig, Client: client, Dynamic: dyn}, nil
}

func startServer(ci bool) (*server, error) {
	etcdBin, err := findEtcd()
	if err != nil {
		return nil, err
	}
	apiBin, err := findAPIServer(ci)
	if err != nil {
		return nil, err
	}
	cleanStale()
	begin := time.Now()
	dir, err := os.MkdirTemp(baseDir(), "kubetest-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.writeCredentials(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Free ports are found by binding and releasing them, so another
	// process can take one in between: start again on new ports a few times
	// when a server exits at once. A server that is merely slow is not
	// retried; that would only multiply the wait.
	for attempt := 0; ; attempt++ {
		err = s.startEtcd(etcdBin)
		if err == nil {
			err = s.startAPIServer(apiBin)
		}
		if err == nil {
			break
		}
		s.stopProcs()
		if attempt == 2 || !errors.Is(err, errExited) {
			os.RemoveAll(dir)
			return nil, err
		}
		os.RemoveAll(filepath.Join(dir, "etcd"))
	}
	if err := s.writeKubeconfig(); err != nil {
		s.stop()
		return nil, err
	}
	s.startup = time.Since(begin)
	return s, nil
}

// baseDir is where the server's files go: tmpfs when there is one, because
// etcd fsyncs every write and Debian's etcd 3.4 cannot be told not to.
func baseDir() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "kubetest-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}

func (s *server) path(name string) string { return filepath.Join(s.dir, name) }

// writeCredentials writes a CA and a serving certificate for 127.0.0.1
// signed by it, the service-account signing key and the token file.
func (s *server) writeCredentials() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubetest-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return err
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	s.token = hex.EncodeToString(tok)
	files := map[string][]byte{
		"ca.crt":      s.caPEM,
		"serving.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"serving.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"sa.key":      pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saDER}),
		"tokens.csv":  []byte(s.token + `,kubetest-admin,kubetest-admin,"system:masters"` + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(s.path(name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) writeKubeconfig() error {
	s.kubeconfig = s.path("kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: kubetest-admin
  user:
    token: %s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: kubetest-admin
current-context: kubetest
`, s.host, base64.StdEncoding.EncodeToString(s.caPEM), s.token)
	return os.WriteFile(s.kubeconfig, []byte(cfg), 0o600)
}

func (s *server) startEtcd(bin string) error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	cu := fmt.Sprintf("http://127.0.0.1:%d", client)
	pu := fmt.Sprintf("http://127.0.0.1:%d", peer)
	s.etcd, err = startProc(bin, s.path("etcd.log"),
		"--name=kubetest",
		"--data-dir="+s.path("etcd"),
		"--listen-client-urls="+cu,
		"--advertise-client-urls="+cu,
		"--listen-peer-urls="+pu,
		"--initial-advertise-peer-urls="+pu,
		"--initial-cluster=kubetest="+pu,
		"--logger=zap",
		"--log-outputs=stderr",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	s.etcd.url = cu
	return s.etcd.waitHTTP(30*time.Second, http.DefaultClient, cu+"/health", func(body []byte) bool {
		return bytes.Contains(body, []byte(`"health":"true"`))
	})
}

func (s *server) startAPIServer(bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.host = fmt.Sprintf("https://127.0.0.1:%d", port)
	s.apiserver, err = startProc(bin, s.path("kube-apiserver.log"),
		"--etcd-servers="+s.etcd.url,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+s.path("certs"),
		"--tls-cert-file="+s.path("serving.crt"),
		"--tls-private-key-file="+s.path("serving.key"),
		"--token-auth-file="+s.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+s.path("sa.key"),
		"--service-account-signing-key-file="+s.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		// No node ever serves the kubernetes Service: keeping its
		// endpoints pointed at 127.0.0.1 would only log errors.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--v=1",
	)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	hc := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer hc.CloseIdleConnections()
	// /readyz turns 200 once the post-start hooks are through: RBAC's
	// bootstrap roles, the system namespaces, the CRD handlers.
	return s.apiserver.waitHTTP(90*time.Second, &bearer{hc, s.token}, s.host+"/readyz", nil)
}

type bearer struct {
	c     *http.Client
	token string
}

func (b *bearer) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.c.Do(req)
}

func (s *server) stopProcs() {
	// The API server first: stopping etcd under it makes it log and retry.
	if s.apiserver != nil {
		s.apiserver.stop()
		s.apiserver = nil
	}
	if s.etcd != nil {
		s.etcd.stop()
		s.etcd = nil
	}
}

func (s *server) stop() {
	s.stopProcs()
	os.RemoveAll(s.dir)
}

// proc is a server process of ours.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, once done
	url  string
}

func startProc(bin, logPath string, args ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Killed with the test binary even when it dies without running Stop
	// (a test timeout panics past deferred calls); cleanStale catches the
	// rest on the next run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &proc{name: filepath.Base(bin), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	pids := filepath.Join(filepath.Dir(logPath), "pids")
	f, err := os.OpenFile(pids, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(f, cmd.Process.Pid)
		f.Close()
	}
	return p, nil
}

// errExited: a server process ended while it was being waited for.
var errExited = errors.New("exited before it was ready")

type doer interface {
	Do(*http.Request) (*http.Response, error)
}

// waitHTTP polls url until it answers 200 (and ok accepts the body, when
// set), failing early with the log's tail if the process exits.
func (p *proc) waitHTTP(timeout time.Duration, c doer, url string, ok func([]byte) bool) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && (ok == nil || ok(body)) {
				cancel()
				return nil
			}
			last = fmt.Sprintf("%s: %s", resp.Status, firstLines(body, 40))
		} else {
			last = err.Error()
		}
		cancel()
		select {
		case <-p.done:
			return fmt.Errorf("%s %w: %v\n%s log:\n%s", p.name, errExited, p.err, p.name, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %s\n%s log:\n%s", p.name, timeout, last, p.name, p.tail())
		}
	}
}

func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func firstLines(b []byte, n int) string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() && len(out) < n {
		if l := sc.Text(); strings.Contains(l, "failed") || len(out) < 3 {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// findEtcd finds Debian's etcd (package etcd-server) or any etcd in PATH.
func findEtcd() (string, error) {
	if p, err := exec.LookPath("etcd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/etcd"); err == nil {
		return "/usr/bin/etcd", nil
	}
	return "", &missingError{"etcd not found", "install it: apt-get install -y etcd-server"}
}

// CachePath is where scripts/build-kube.sh puts kube-apiserver: under
// OUTPOST_KUBE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/outpost/kube.
func CachePath() string {
	dir := os.Getenv("OUTPOST_KUBE_CACHE")
	if dir == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(base, "outpost", "kube")
	}
	return filepath.Join(dir, Version, "kube-apiserver")
}

// findAPIServer finds kube-apiserver: OUTPOST_KUBE_APISERVER, else the build
// cache; under CI a missing one is built.
func findAPIServer(ci bool) (string, error) {
	if p := os.Getenv("OUTPOST_KUBE_APISERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("OUTPOST_KUBE_APISERVER: %w", err)
		}
		return p, nil
	}
	p := CachePath()
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	script, err := buildScript()
	if err != nil {
		return "", err
	}
	if !ci {
		return "", &missingError{
			what: "kube-apiserver " + Version + " not built (looked for " + p + ")",
			fix:  "build it once with " + script + " (about 4 minutes; cached outside the work tree)",
		}
	}
	cmd := exec.Command(script)
	// The build takes minutes: let CI's log show it is not stuck.
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", script, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	built := lines[len(lines)-1]
	if _, err := os.Stat(built); err != nil {
		return "", fmt.Errorf("%s printed %q: %w", script, built, err)
	}
	return built, nil
}

// buildScript finds scripts/build-kube.sh above the test's working
// directory (go test runs tests in their package's directory).
func buildScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "build-kube.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", &missingError{"kube-apiserver " + Version + " not built", "and scripts/build-kube.sh not found above the working directory"}
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanStale kills servers left behind by test binaries that died before
// calling Stop and Pdeathsig did not reach, and removes their files.
func cleanStale() {
	for _, base := range []string{"/dev/shm", os.TempDir()} {
		dirs, _ := filepath.Glob(filepath.Join(base, "kubetest-*"))
		for _, d := range dirs {
			b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
			if err != nil {
				continue
			}
			owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil || owner <= 0 || processAlive(owner) {
				continue
			}
			pids, _ := os.ReadFile(filepath.Join(d, "pids"))
			for _, f := range strings.Fields(string(pids)) {
				pid, err := strconv.Atoi(f)
				if err != nil || pid <= 0 {
					continue
				}
				// Only a process that still runs on this directory's files is
				// ours: the pid may have been reused since.
				cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				if err == nil && bytes.Contains(cmdline, []byte(d)) {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			os.RemoveAll(d)
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
