package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	v1 "github.com/outpost-edge/outpost/api/v1"
	"github.com/outpost-edge/outpost/internal/errs"
)

// ErrStreamClosed is reported when the hub ends a watch stream on its own
// (a restart, a rebalance between replicas). Nothing was lost: watch again
// from the revision of the last event received.
var ErrStreamClosed = errors.New("the hub closed the watch stream")

// sseChange is the event name of a watch stream's changes.
const sseChange = "change"

// sseError names the error event the hub sends before it ends a stream, for
// instance "gone" when a slow watcher fell behind the change log.
const sseError = "error"

// WatchHosts streams changes to the project's hosts that match f after
// revision since; pass a list's Revision to miss nothing between the list
// and the watch. With since <= 0 the hub first sends every matching host as
// Added, then the changes.
//
// Events arrive on the first channel until the stream ends; then the second
// channel yields the reason and is closed. Cancelling ctx ends the watch
// cleanly: both channels close and the error channel yields nil. The caller
// must keep reading events or cancel ctx, or the watch blocks.
//
// A since older than the hub's change log fails with ErrGone: list again.
func (c *Client) WatchHosts(ctx context.Context, project string, f HostFilter, since int64) (<-chan v1.WatchEvent[v1.EdgeHost], <-chan error) {
	if project == "" {
		return failedWatch[v1.EdgeHost](errNoName("project"))
	}
	return Watch[v1.EdgeHost](ctx, c, apiPath("projects", project, "hosts"), f.query(), since)
}

// WatchEvents streams the project's new events that match f, after
// revision since; see WatchHosts for how the channels behave.
func (c *Client) WatchEvents(ctx context.Context, project string, f EventFilter, since int64) (<-chan v1.WatchEvent[v1.Event], <-chan error) {
	if project == "" {
		return failedWatch[v1.Event](errNoName("project"))
	}
	return Watch[v1.Event](ctx, c, apiPath("projects", project, "events"), f.query(), since)
}

// Watch streams the changes of any list path of the user API (path as
// "/api/v1/...", already escaped) whose objects decode into T. WatchHosts
// and WatchEvents are its typed forms; it is exported for lists added to the
// hub before this package learns them.
func Watch[T any](ctx context.Context, c *Client, path string, query url.Values, since int64) (<-chan v1.WatchEvent[T], <-chan error) {
	q := url.Values{}
	for k, vs := range query {
		q[k] = vs
	}
	q.Set("watch", "1")
	if since > 0 {
		q.Set("since", strconv.FormatInt(since, 10))
	}
	req, err := c.newRequest(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return failedWatch[T](err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")

	events := make(chan v1.WatchEvent[T])
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(events)
		err := stream(c, req, func(ev v1.WatchEvent[T]) bool {
			select {
			case events <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if ctx.Err() != nil {
			return // the caller asked to stop: not an error
		}
		errc <- err
	}()
	return events, errc
}

func stream[T any](c *Client, req *http.Request, emit func(v1.WatchEvent[T]) bool) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(req.Context(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readError(resp)
	}
	r := newSSEReader(resp.Body)
	for {
		ev, err := r.next()
		if errors.Is(err, io.EOF) {
			return ErrStreamClosed
		}
		if err != nil {
			return fmt.Errorf("read watch stream: %w", err)
		}
		switch ev.Name {
		case sseChange:
			var we v1.WatchEvent[T]
			if err := json.Unmarshal(ev.Data, &we); err != nil {
				return fmt.Errorf("decode watch event: %w", err)
			}
			if !emit(we) {
				return nil
			}
		case sseError:
			var e v1.Error
			if err := json.Unmarshal(ev.Data, &e); err != nil || e.Code == "" {
				return fmt.Errorf("watch stream error: %s", ev.Data)
			}
			status := 0
			if e.Code == v1.CodeGone {
				status = http.StatusGone
			}
			return errs.FromAPI(status, e)
		}
		// Other event names are ignored so the hub can add some.
	}
}

func failedWatch[T any](err error) (<-chan v1.WatchEvent[T], <-chan error) {
	events := make(chan v1.WatchEvent[T])
	errc := make(chan error, 1)
	close(events)
	errc <- err
	close(errc)
	return events, errc
}
