package api

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outpost-edge/outpost/internal/hub/service"
	"github.com/outpost-edge/outpost/internal/hub/watch"
)

// OpenAPI is the OpenAPI 3 document of the user API, served at
// /api/v1/openapi.json; a test checks real responses against it.
//
//go:embed openapi.json
var OpenAPI []byte

// Options are what the handlers need.
type Options struct {
	Service *service.Service
	Watch   *watch.Hub
	// Ready reports whether the hub can serve (store reachable).
	Ready    func(context.Context) error
	Gatherer prometheus.Gatherer
	Metrics  *Metrics
	Log      *slog.Logger
	Version  string
	// Artifacts serves the hub's artifact cache to agents (nil: none).
	Artifacts http.Handler
}

// NewUserHandler serves the user API, health, metrics and the landing page.
func NewUserHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	(&UserAPI{svc: o.Service, watch: o.Watch, log: o.Log}).Register(mux)
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(OpenAPI)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := o.Ready(ctx); err != nil {
			o.Log.Warn("not ready", "err", err)
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Outpost hub " + o.Version + "\nAPI: /api/v1 (OpenAPI at /api/v1/openapi.json)\n"))
	})
	return wrap("user", mux, o.Metrics, o.Log)
}

// NewAgentHandler serves the agent API.
func NewAgentHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	(&AgentAPI{svc: o.Service, log: o.Log, artifacts: o.Artifacts}).Register(mux)
	return wrap("agent", mux, o.Metrics, o.Log)
}
