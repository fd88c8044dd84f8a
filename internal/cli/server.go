package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/outpost-edge/outpost/internal/hub/server"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newServerCommand() *cobra.Command {
	var cfg server.Config
	var advertise, logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the hub",
		Long: `Run the Outpost hub: the user API and console, and the agent API.

With no flags it keeps everything in ./outpost-data (SQLite, the hub CA and
certificates) and prints an admin API token on the first start. Pass
--database-url (or OUTPOST_DATABASE_URL) to use PostgreSQL instead, e.g. for
several hub replicas behind a load balancer.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Log = log
			cfg.Version = cmd.Root().Version
			if advertise != "" {
				cfg.Advertise = strings.Split(advertise, ",")
			}
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", envOr("OUTPOST_LISTEN", ":7080"), "user API and console address (env OUTPOST_LISTEN)")
	f.StringVar(&cfg.AgentListen, "agent-listen", envOr("OUTPOST_AGENT_LISTEN", ":7443"), "agent API address, mTLS (env OUTPOST_AGENT_LISTEN)")
	f.StringVar(&cfg.DataDir, "data-dir", envOr("OUTPOST_DATA_DIR", "outpost-data"), "data directory (env OUTPOST_DATA_DIR)")
	f.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("OUTPOST_DATABASE_URL"), "PostgreSQL DSN; empty: SQLite in the data directory (env OUTPOST_DATABASE_URL)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate for the user API instead of the hub's own")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "key of --tls-cert")
	f.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "serve the user API over plain HTTP (only behind a TLS-terminating proxy)")
	f.StringVar(&advertise, "advertise", os.Getenv("OUTPOST_ADVERTISE"), "extra DNS names/IPs, comma-separated, for the hub certificate (env OUTPOST_ADVERTISE)")
	f.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 15*time.Second, "how often agents send heartbeats")
	f.DurationVar(&cfg.OfflineAfter, "offline-after", 90*time.Second, "silence after which a host is Offline")
	f.DurationVar(&cfg.AgentCertTTL, "agent-cert-ttl", 24*time.Hour, "lifetime of agent client certificates (renewed at 2/3)")
	f.StringVar(&cfg.SecretKeyFile, "secret-key-file", os.Getenv("OUTPOST_SECRET_KEY_FILE"), "key that encrypts secrets at rest (default DATA/secret.key; share it between replicas) (env OUTPOST_SECRET_KEY_FILE)")
	f.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "write the first admin token to this file (mode 0600) instead of printing it")
	f.BoolVar(&cfg.Demo, "demo", false, `run a simulated demo fleet in project "demo" (simulation: real agents against simulated host roots)`)
	f.StringVar(&logLevel, "log-level", envOr("OUTPOST_LOG_LEVEL", "info"), "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
