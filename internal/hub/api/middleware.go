package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outpost-edge/outpost/internal/errs"
)

// Metrics are the HTTP metrics of one listener.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outpost_http_requests_total", Help: "HTTP requests by listener, route pattern and status code.",
		}, []string{"listener", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "outpost_http_request_duration_seconds", Help: "HTTP request latency by listener and route (long-polls and watches included).",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 60},
		}, []string{"listener", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush through the recorder.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// wrap adds panic recovery, metrics and debug logging around a mux.
func wrap(listener string, mux *http.ServeMux, m *Metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", p)
				if rec.status == 0 {
					writeError(rec, r, log, errs.ErrUnavailable)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			if m != nil {
				m.requests.WithLabelValues(listener, route, strconv.Itoa(rec.status)).Inc()
				m.duration.WithLabelValues(listener, route).Observe(time.Since(start).Seconds())
			}
			log.Debug("request", "listener", listener, "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
		}()
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(rec, r)
	})
}
