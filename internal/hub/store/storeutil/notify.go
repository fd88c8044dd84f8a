package storeutil

import (
	"context"
	"sync"
)

// Notifier fans revisions out to Notify channels. Each channel holds at most
// one value, the newest: a slow reader must see the latest revision, never a
// backlog, and a writer must never block on a reader.
type Notifier struct {
	mu     sync.Mutex
	subs   map[chan int64]struct{}
	last   int64
	closed bool
}

func NewNotifier() *Notifier {
	return &Notifier{subs: make(map[chan int64]struct{})}
}

func (n *Notifier) Subscribe(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		close(ch)
		return ch
	}
	n.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if _, ok := n.subs[ch]; ok {
			delete(n.subs, ch)
			close(ch)
		}
	})
	return ch
}

// publish sends rev to every subscriber unless a newer revision was already
// sent, so readers never see the revision go backwards.
func (n *Notifier) Publish(rev int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if rev <= n.last {
		return
	}
	n.last = rev
	for ch := range n.subs {
		select {
		case ch <- rev:
		default:
			// Full: replace the stale value with the newest.
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- rev:
			default:
			}
		}
	}
}

// close closes every channel: the store is gone and no wake-up will come.
func (n *Notifier) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for ch := range n.subs {
		delete(n.subs, ch)
		close(ch)
	}
}
