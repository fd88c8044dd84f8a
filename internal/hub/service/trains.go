package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// trains re-resolves profiles when the packs they use change: a registry
// that gains 1.30.5+k3s1 moves every profile on the 1.30.x train. It is fed
// by the change log (a pack changed), not by a timer.
type trains struct {
	mu    sync.Mutex
	dirty map[string]bool // pack names
	kick  chan struct{}
}

func newTrains() *trains { return &trains{dirty: map[string]bool{}, kick: make(chan struct{}, 1)} }

// apply is the watch hook.
func (t *trains) apply(c store.Change) {
	if c.Object.Kind != v1.KindPack {
		return
	}
	_, name, _ := strings.Cut(c.Object.Name, "/")
	t.mu.Lock()
	t.dirty[name] = true
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *trains) take() map[string]bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.dirty
	t.dirty = map[string]bool{}
	return d
}

func (s *Service) trainLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.trains.kick:
		}
		if err := s.moveTrains(ctx, s.trains.take()); err != nil && ctx.Err() == nil {
			s.log.Warn("re-resolve profiles", "err", err)
		}
	}
}

// moveTrains re-resolves every profile version that uses one of packs and
// records where its layers resolve now, with an event per move.
func (s *Service) moveTrains(ctx context.Context, packs map[string]bool) error {
	if len(packs) == 0 {
		return nil
	}
	rows, _, err := s.store.List(ctx, store.ListOptions{Kind: v1.KindClusterProfile})
	if err != nil {
		return err
	}
	for _, o := range rows {
		cp, err := decodeProfile(o)
		if err != nil {
			return err
		}
		uses := false
		for _, l := range cp.Spec.Layers {
			uses = uses || packs[l.Pack]
		}
		if !uses {
			continue
		}
		if err := s.reResolve(ctx, cp); err != nil && !errors.Is(err, errs.ErrNotFound) {
			s.log.Warn("re-resolve profile", "project", cp.Metadata.Project, "profile", cp.Metadata.Name, "version", cp.Spec.Version, "err", err)
		}
	}
	return nil
}

func (s *Service) reResolve(ctx context.Context, cp *v1.ClusterProfile) error {
	for {
		before := map[string]string{}
		for _, r := range cp.Status.Resolved {
			before[r.Layer] = r.Version
		}
		if !s.resolveStatus(ctx, cp) {
			return nil
		}
		var moves []string
		for _, r := range cp.Status.Resolved {
			if old := before[r.Layer]; old != r.Version {
				moves = append(moves, fmt.Sprintf("%s %s → %s", r.Layer, orNone(old), r.Version))
			}
		}
		op, err := profileOp(store.OpUpdate, cp)
		if err != nil {
			return err
		}
		key := profileKey(cp.Metadata.Name, cp.Spec.Version)
		ops := []store.Op{op}
		if len(moves) > 0 {
			ops = append(ops, objects.EventOp(cp.Metadata.Project, v1.KindClusterProfile, key, objects.EventNormal, "VersionsResolved", "new versions available: "+strings.Join(moves, ", ")))
		}
		_, err = s.write(ctx, ops...)
		if !errors.Is(err, errs.ErrConflict) {
			if err == nil && len(moves) > 0 {
				s.log.Info("profile re-resolved", "project", cp.Metadata.Project, "profile", key, "moves", strings.Join(moves, ", "))
			}
			return err
		}
		// Someone edited the profile meanwhile: take theirs and try again.
		fresh, err := s.getProfile(ctx, cp.Metadata.Project, cp.Metadata.Name, cp.Spec.Version)
		if err != nil {
			return err
		}
		cp = fresh
	}
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
