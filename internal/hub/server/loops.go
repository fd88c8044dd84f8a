package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/outpost-edge/outpost/internal/hub/store"
)

// compactLoop trims the change log to its newest keep revisions. Watchers
// further behind than that get 410 and list again.
func compactLoop(ctx context.Context, st store.Store, keep int64, log *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rev, err := st.Revision(ctx)
			if err != nil {
				continue
			}
			if rev > keep {
				if err := st.Compact(ctx, rev-keep); err != nil && ctx.Err() == nil {
					log.Warn("compact change log", "err", err)
				}
			}
		}
	}
}
