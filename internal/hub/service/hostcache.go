package service

import (
	"context"
	"encoding/json"
	"sync"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/hub/objects"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// hostEntry is what the hot agent paths need of a host, kept in memory so a
// heartbeat costs no database read.
type hostEntry struct {
	project       string
	state         string
	health        string
	enrollmentID  string
	inventoryHash string
	agentVersion  string
	healthMessage string
	revision      int64
	deleted       bool // a tombstone, so a late older change cannot revive it
}

// hostCache mirrors every EdgeHost, fed by the change log (so writes from
// other hub replicas arrive too).
type hostCache struct {
	mu    sync.RWMutex
	hosts map[string]hostEntry
}

func newHostCache() *hostCache { return &hostCache{hosts: map[string]hostEntry{}} }

func entryOf(h *v1.EdgeHost) hostEntry {
	return hostEntry{
		project:       h.Metadata.Project,
		state:         h.Status.State,
		health:        h.Status.Health,
		enrollmentID:  h.Status.EnrollmentID,
		inventoryHash: h.Status.InventoryHash,
		agentVersion:  h.Status.AgentVersion,
		healthMessage: h.Status.HealthMessage,
	}
}

func (c *hostCache) load(ctx context.Context, s store.Store) error {
	hosts, _, err := objects.List[v1.EdgeHost](ctx, s, v1.KindEdgeHost, "")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hosts {
		e := entryOf(h)
		e.revision = h.Metadata.Revision
		c.hosts[h.Metadata.Name] = e
	}
	return nil
}

// apply is the watch hook. The service also applies its own writes as soon
// as they commit, so a host can use a certificate the moment it has it;
// the revision check makes the two paths agree whatever their order.
func (c *hostCache) apply(ch store.Change) {
	if ch.Object.Kind != v1.KindEdgeHost {
		return
	}
	if ch.Type == store.Deleted {
		c.put(ch.Object.Name, hostEntry{revision: ch.Object.Revision, deleted: true})
		return
	}
	var h v1.EdgeHost
	if err := json.Unmarshal(ch.Object.Data, &h); err != nil {
		return
	}
	h.Metadata.Project = ch.Object.Project
	e := entryOf(&h)
	e.revision = ch.Object.Revision
	c.put(ch.Object.Name, e)
}

func (c *hostCache) put(id string, e hostEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.hosts[id]; ok && cur.revision > e.revision {
		return
	}
	c.hosts[id] = e
}

func (c *hostCache) get(id string) (hostEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.hosts[id]
	return e, ok && !e.deleted
}

// snapshot returns the IDs and entries of every host (for the offline scan).
func (c *hostCache) each(fn func(id string, e hostEntry)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for id, e := range c.hosts {
		if !e.deleted {
			fn(id, e)
		}
	}
}
