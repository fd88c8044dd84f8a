package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/client"
)

// reconnectDelay is the pause before watching again after the hub closed a
// stream, so a hub that keeps closing is not hammered.
var reconnectDelay = time.Second

type watchFunc[T any] func(ctx context.Context, since int64) (<-chan v1.WatchEvent[T], <-chan error)

// follow calls emit for every change after revision since until ctx ends
// (then it returns nil) or the watch fails.
//
// When the hub closes the stream (a restart, a rebalance), follow watches
// again. One write can change several objects under one revision and the
// stream may have closed between them, so it resumes from just before the
// last revision seen and skips the objects of that revision already emitted.
func follow[T any](ctx context.Context, since int64, watch watchFunc[T], key func(*T) string, emit func(v1.WatchEvent[T]) error) error {
	last := since
	seen := map[string]bool{} // keys emitted at revision last
	from := since
	for {
		wctx, cancel := context.WithCancel(ctx)
		events, errc := watch(wctx, from)
		var emitErr error
		for ev := range events {
			if emitErr != nil {
				continue // draining after cancel
			}
			k := key(&ev.Object)
			if ev.Revision < last || (ev.Revision == last && seen[k]) {
				continue
			}
			if ev.Revision > last {
				last = ev.Revision
				clear(seen)
			}
			seen[k] = true
			if err := emit(ev); err != nil {
				emitErr = err
				cancel()
			}
		}
		err := <-errc
		cancel()
		switch {
		case emitErr != nil:
			return emitErr
		case ctx.Err() != nil:
			return nil
		case !errors.Is(err, client.ErrStreamClosed):
			if errors.Is(err, client.ErrGone) {
				return fmt.Errorf("%w (the hub no longer has the changes since the list: run the command again)", err)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(reconnectDelay):
		}
		from = last
		if len(seen) > 0 && last > 1 {
			from = last - 1
		}
	}
}
