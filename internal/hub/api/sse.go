package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
)

// keepAlive is how often an idle watch stream sends a comment, so proxies
// and load balancers do not cut it.
const keepAlive = 20 * time.Second

// stream answers a list request with ?watch=1 as server-sent events. Without
// ?since it first sends every listed item as Added (at the list's revision);
// with ?since=N it sends only what changed after N. convert decodes a changed
// object and says whether it belongs in this stream.
func stream[T any](a *UserAPI, w http.ResponseWriter, r *http.Request, kind, project string, listRev int64, items []T, convert func(store.Object) (any, bool)) error {
	since, err := queryInt(r, "since", -1)
	if err != nil {
		return err
	}
	if since >= 0 {
		// Answer 410 now, while a status can still be sent.
		if err := a.watch.CheckSince(r.Context(), since); err != nil {
			return err
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	send := func(typ string, rev int64, obj any) error {
		data, err := json.Marshal(v1.WatchEvent[any]{Type: typ, Revision: rev, Object: obj})
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "event: change\nid: %d\ndata: %s\n\n", rev, data); err != nil {
			return err
		}
		return rc.Flush()
	}
	if since < 0 {
		for _, it := range items {
			if err := send(v1.WatchAdded, listRev, it); err != nil {
				return nil
			}
		}
		since = listRev
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	ctx := r.Context()
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	done := make(chan error, 1)
	events := make(chan store.Change, 64)
	go func() {
		done <- a.watch.Subscribe(ctx, kind, project, since, func(c store.Change) error {
			select {
			case events <- c:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			if errors.Is(err, errs.ErrGone) {
				fmt.Fprintf(w, "event: error\ndata: {\"code\":%q,\"message\":\"watch fell behind the change log; list again\"}\n\n", v1.CodeGone)
				rc.Flush()
			}
			return nil
		case <-ticker.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		case c := <-events:
			obj, ok := convert(c.Object)
			if !ok {
				continue
			}
			typ := v1.WatchModified
			switch c.Type {
			case store.Created:
				typ = v1.WatchAdded
			case store.Deleted:
				typ = v1.WatchDeleted
			}
			if send(typ, c.Object.Revision, obj) != nil {
				return nil
			}
		}
	}
}
