package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/agent/inventory"
	"github.com/outpost-edge/outpost/pki"
)

// callTimeout bounds calls that the hub answers at once.
const callTimeout = 30 * time.Second

// authFailed decides what an auth failure means: if the identity changed
// while the call was out (a renewal), the call just raced it and is retried;
// otherwise the hub has really stopped accepting the certificate.
func (a *Agent) authFailed(err error, gen int) bool {
	if !isAuthFailure(err) {
		return false
	}
	_, now := a.current()
	return now == gen
}

// inventoryTracker decides when a heartbeat carries the full inventory:
// when its hash differs from the last one the hub accepted (so always on
// the first heartbeat after start), or when the hub asked for it.
type inventoryTracker struct {
	acked string
	force bool
}

// prepare fills the inventory fields of a heartbeat.
func (t *inventoryTracker) prepare(req *v1.HeartbeatRequest, inv *v1.Inventory) {
	req.Inventory = nil
	req.InventoryHash = inventory.Hash(inv)
	if inv != nil && (t.force || req.InventoryHash != t.acked) {
		req.Inventory = inv
	}
}

// done records the hub's answer to a heartbeat that succeeded.
func (t *inventoryTracker) done(req *v1.HeartbeatRequest, resp *v1.HeartbeatResponse) {
	if req.Inventory != nil {
		t.acked = req.InventoryHash
	}
	t.force = resp.SendInventory
}

func (a *Agent) heartbeatLoop(ctx context.Context, reauth *backoff) error {
	interval := a.cfg.HeartbeatInterval
	var track inventoryTracker
	for {
		inv, err := inventory.Collect(a.cfg.Root, a.cfg.Version)
		if err != nil {
			a.log.Warn("heartbeat without inventory", "error", err)
		}
		req := v1.HeartbeatRequest{AgentVersion: a.cfg.Version, Health: v1.HealthHealthy}
		track.prepare(&req, inv)
		_, gen := a.current()
		var resp v1.HeartbeatResponse
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err = a.call(cctx, http.MethodPost, v1.AgentPathHeartbeat, nil, req, &resp, nil)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case a.authFailed(err, gen):
			return fmt.Errorf("heartbeat: %w: %w", errReenroll, err)
		case err != nil:
			a.log.Warn("heartbeat failed", "error", err)
			a.setError(err)
		default:
			track.done(&req, &resp)
			reauth.Reset()
			if resp.IntervalSeconds > 0 {
				interval = time.Duration(resp.IntervalSeconds) * time.Second
			}
			a.mu.Lock()
			a.status.LastHeartbeat = time.Now()
			a.status.LastError, a.status.LastErrorAt = "", time.Time{}
			a.mu.Unlock()
			a.log.Debug("heartbeat", "inventorySent", req.Inventory != nil, "interval", interval)
		}
		if !sleep(ctx, jitter(interval)) {
			return nil
		}
	}
}

// loadCachedSpec applies the spec on disk at start, so a host that reboots
// without the hub still becomes what it last was told. It returns the
// revision to long-poll from.
func (a *Agent) loadCachedSpec() int64 {
	spec, ok, err := a.store.loadSpec()
	if err != nil {
		a.log.Warn("ignoring cached spec", "error", err)
		return 0
	}
	if !ok {
		return 0
	}
	if spec.Metadata.Name != "" && spec.Metadata.Name != a.hostID {
		a.log.Warn("ignoring cached spec of another host", "specHost", spec.Metadata.Name)
		return 0
	}
	a.mu.Lock()
	a.status.SpecRevision = spec.Metadata.Revision
	a.mu.Unlock()
	a.log.Info("spec loaded from cache", "revision", spec.Metadata.Revision, "hash", spec.Hash)
	a.onSpec(spec)
	return spec.Metadata.Revision
}

