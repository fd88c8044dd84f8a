package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/outpost-edge/outpost/internal/hub/api"
	"github.com/outpost-edge/outpost/internal/hub/artifacts"
	"github.com/outpost-edge/outpost/internal/hub/secrets"
	"github.com/outpost-edge/outpost/internal/hub/service"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/postgres"
	"github.com/outpost-edge/outpost/internal/hub/store/sqlite"
	"github.com/outpost-edge/outpost/internal/hub/watch"
	"github.com/outpost-edge/outpost/pki"
)

// Config is everything `outpost server` can be told.
type Config struct {
	// Listen is the user API / console address; AgentListen the agent API's.
	Listen      string
	AgentListen string
	DataDir     string
	// DatabaseURL selects PostgreSQL; empty means SQLite in DataDir.
	DatabaseURL string
	// TLSCert and TLSKey replace the hub's own certificate on Listen.
	TLSCert, TLSKey string
	// InsecureHTTP serves Listen without TLS (behind a TLS-terminating proxy).
	InsecureHTTP bool
	// Advertise are extra DNS names and IPs for the hub's certificate.
	Advertise         []string
	HeartbeatInterval time.Duration
	OfflineAfter      time.Duration
	AgentCertTTL      time.Duration
	// SecretKeyFile holds the key that seals secrets at rest (default
	// DATA/secret.key); replicas sharing a database must share it.
	SecretKeyFile string
	// AdminTokenFile, when set, receives the first admin token (mode 0600).
	AdminTokenFile string
	// Demo runs a simulated demo fleet in project "demo".
	Demo bool
	// ChangeLogKeep is how many revisions of change log to keep for watches.
	ChangeLogKeep int64
	Version       string
	Log           *slog.Logger
	// OnReady, when set, is called with the bound addresses once serving.
	OnReady func(userAddr, agentAddr string)
}

