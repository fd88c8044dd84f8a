package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/service"
)

// maxWait caps how long an agent may park a long-poll or a pending enrollment.
const maxWait = 60 * time.Second

// AgentAPI serves /agent/v1.
type AgentAPI struct {
	svc       *service.Service
	log       *slog.Logger
	artifacts http.Handler
}

type agentKey struct{}

func agentIdentity(r *http.Request) *service.AgentIdentity {
	return r.Context().Value(agentKey{}).(*service.AgentIdentity)
}

// Register adds the agent API routes to mux.
func (a *AgentAPI) Register(mux *http.ServeMux) {
	mux.Handle("POST "+v1.AgentPathEnroll, a.handle(false, a.enroll))
	mux.Handle("POST "+v1.AgentPathRenew, a.handle(true, a.renew))
	mux.Handle("POST "+v1.AgentPathHeartbeat, a.handle(true, a.heartbeat))
	mux.Handle("GET "+v1.AgentPathSpec, a.handle(true, a.spec))
	mux.Handle("POST "+v1.AgentPathStatus, a.handle(true, a.status))
	if a.artifacts != nil {
		// Only enrolled hosts may make the hub download on their behalf.
		mux.Handle("GET "+v1.AgentPathArtifacts, a.handle(true, func(w http.ResponseWriter, r *http.Request) error {
			a.artifacts.ServeHTTP(w, r)
			return nil
		}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, a.log, fmt.Errorf("no route %s %s: %w", r.Method, r.URL.Path, errs.ErrNotFound))
	})
}

// handle checks the protocol version and, with mtls, that the verified
// client certificate belongs to a currently enrolled host.
func (a *AgentAPI) handle(mtls bool, h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := r.Header.Get(v1.HeaderAgentProtocol); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > v1.AgentProtocolVersion {
				writeError(w, r, a.log, fmt.Errorf("agent protocol %q is not spoken by this hub (1..%d): %w", v, v1.AgentProtocolVersion, errs.ErrBadRequest))
				return
			}
		}
		if mtls {
			if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
				writeError(w, r, a.log, fmt.Errorf("a client certificate from the hub CA is needed: %w", errs.ErrUnauthenticated))
				return
			}
			id, err := a.svc.AuthenticateAgent(r.TLS.VerifiedChains[0][0])
			if err != nil {
				writeError(w, r, a.log, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), agentKey{}, id))
		}
		if err := h(w, r); err != nil {
			writeError(w, r, a.log, err)
		}
	}
}

func waitParam(r *http.Request) (time.Duration, error) {
	n, err := queryInt(r, "wait", 0)
	if err != nil {
		return 0, err
	}
	return min(time.Duration(n)*time.Second, maxWait), nil
}

func (a *AgentAPI) enroll(w http.ResponseWriter, r *http.Request) error {
	var req v1.EnrollRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	res, err := a.svc.Enroll(r.Context(), &req, wait)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if res.Pending {
		status = http.StatusAccepted
		w.Header().Set("Retry-After", strconv.Itoa(res.Response.RetryAfterSeconds))
	}
	writeJSON(w, status, res.Response)
	return nil
}

func (a *AgentAPI) renew(w http.ResponseWriter, r *http.Request) error {
	var req v1.RenewRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	resp, err := a.svc.Renew(r.Context(), agentIdentity(r), &req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *AgentAPI) heartbeat(w http.ResponseWriter, r *http.Request) error {
	var req v1.HeartbeatRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	resp, err := a.svc.Heartbeat(r.Context(), agentIdentity(r), &req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (a *AgentAPI) spec(w http.ResponseWriter, r *http.Request) error {
	since, err := queryInt(r, "since", 0)
	if err != nil {
		return err
	}
	wait, err := waitParam(r)
	if err != nil {
		return err
	}
	spec, err := a.svc.WaitSpec(r.Context(), agentIdentity(r), since, wait)
	if err != nil {
		return err
	}
	if spec == nil {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeJSON(w, http.StatusOK, spec)
	return nil
}

func (a *AgentAPI) status(w http.ResponseWriter, r *http.Request) error {
	var req v1.NodeReportSpec
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := a.svc.ReportStatus(r.Context(), agentIdentity(r), &req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
