package watch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// subscriberBuffer is how many changes a slow watch stream may lag behind
// before it is cut off (it then re-lists, or resumes with ?since=).
const subscriberBuffer = 1024

// Hub follows the change log and fans it out.
type Hub struct {
	store store.Store
	log   *slog.Logger

	mu      sync.Mutex
	last    int64 // newest revision fanned out
	subs    map[*Subscription]struct{}
	waiters map[string]map[chan struct{}]struct{} // kind/key -> waiters
	hooks   []func(store.Change)
	ready   chan struct{}
}

// New makes a Hub; Run starts it.
func New(s store.Store, log *slog.Logger) *Hub {
	return &Hub{
		store:   s,
		log:     log,
		subs:    map[*Subscription]struct{}{},
		waiters: map[string]map[chan struct{}]struct{}{},
		ready:   make(chan struct{}),
	}
}

// OnChange registers fn to run for every change, in order, on the follower
// goroutine (keep it quick). Register before Run.
func (h *Hub) OnChange(fn func(store.Change)) { h.hooks = append(h.hooks, fn) }

// Ready is closed once Run has read the starting revision.
func (h *Hub) Ready() <-chan struct{} { return h.ready }

// Revision is the newest revision fanned out.
func (h *Hub) Revision() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Run follows the change log until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	notify := h.store.Notify(ctx)
	rev, err := h.store.Revision(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.last = rev
	h.mu.Unlock()
	close(h.ready)
	for {
		if err := h.catchUp(ctx); err != nil && ctx.Err() == nil {
			h.log.Error("follow change log", "err", err)
			// The store is failing; try again shortly rather than spin.
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
				continue
			}
		}
		select {
		case <-ctx.Done():
			h.closeAll()
			return nil
		case _, ok := <-notify:
			if !ok {
				h.closeAll()
				return nil
			}
		}
	}
}

func (h *Hub) catchUp(ctx context.Context) error {
	for {
		h.mu.Lock()
		since := h.last
		h.mu.Unlock()
		changes, err := h.store.Changes(ctx, since, 1000)
		if errors.Is(err, errs.ErrGone) {
			// Compaction overtook us (a very long stall): jump to now. Watch
			// streams behind this point are cut and re-list.
			rev, rerr := h.store.Revision(ctx)
			if rerr != nil {
				return rerr
			}
			h.log.Warn("change log compacted past the follower; resetting streams", "from", since, "to", rev)
			h.mu.Lock()
			h.last = rev
			for s := range h.subs {
				s.cut(errs.ErrGone)
				delete(h.subs, s)
			}
			h.mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			return nil
		}
		for _, c := range changes {
			h.dispatch(c)
		}
	}
}

func (h *Hub) dispatch(c store.Change) {
	for _, fn := range h.hooks {
		fn(c)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = c.Object.Revision
	for s := range h.subs {
		if s.kind != "" && s.kind != c.Object.Kind || s.project != "" && s.project != c.Object.Project {
			continue
		}
		select {
		case s.ch <- c:
		default:
			s.cut(errors.New("watch stream fell too far behind"))
			delete(h.subs, s)
		}
	}
	if c.Object.Key != "" {
		k := c.Object.Kind + "/" + c.Object.Key
		for ch := range h.waiters[k] {
			close(ch)
		}
		delete(h.waiters, k)
	}
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.cut(context.Canceled)
		delete(h.subs, s)
	}
	for k, ws := range h.waiters {
		for ch := range ws {
			close(ch)
		}
		delete(h.waiters, k)
	}
}

// Wait returns a channel closed at the next change of the object of kind
// with unique key, and a cancel func to call when no longer waiting.
func (h *Hub) Wait(kind, key string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	k := kind + "/" + key
	h.mu.Lock()
	if h.waiters[k] == nil {
		h.waiters[k] = map[chan struct{}]struct{}{}
	}
	h.waiters[k][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if ws, ok := h.waiters[k]; ok {
			delete(ws, ch)
			if len(ws) == 0 {
				delete(h.waiters, k)
			}
		}
	}
}

// Subscription is one watch stream's view of the changes.
type Subscription struct {
	kind, project string
	ch            chan store.Change
	done          chan struct{}
	err           error
	// start is the revision fanned out when the subscription began: changes
	// up to it come from the store's log, later ones from ch.
	start int64
}

func (s *Subscription) cut(err error) {
	s.err = err
	close(s.done)
}

// Subscribe streams changes of kind in project ("" for all) with revision >
// since, in order: first from the change log, then live. The stream ends with
// an error wrapping errs.ErrGone when since is older than the log keeps.
func (h *Hub) Subscribe(ctx context.Context, kind, project string, since int64, send func(store.Change) error) error {
	s := &Subscription{kind: kind, project: project, ch: make(chan store.Change, subscriberBuffer), done: make(chan struct{})}
	h.mu.Lock()
	s.start = h.last
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}()

	sent := since
catchUp:
	for sent < s.start {
		changes, err := h.store.Changes(ctx, sent, 500)
		if err != nil {
			return err
		}
		if len(changes) == 0 {
			break
		}
		for _, c := range changes {
			if c.Object.Revision > s.start {
				break catchUp
			}
			sent = c.Object.Revision
			if (kind == "" || c.Object.Kind == kind) && (project == "" || c.Object.Project == project) {
				if err := send(c); err != nil {
					return err
				}
			}
		}
		if len(changes) < 500 {
			break
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return s.err
		case c := <-s.ch:
			if c.Object.Revision <= sent {
				continue
			}
			if err := send(c); err != nil {
				return err
			}
		}
	}
}

// CheckSince fails with an error wrapping errs.ErrGone when the change log no
// longer reaches back to since, so a watch can answer 410 before it starts.
func (h *Hub) CheckSince(ctx context.Context, since int64) error {
	_, err := h.store.Changes(ctx, since, 1)
	return err
}
