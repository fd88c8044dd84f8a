package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/sqlite"
	"github.com/outpost-edge/outpost/internal/hub/store/storetest"
)

func open(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "hub.db"))
	})
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, ":memory:") })
}

// TestReopen checks that data, revisions, the change log and the compaction
// point survive a restart, and that migrations are not applied twice.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	r1, _, err := s.Write(ctx, store.Op{Type: store.OpCreate, Object: store.Object{Kind: "Thing", Project: "p", Name: "a", Key: "k", Data: []byte(`{"v":1}`)}})
	if err != nil {
		t.Fatal(err)
	}
	r2, _, err := s.Write(ctx, store.Op{Type: store.OpCreate, Object: store.Object{Kind: "Thing", Project: "p", Name: "b", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	if rev, err := s.Revision(ctx); err != nil || rev != r2 {
		t.Fatalf("revision after reopen: %d, %v; want %d", rev, err, r2)
	}
	o, err := s.GetByKey(ctx, "Thing", "k")
	if err != nil || string(o.Data) != `{"v":1}` || o.Revision != r1 {
		t.Fatalf("object after reopen: %+v, %v", o, err)
	}
	if _, err := s.Changes(ctx, 0, 0); err == nil {
		t.Errorf("compaction point lost on reopen")
	}
	cs, err := s.Changes(ctx, r1, 0)
	if err != nil || len(cs) != 1 || cs[0].Object.Name != "b" {
		t.Errorf("changes after reopen: %+v, %v", cs, err)
	}
	r3, _, err := s.Write(ctx, store.Op{Type: store.OpDelete, Object: store.Object{Kind: "Thing", Project: "p", Name: "a"}})
	if err != nil || r3 <= r2 {
		t.Errorf("write after reopen: revision %d, %v", r3, err)
	}
}

// TestOpenConcurrently opens one new file from several goroutines at once:
// the migration must run once and every Open succeed.
func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	errc := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := sqlite.Open(context.Background(), path)
			if err == nil {
				_, err = s.Revision(context.Background())
				s.Close()
			}
			errc <- err
		}()
	}
	for range 4 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}

func TestOpenRejectsURIs(t *testing.T) {
	for _, p := range []string{"", "file:hub.db", "hub.db?mode=ro"} {
		if s, err := sqlite.Open(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	storetest.BenchWrite(b, open(b, filepath.Join(b.TempDir(), "hub.db")))
}

func BenchmarkGet(b *testing.B) {
	storetest.BenchGet(b, open(b, filepath.Join(b.TempDir(), "hub.db")))
}