// specLoop long-polls for the HostSpec. Successful polls follow each other
// at once: the hub holds each one until there is something new.
func (a *Agent) specLoop(ctx context.Context, since *int64) error {
	retry := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	wait := strconv.Itoa(int(a.cfg.PollWait / time.Second))
	for {
		_, gen := a.current()
		query := url.Values{"since": {strconv.FormatInt(*since, 10)}, "wait": {wait}}
		start := time.Now()
		var raw []byte
		cctx, cancel := context.WithTimeout(ctx, a.cfg.PollWait+callTimeout)
		status, err := a.call(cctx, http.MethodGet, v1.AgentPathSpec, query, nil, nil, &raw)
		cancel()
		var pause time.Duration
		switch {
		case ctx.Err() != nil:
			return nil
		case a.authFailed(err, gen):
			return fmt.Errorf("spec poll: %w: %w", errReenroll, err)
		case err != nil:
			pause = retry.Next()
			a.log.Warn("spec poll failed", "error", err, "retryIn", pause.Round(time.Millisecond))
			a.setError(err)
		case status == http.StatusNotModified:
			retry.Reset()
			// A hub that does not hold the poll must not make us spin.
			if time.Since(start) < time.Second {
				pause = time.Second
			}
		default:
			rev, err := a.takeSpec(raw, *since)
			if err != nil {
				pause = retry.Next()
				a.log.Error("spec not taken", "error", err, "retryIn", pause.Round(time.Millisecond))
				a.setError(err)
				break
			}
			retry.Reset()
			*since = rev
		}
		if !sleep(ctx, pause) {
			return nil
		}
	}
}

// takeSpec stores a spec from the hub and then acts on it, in that order,
// so that what the host does is always what is on disk.
func (a *Agent) takeSpec(raw []byte, since int64) (int64, error) {
	var spec v1.HostSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return 0, fmt.Errorf("decode spec: %w", err)
	}
	if spec.Metadata.Revision <= since {
		return 0, fmt.Errorf("hub sent spec revision %d, not newer than %d", spec.Metadata.Revision, since)
	}
	if spec.Metadata.Name != "" && spec.Metadata.Name != a.hostID {
		return 0, fmt.Errorf("hub sent the spec of host %q", spec.Metadata.Name)
	}
	if err := a.store.saveSpec(raw, spec.Metadata.Revision); err != nil {
		return 0, err
	}
	a.mu.Lock()
	a.status.SpecRevision = spec.Metadata.Revision
	a.mu.Unlock()
	a.log.Info("spec received", "revision", spec.Metadata.Revision, "hash", spec.Hash)
	a.onSpec(spec)
	return spec.Metadata.Revision, nil
}

// renewLoop renews the certificate once 2/3 of its lifetime has passed,
// retrying with back-off; an expired certificate means enrolling again.
func (a *Agent) renewLoop(ctx context.Context) error {
	retry := newBackoff(a.cfg.RetryMin, a.cfg.RetryMax)
	for {
		c, gen := a.current()
		if c == nil {
			return errReenroll
		}
		if !sleep(ctx, time.Until(renewAt(c.cert))) {
			return nil
		}
		err := a.renew(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			retry.Reset()
			// A hub that issues certificates already in their renewal
			// window (a lifetime shorter than its back-dating) must not
			// make the agent renew in a tight loop.
			if !sleep(ctx, a.cfg.RetryMin) {
				return nil
			}
			continue
		case a.authFailed(err, gen):
			return fmt.Errorf("renew: %w: %w", errReenroll, err)
		case time.Now().After(c.cert.NotAfter):
			return fmt.Errorf("renew: certificate expired at %s: %w", c.cert.NotAfter.UTC().Format(time.RFC3339), errReenroll)
		}
		pause := min(retry.Next(), max(time.Until(c.cert.NotAfter), time.Second))
		a.log.Warn("certificate renewal failed", "error", err, "retryIn", pause.Round(time.Millisecond), "notAfter", c.cert.NotAfter.UTC())
		a.setError(err)
		if !sleep(ctx, pause) {
			return nil
		}
	}
}

func (a *Agent) renew(ctx context.Context) error {
	csr, err := pki.NewCSR(a.key, a.hostID)
	if err != nil {
		return err
	}
	var resp v1.RenewResponse
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := a.call(cctx, http.MethodPost, v1.AgentPathRenew, nil, v1.RenewRequest{CSR: csr}, &resp, nil); err != nil {
		return err
	}
	c, caPEM, pool, err := a.accept(resp.Certificate, resp.CACertificate)
	if err != nil {
		return fmt.Errorf("renewed certificate: %w", err)
	}
	old, _ := a.current()
	if old != nil {
		c.project = old.project
	}
	if err := a.store.saveCreds(c, caPEM, a.hostID, time.Now()); err != nil {
		return err
	}
	a.pin(pool)
	a.setCreds(c)
	a.log.Info("certificate renewed", "notAfter", c.cert.NotAfter.UTC())
	return nil
}
