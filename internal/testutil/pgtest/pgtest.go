package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// errNoBinaries marks a machine without a PostgreSQL server installed, the one
// failure that is a skip rather than an error outside CI.
var errNoBinaries = errors.New("PostgreSQL server binaries not found (install the Debian package postgresql)")

var (
	mu      sync.Mutex
	srv     *server
	srvErr  error
	stopped bool
	dbSeq   atomic.Int64
)

// Main runs the package's tests and then stops the shared server, so no
// postgres process outlives the test binary. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Start returns the DSN of a new, empty database on the test binary's shared
// server, starting the server on first use. The database is dropped when tb
// ends. Without PostgreSQL installed it skips tb, or fails it when the CI
// environment variable is set.
func Start(tb testing.TB) string {
	tb.Helper()
	s, err := shared()
	if err != nil {
		startFailed(tb, err, os.Getenv("CI") != "")
		return ""
	}
	name := fmt.Sprintf("test_%d", dbSeq.Add(1))
	if err := s.admin(func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "CREATE DATABASE "+name)
		return err
	}); err != nil {
		tb.Fatalf("pgtest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// FORCE: a test that leaked a connection must not make the drop fail
		// and the next tests run against a server full of old databases.
		err := s.admin(func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			return err
		})
		if err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// startFailed ends tb: a skip when PostgreSQL is not installed on a
// developer's machine, a failure under CI or for any other error.
func startFailed(tb testing.TB, err error, ci bool) {
	tb.Helper()
	if errors.Is(err, errNoBinaries) {
		if ci {
			tb.Fatalf("pgtest: %v; CI must install it (apt-get install -y postgresql)", err)
			return
		}
		tb.Skipf("pgtest: %v", err)
		return
	}
	tb.Fatalf("pgtest: %v", err)
}

// Stop stops the shared server, if one was started, and removes its files.
// Start fails after Stop.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	stopped = true
	if srv != nil {
		srv.stop()
		srv = nil
	}
}

func shared() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if stopped {
		return nil, errors.New("the shared server was stopped")
	}
	if srv == nil && srvErr == nil {
		// A failed start is remembered: retrying it for every test would only
		// repeat the same error slowly.
		srv, srvErr = startServer()
	}
	return srv, srvErr
}

type server struct {
	bin     string // directory of initdb, pg_ctl, postgres
	dir     string // temp dir: data/, socket, log
	port    int
	asOwner bool // running as root: run the server binaries as user postgres

	mu   sync.Mutex
	conn *pgx.Conn // to database postgres, for CREATE/DROP DATABASE
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

func (s *server) admin(f func(context.Context, *pgx.Conn) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.conn == nil || s.conn.IsClosed() {
		c, err := pgx.Connect(ctx, s.dsn("postgres"))
		if err != nil {
			return err
		}
		s.conn = c
	}
	return f(ctx, s.conn)
}

func startServer() (*server, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cleanStale()
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &server{bin: bin, dir: dir, asOwner: os.Geteuid() == 0}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if s.asOwner {
		// initdb and postgres refuse to run as root.
		if err := chownToPostgres(dir); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := s.run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// The free port is found by binding and releasing it, so another process
	// can take it in between: try again on a new port a few times.
	for attempt := 0; ; attempt++ {
		s.port, err = freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		// fsync and friends are off: the data is thrown away, and durability
		// would only make the suite slower.
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=300 "+
			"-c fsync=off -c synchronous_commit=off -c full_page_writes=off", s.port, dir)
		out, err := s.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start")
		if err == nil {
			break
		}
		if attempt == 2 {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			s.stop()
			return nil, fmt.Errorf("pg_ctl start: %v: %s\nserver log:\n%s", err, out, tail(log, 2000))
		}
	}
	if err := s.admin(func(ctx context.Context, c *pgx.Conn) error { return c.Ping(ctx) }); err != nil {
		s.stop()
		return nil, fmt.Errorf("connect to test server: %w", err)
	}
	return s, nil
}

func (s *server) stop() {
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
	s.mu.Unlock()
	// immediate: nothing in it is worth a clean shutdown.
	s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

func (s *server) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.asOwner {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// The server's data dir is private to the postgres user: start the
	// commands from it rather than from a cwd it may not be able to read.
	cmd.Dir = s.dir
	err := cmd.Run()
	return out.Bytes(), err
}

// findBinDir finds the directory with initdb and pg_ctl: pg_config's, else
// the newest Debian install, else PATH.
func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); has(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", errNoBinaries
}

func versionOf(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func chownToPostgres(dir string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the user postgres to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// cleanStale stops servers left behind by test binaries that died before
// calling Stop (a test timeout panics past deferred calls), so they do not
// pile up across runs.
func cleanStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		s := &server{dir: d, asOwner: os.Geteuid() == 0}
		if bin, err := findBinDir(); err == nil {
			s.bin = bin
			s.stop()
		}
	}
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
