package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/inventory"
	"github.com/outpost-edge/outpost/internal/agent/userdata"
	"github.com/outpost-edge/outpost/pki"
)

// enroll asks the hub for a certificate until it gets one or ctx ends. It
// returns an error only when ctx ends or the result cannot be saved.
func (a *Agent) enroll(ctx context.Context) error {
	a.setPhase(PhaseEnrolling)
	csr, err := pki.NewCSR(a.key, a.hostID)
	if err != nil {
		return err
	}
	req := a.enrollRequest(csr)
	retry := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	refused := newBackoff(a.cfg.RefusedRetryMin, a.cfg.RefusedRetryMax)
	pending := false
	for {
		var query url.Values
		if pending {
			// The same request again, held by the hub until a person
			// approves the host or the wait ends.
			query = url.Values{"wait": {strconv.Itoa(int(a.cfg.PollWait / time.Second))}}
		}
		start := time.Now()
		var resp v1.EnrollResponse
		cctx, cancel := context.WithTimeout(ctx, a.cfg.PollWait+30*time.Second)
		status, err := a.call(cctx, http.MethodPost, v1.AgentPathEnroll, query, req, &resp, nil)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var wait time.Duration
		switch {
		case err == nil && (status == http.StatusAccepted || resp.Status == v1.EnrollPending):
			retry.Reset()
			refused.Reset()
			a.setError(nil)
			if !pending {
				// Ask again at once, this time for the hub to hold the call.
				a.log.Info("pending approval", "project", resp.Project)
				a.setPhase(PhasePendingApproval)
				pending = true
				break
			}
			// A held call that ran its course is repeated at once. One the
			// hub answered early was not held: wait as long as it asks,
			// at least a second, so the agent never spins.
			if elapsed := time.Since(start); elapsed < a.cfg.PollWait*9/10 {
				wait = max(time.Duration(resp.RetryAfterSeconds)*time.Second-elapsed, time.Second)
			}
		case err == nil:
			c, caPEM, pool, err := a.accept(resp.Certificate, resp.CACertificate)
			if err != nil {
				wait = retry.Next()
				a.log.Error("hub sent an unusable certificate", "error", err, "retryIn", wait)
				a.setError(err)
				break
			}
			c.project = resp.Project
			if err := a.store.saveCreds(c, caPEM, a.hostID, time.Now()); err != nil {
				return err
			}
			a.pin(pool)
			a.setCreds(c)
			a.setError(nil)
			a.log.Info("enrolled", "project", c.project, "certificateNotAfter", c.cert.NotAfter.UTC())
			return nil
		case isRefusal(err):
			wait = refused.Next()
			e, _ := apiError(err)
			// Logged at error level with the hub's code: someone has to
			// fix the token (or approve, or pre-register) on the hub.
			a.log.Error("enrollment refused", "code", e.Body.Code, "status", e.Status, "reason", e.Error(), "retryIn", wait.Round(time.Second))
			a.setError(err)
			if pending {
				a.setPhase(PhaseEnrolling)
				pending = false
			}
		default:
			wait = retry.Next()
			a.log.Warn("enrollment failed", "error", err, "retryIn", wait.Round(time.Millisecond))
			a.setError(err)
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (a *Agent) enrollRequest(csr string) v1.EnrollRequest {
	ud := a.cfg.UserData
	req := v1.EnrollRequest{
		HostID:            a.hostID,
		CSR:               csr,
		RegistrationToken: ud.Registration.Token,
		Labels:            ud.Labels(),
		AgentVersion:      a.cfg.Version,
	}
	if req.RegistrationToken == "" {
		// With a token the hub takes the project from it.
		req.Project = ud.Registration.Project
		if req.Project == "" {
			req.Project = userdata.DefaultProject
		}
	}
	inv, err := inventory.Collect(a.cfg.Root, a.cfg.Version)
	if err != nil {
		a.log.Warn("enrolling without inventory", "error", err)
	}
	req.Inventory = inv
	return req
}

// accept checks a certificate the hub issued against the CA it sent (or the
// pinned one when it sent none) and returns what to store.
func (a *Agent) accept(certPEM, caPEM string) (*creds, []byte, *x509.CertPool, error) {
	var pool *x509.CertPool
	var caBytes []byte
	if caPEM != "" {
		certs, err := userdata.ParseCertificates(caPEM)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("hub CA: %w", err)
		}
		pool = x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		caBytes = []byte(caPEM)
	} else {
		a.mu.Lock()
		pool = a.tls.pinned
		a.mu.Unlock()
		if pool == nil {
			return nil, nil, nil, errors.New("hub sent no CA certificate")
		}
	}
	if certPEM == "" {
		return nil, nil, nil, errors.New("hub sent no certificate")
	}
	c, err := checkCert([]byte(certPEM), a.hostID, a.key, pool, time.Now())
	if err != nil {
		return nil, nil, nil, err
	}
	return c, caBytes, pool, nil
}
