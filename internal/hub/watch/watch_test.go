package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/sqlite"
)

func setup(t *testing.T) (store.Store, *Hub, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	h := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	<-h.Ready()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return st, h, ctx
}

func create(t *testing.T, st store.Store, kind, project, name, key string) int64 {
	t.Helper()
	rev, _, err := st.Write(context.Background(), store.Op{Type: store.OpCreate, Object: store.Object{Kind: kind, Project: project, Name: name, Key: key, Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// A watch from an old revision gets the backlog from the log, then live
// changes, in order, without gaps or repeats, filtered by kind and project.
func TestSubscribeCatchUpThenLive(t *testing.T) {
	st, h, ctx := setup(t)
	start := create(t, st, "Host", "a", "h0", "")
	create(t, st, "Host", "b", "other-project", "")
	create(t, st, "Token", "a", "other-kind", "")
	create(t, st, "Host", "a", "h1", "")

	got := make(chan string, 10)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go h.Subscribe(sctx, "Host", "a", start-1, func(c store.Change) error {
		got <- fmt.Sprintf("%s@%d", c.Object.Name, c.Object.Revision)
		return nil
	})
	time.Sleep(50 * time.Millisecond)
	r2 := create(t, st, "Host", "a", "h2", "")
	want := []string{fmt.Sprintf("h0@%d", start), fmt.Sprintf("h1@%d", start+3), fmt.Sprintf("h2@%d", r2)}
	for _, w := range want {
		select {
		case g := <-got:
			if g != w {
				t.Fatalf("got %s, want %s", g, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %s", w)
		}
	}
	select {
	case g := <-got:
		t.Fatalf("unexpected extra change %s", g)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestSubscribeGoneAfterCompaction(t *testing.T) {
	st, h, ctx := setup(t)
	for i := range 5 {
		create(t, st, "Host", "a", fmt.Sprint("h", i), "")
	}
	rev, _ := st.Revision(ctx)
	if err := st.Compact(ctx, rev-1); err != nil {
		t.Fatal(err)
	}
	err := h.Subscribe(ctx, "Host", "a", 1, func(store.Change) error { return nil })
	if !errors.Is(err, errs.ErrGone) {
		t.Fatalf("Subscribe from a compacted revision: %v, want gone", err)
	}
	if err := h.CheckSince(ctx, 1); !errors.Is(err, errs.ErrGone) {
		t.Fatalf("CheckSince: %v", err)
	}
}

// A waiter on one object wakes on its change only.
func TestWait(t *testing.T) {
	st, h, _ := setup(t)
	mine, cancelMine := h.Wait("Host", "edge-1")
	defer cancelMine()
	other, cancelOther := h.Wait("Host", "edge-2")
	defer cancelOther()
	create(t, st, "Host", "a", "edge-1", "edge-1")
	select {
	case <-mine:
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by its object's change")
	}
	select {
	case <-other:
		t.Fatal("waiter woken by another object's change")
	case <-time.After(100 * time.Millisecond):
	}
}
