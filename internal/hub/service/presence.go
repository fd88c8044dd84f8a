package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
)

// presence keeps when each host was last heard from. Heartbeats only touch
// memory; the times are written to the store in one batch now and then, and
// health changes (Offline and back) are the only object writes they cause.
type presence struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	dirty map[string]time.Time
	// since is when this hub started watching: a host silent since before
	// the hub started is judged from the start, so a hub restart does not
	// mark the whole fleet Offline at once.
	since time.Time
}

func newPresence() *presence {
	return &presence{seen: map[string]time.Time{}, dirty: map[string]time.Time{}}
}

func (p *presence) load(seen map[string]time.Time, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, t := range seen {
		p.seen[id] = t
	}
	p.since = now
}

func (p *presence) touch(id string, t time.Time) {
	p.mu.Lock()
	p.seen[id] = t
	p.dirty[id] = t
	p.mu.Unlock()
}

func (p *presence) lastSeen(id string) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.seen[id]
	return t, ok
}

func (p *presence) forget(id string) {
	p.mu.Lock()
	delete(p.seen, id)
	delete(p.dirty, id)
	p.mu.Unlock()
}

func (p *presence) takeDirty() map[string]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.dirty) == 0 {
		return nil
	}
	d := p.dirty
	p.dirty = map[string]time.Time{}
	return d
}

func (p *presence) putBack(d map[string]time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, t := range d {
		if cur, ok := p.dirty[id]; !ok || cur.Before(t) {
			p.dirty[id] = t
		}
	}
}

// silentSince returns when the host was last heard of, or when this hub
// started if that is later.
func (p *presence) silentSince(id string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.seen[id]
	if t.Before(p.since) {
		return p.since
	}
	return t
}

func (s *Service) presenceLoop(ctx context.Context) {
	flush := time.NewTicker(s.cfg.LastSeenFlush)
	defer flush.Stop()
	// Check often enough that Offline shows within about a quarter of
	// OfflineAfter; the scan is over memory only.
	check := time.NewTicker(max(s.cfg.OfflineAfter/4, 100*time.Millisecond))
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			// Last flush with a fresh context: the hub is stopping cleanly.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flushLastSeen(fctx)
			cancel()
			return
		case <-flush.C:
			s.flushLastSeen(ctx)
		case <-check.C:
			s.markOffline(ctx)
		}
	}
}

func (s *Service) flushLastSeen(ctx context.Context) {
	d := s.presence.takeDirty()
	if d == nil {
		return
	}
	if err := s.store.SaveLastSeen(ctx, d); err != nil {
		s.log.Warn("flush last-seen times", "hosts", len(d), "err", err)
		s.presence.putBack(d)
	}
}

// markOffline turns hosts silent for longer than OfflineAfter Offline.
func (s *Service) markOffline(ctx context.Context) {
	now := s.now()
	var late []string
	s.hosts.each(func(id string, e hostEntry) {
		if e.health == v1.HealthOffline || e.state == v1.HostUnpaired || e.state == v1.HostPendingApproval {
			return
		}
		if now.Sub(s.presence.silentSince(id)) > s.cfg.OfflineAfter {
			late = append(late, id)
		}
	})
	for _, id := range late {
		if err := s.setHealth(ctx, id, v1.HealthOffline, "no heartbeat for "+s.cfg.OfflineAfter.String(), true); err != nil && ctx.Err() == nil {
			s.log.Warn("mark host offline", "host", id, "err", err)
		}
	}
}

// setHealth writes a host's health (with an event) when it differs. With
// onlyIfSilent it re-checks, after reading, that no heartbeat came meanwhile.
func (s *Service) setHealth(ctx context.Context, id, health, message string, onlyIfSilent bool) error {
	for {
		h, err := objects.GetByKey[v1.EdgeHost](ctx, s.store, v1.KindEdgeHost, id)
		if errors.Is(err, errs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Status.Health == health && h.Status.HealthMessage == message {
			return nil
		}
		if onlyIfSilent && s.now().Sub(s.presence.silentSince(id)) <= s.cfg.OfflineAfter {
			return nil
		}
		typ, reason := objects.EventNormal, health
		if health != v1.HealthHealthy {
			typ = objects.EventWarning
		}
		msg := fmt.Sprintf("host is %s", health)
		if message != "" {
			msg += ": " + message
		}
		h.Status.Health, h.Status.HealthMessage = health, message
		op, err := objects.UpdateOp(v1.KindEdgeHost, h, id)
		if err != nil {
			return err
		}
		_, err = s.write(ctx, op, objects.EventOp(h.Metadata.Project, v1.KindEdgeHost, id, typ, reason, msg))
		if errors.Is(err, errs.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("set health of host %q: %w", id, err)
		}
		s.log.Info("host health changed", "host", id, "health", health, "message", message)
		return nil
	}
}
