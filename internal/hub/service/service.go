package service

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/secrets"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/watch"
	"github.com/outpost-edge/outpost/pki"
)

// Config tunes the service.
type Config struct {
	// HeartbeatInterval is what agents are told to use.
	HeartbeatInterval time.Duration
	// OfflineAfter is how long a host may stay silent before it is Offline.
	OfflineAfter time.Duration
	// AgentCertTTL is the lifetime of agent client certificates; agents
	// renew at two thirds of it.
	AgentCertTTL time.Duration
	// MaxPendingPerProject caps hosts waiting for approval in one project, so
	// unauthenticated enrollments cannot fill the database.
	MaxPendingPerProject int
	// LastSeenFlush is how often last-seen times are written in one batch.
	LastSeenFlush time.Duration
	// Secrets seals secrets at rest; nil makes a throwaway key (tests).
	Secrets *secrets.Box
}

func (c *Config) defaults() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 15 * time.Second
	}
	if c.OfflineAfter <= 0 {
		c.OfflineAfter = 6 * c.HeartbeatInterval
	}
	if c.AgentCertTTL <= 0 {
		c.AgentCertTTL = 24 * time.Hour
	}
	if c.MaxPendingPerProject <= 0 {
		c.MaxPendingPerProject = 1000
	}
	if c.LastSeenFlush <= 0 {
		c.LastSeenFlush = 10 * time.Second
	}
	if c.Secrets == nil {
		key := make([]byte, 32)
		rand.Read(key)
		c.Secrets, _ = secrets.New(key)
	}
}

// Service is the hub's behaviour. It is safe for concurrent use.
type Service struct {
	cfg     Config
	secrets *secrets.Box
	store   store.Store
	watch   *watch.Hub
	ca      *pki.CA
	log     *slog.Logger
	now     func() time.Time

	hosts    *hostCache
	presence *presence
	packs    *packIndex
	trains   *trains
	clusters *clusterQueue
	metrics  *collector
	loops    sync.WaitGroup

	httpOnce sync.Once
	http     *http.Client

	// keyLocks serializes work on one key within this replica (enrollments
	// of one host ID, syncs of one registry) so two requests do not race to
	// the same write; the store's revisions still guard across replicas.
	keyLocks sync.Map
}

// New makes a Service. Call Start before serving.
func New(cfg Config, s store.Store, w *watch.Hub, ca *pki.CA, log *slog.Logger) *Service {
	cfg.defaults()
	svc := &Service{cfg: cfg, store: s, watch: w, ca: ca, log: log, now: time.Now, secrets: cfg.Secrets}
	svc.hosts = newHostCache()
	svc.presence = newPresence()
	svc.packs = newPackIndex()
	svc.trains = newTrains()
	svc.clusters = newClusterQueue()
	svc.metrics = newCollector(svc)
	w.OnChange(svc.hosts.apply)
	w.OnChange(svc.packs.apply)
	w.OnChange(svc.trains.apply)
	w.OnChange(svc.clusters.apply)
	return svc
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Start loads what the service keeps in memory (hosts, last-seen times) and
// runs its background loops (last-seen flush, offline detection) until ctx
// ends. It returns once the memory is loaded.
func (s *Service) Start(ctx context.Context) error {
	if err := s.hosts.load(ctx, s.store); err != nil {
		return err
	}
	if err := s.packs.load(ctx, s.store); err != nil {
		return err
	}
	seen, err := s.store.LoadLastSeen(ctx)
	if err != nil {
		return fmt.Errorf("load last-seen times: %w", err)
	}
	s.presence.load(seen, s.now())
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.presenceLoop(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.registryLoop(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.trainLoop(ctx)
	}()
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		s.clusterLoop(ctx)
	}()
	return nil
}

// Wait returns when the background loops started by Start have ended (after
// their context ended), so the store can be closed safely.
func (s *Service) Wait() { s.loops.Wait() }

// write applies ops and feeds what it wrote to the in-memory indexes.
func (s *Service) write(ctx context.Context, ops ...store.Op) ([]store.Object, error) {
	_, rows, err := s.store.Write(ctx, ops...)
	if err != nil {
		return nil, err
	}
	// The in-memory indexes learn of this replica's own writes at once, so
	// the next request sees them; the change-log follower brings the same
	// changes again (harmless) and those of other replicas.
	for i, op := range ops {
		typ := store.Updated
		if op.Type == store.OpDelete {
			typ = store.Deleted
		}
		switch op.Object.Kind {
		case v1.KindEdgeHost:
			s.hosts.apply(store.Change{Type: typ, Object: rows[i]})
		case v1.KindPack:
			s.packs.apply(store.Change{Type: typ, Object: rows[i]})
		}
	}
	return rows, nil
}

// EnsureProject creates a project if it does not exist (used for "default").
func (s *Service) EnsureProject(ctx context.Context, name, description string) error {
	_, err := s.store.Get(ctx, v1.KindProject, "", name)
	if err == nil {
		return nil
	}
	if !errors.Is(err, errs.ErrNotFound) {
		return err
	}
	p := &v1.Project{TypeMeta: typeMeta(v1.KindProject), Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ProjectSpec{Description: description}}
	op, err := objects.CreateOp(v1.KindProject, p, "")
	if err != nil {
		return err
	}
	if _, err := s.write(ctx, op); err != nil && !errors.Is(err, errs.ErrAlreadyExists) {
		return fmt.Errorf("create project %q: %w", name, err)
	}
	return nil
}

func typeMeta(kind string) v1.TypeMeta { return v1.TypeMeta{APIVersion: v1.APIVersion, Kind: kind} }