// Run starts the hub and serves until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.ChangeLogKeep <= 0 {
		cfg.ChangeLogKeep = 100_000
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	ca, err := pki.LoadOrCreateCA(filepath.Join(cfg.DataDir, "pki"), "Outpost hub CA")
	if err != nil {
		return fmt.Errorf("load hub CA: %w", err)
	}
	hosts := certHosts(cfg.Advertise)
	serverCert, err := loadOrIssueServerCert(ca, filepath.Join(cfg.DataDir, "pki"), hosts)
	if err != nil {
		return err
	}

	// The follower, the service and the HTTP servers all stop with runCtx;
	// cancelling it first makes parked long-polls answer at once on shutdown.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	keyFile := cfg.SecretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "secret.key")
	}
	box, err := secrets.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}

	wh := watch.New(st, log)
	svc := service.New(service.Config{
		HeartbeatInterval: cfg.HeartbeatInterval,
		OfflineAfter:      cfg.OfflineAfter,
		AgentCertTTL:      cfg.AgentCertTTL,
		Secrets:           box,
	}, st, wh, ca, log)
	followerDone := make(chan error, 1)
	go func() { followerDone <- wh.Run(runCtx) }()
	select {
	case <-wh.Ready():
	case err := <-followerDone:
		return fmt.Errorf("follow change log: %w", err)
	}
	if err := svc.Start(runCtx); err != nil {
		return err
	}
	if err := svc.EnsureProject(ctx, service.DefaultProject, "the default project"); err != nil {
		return err
	}
	if err := svc.EnsureBuiltinRegistry(ctx); err != nil {
		return fmt.Errorf("load the built-in pack catalog: %w", err)
	}
	if err := announceAdminToken(ctx, svc, cfg, ca, log); err != nil {
		return err
	}
	go compactLoop(runCtx, st, cfg.ChangeLogKeep, log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(svc.Collector())
	cache := &artifacts.Cache{Dir: filepath.Join(cfg.DataDir, "artifacts"), Log: log}
	reg.MustRegister(cache.Collector())
	opts := api.Options{
		Service: svc, Watch: wh, Gatherer: reg, Metrics: api.NewMetrics(reg), Log: log, Version: cfg.Version,
		Artifacts: cache.Handler(),
		Ready:     func(ctx context.Context) error { _, err := st.Revision(ctx); return err },
	}

	userTLS, err := userTLSConfig(cfg, serverCert)
	if err != nil {
		return err
	}
	agentTLS := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{serverCert},
		// Enroll is the one call without a certificate; every other agent
		// route checks for a verified one.
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  ca.Pool(),
		NextProtos: []string{"h2", "http/1.1"},
	}
	baseCtx := func(net.Listener) context.Context { return runCtx }
	userSrv := &http.Server{Handler: api.NewUserHandler(opts), TLSConfig: userTLS, ReadHeaderTimeout: 10 * time.Second, BaseContext: baseCtx, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	agentSrv := &http.Server{Handler: api.NewAgentHandler(opts), TLSConfig: agentTLS, ReadHeaderTimeout: 10 * time.Second, BaseContext: baseCtx, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}

	userLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	agentLn, err := net.Listen("tcp", cfg.AgentListen)
	if err != nil {
		userLn.Close()
		return fmt.Errorf("listen on %s: %w", cfg.AgentListen, err)
	}
	serveErr := make(chan error, 2)
	go func() {
		if userTLS == nil {
			serveErr <- userSrv.Serve(userLn)
		} else {
			serveErr <- userSrv.ServeTLS(userLn, "", "")
		}
	}()
	go func() { serveErr <- agentSrv.ServeTLS(agentLn, "", "") }()

	scheme := "https"
	if userTLS == nil {
		scheme = "http"
	}
	log.Info("hub serving", "api", scheme+"://"+userLn.Addr().String(), "agents", "https://"+agentLn.Addr().String(),
		"data", cfg.DataDir, "store", storeName(cfg), "ca", filepath.Join(cfg.DataDir, "pki", "ca.crt"), "version", cfg.Version)
	var demo interface{ Wait() }
	if cfg.Demo {
		fleet, err := startDemo(runCtx, svc, agentLn.Addr().String(), ca, cfg, log)
		if err != nil {
			log.Error("demo fleet", "err", err)
		} else {
			demo = fleet
		}
	}
	if cfg.OnReady != nil {
		cfg.OnReady(userLn.Addr().String(), agentLn.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	log.Info("hub shutting down")
	cancel()
	if demo != nil {
		demo.Wait()
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	userSrv.Shutdown(shutdownCtx)
	agentSrv.Shutdown(shutdownCtx)
	<-followerDone
	// Let the presence loop write its last batch before the store closes.
	svc.Wait()
	return runErr
}

func storeName(cfg Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	}
	path := filepath.Join(cfg.DataDir, "outpost.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("open SQLite store %s: %w", path, err)
	}
	return st, nil
}

// certHosts is every name the hub's certificate should be valid for.
func certHosts(extra []string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				hosts = append(hosts, ipn.IP.String())
			}
		}
	}
	for _, e := range extra {
		if e = strings.TrimSpace(e); e != "" {
			hosts = append(hosts, e)
		}
	}
	return hosts
}

func userTLSConfig(cfg Config, own tls.Certificate) (*tls.Config, error) {
	if cfg.InsecureHTTP {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{own}, NextProtos: []string{"h2", "http/1.1"}}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func announceAdminToken(ctx context.Context, svc *service.Service, cfg Config, ca *pki.CA, log *slog.Logger) error {
	token, err := svc.EnsureAdminToken(ctx)
	if err != nil {
		return fmt.Errorf("create admin token: %w", err)
	}
	if token == "" {
		return nil
	}
	if cfg.AdminTokenFile != "" {
		if err := pki.WriteFileAtomic(cfg.AdminTokenFile, []byte(token+"\n"), 0o600); err != nil {
			return err
		}
		log.Info("first start: admin API token written", "file", cfg.AdminTokenFile)
		return nil
	}
	scheme := "https"
	if cfg.InsecureHTTP {
		scheme = "http"
	}
	host := cfg.Listen
	if strings.HasPrefix(host, ":") {
		host = "localhost" + host
	}
	fmt.Fprintf(os.Stderr, `
First start: an admin API token was created. It is shown this once and stored
only as a hash; keep it somewhere safe.

    %s

Log in with:
    outpost login --server %s://%s --ca-file %s --token %s

`, token, scheme, host, filepath.Join(cfg.DataDir, "pki", "ca.crt"), token)
	return nil
}
