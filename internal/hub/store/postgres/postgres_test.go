package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/postgres"
	"github.com/outpost-edge/outpost/internal/hub/store/storetest"
	"github.com/outpost-edge/outpost/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(tb testing.TB, dsn string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(context.Background(), dsn)
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
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.Start(t)) })
}

func thing(name, data string) store.Op {
	return store.Op{Type: store.OpCreate, Object: store.Object{Kind: "Thing", Project: "p", Name: name, Data: []byte(data)}}
}

func waitFor(t *testing.T, what string, ch <-chan int64, want int64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
			if rev >= want {
				return
			}
		case <-timeout:
			t.Fatalf("%s: no revision >= %d", what, want)
		}
	}
}

// TestNotifyAcrossReplicas: a write through one Store wakes the watchers of
// another Store on the same database.
func TestNotifyAcrossReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	chA := a.Notify(ctx)
	for i := range 3 {
		rev, _, err := b.Write(ctx, thing(fmt.Sprint(i), `{}`))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "replica a", chA, rev)
	}
	// And the other way round.
	chB := b.Notify(ctx)
	rev, _, err := a.Write(ctx, thing("from-a", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica b", chB, rev)
}

// TestNotifyAfterListenerLoss kills the LISTEN connections and keeps them
// from coming back while another replica writes: the notification of that
// write is lost for good, so only the Store's catch-up after reconnecting can
// wake its watchers. Then it must be listening again.
func TestNotifyAfterListenerLoss(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()
	ch := a.Notify(ctx)
	// From another database: PostgreSQL will not close the current one.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	allow := func(yes bool) {
		t.Helper()
		if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, pgx.Identifier{db}.Sanitize(), yes)); err != nil {
			t.Fatal(err)
		}
	}
	listeners := func() int {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'outpost-hub-listener' AND datname = $1`, db).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	allow(false)
	defer allow(true)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = 'outpost-hub-listener' AND datname = $1`, db).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Fatalf("terminated %d listener connections, want 2", killed)
	}
	// Termination is asynchronous: a listener still alive could get the
	// notification below.
	for deadline := time.Now().Add(10 * time.Second); listeners() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("listeners still connected 10s after termination")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rev, _, err := b.Write(ctx, thing("during-outage", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		t.Fatalf("woke with revision %d while no listener could connect: the test is not testing the catch-up", r)
	case <-time.After(300 * time.Millisecond):
	}
	allow(true)
	waitFor(t, "catch-up after reconnecting", ch, rev)

	deadline := time.Now().Add(10 * time.Second)
	for listeners() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d listener connections after 10s, want 2", listeners())
		}
		time.Sleep(20 * time.Millisecond)
	}
	rev, _, err = b.Write(ctx, thing("after-reconnect", `{}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "after reconnect", ch, rev)
}

// TestReplicasConcurrentReadModifyWrite runs the lost-update test across two
// Stores: optimistic concurrency must hold between replicas, not just
// within one pool.
func TestReplicasConcurrentReadModifyWrite(t *testing.T) {
	dsn := pgtest.Start(t)
	stores := []*postgres.Store{open(t, dsn), open(t, dsn)}
	ctx := t.Context()
	start, _, err := stores[0].Write(ctx, store.Op{Type: store.OpCreate, Object: store.Object{Kind: "Counter", Name: "c", Data: []byte(`{"n":0}`)}})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 6, 15
	var wg sync.WaitGroup
	for w := range workers {
		s := stores[w%2]
		wg.Go(func() {
			for range each {
				for {
					o, err := s.Get(ctx, "Counter", "", "c")
					if err != nil {
						t.Error(err)
						return
					}
					var n int
					fmt.Sscanf(string(o.Data), `{"n": %d}`, &n)
					_, _, err = s.Write(ctx, store.Op{Type: store.OpUpdate, ExpectRevision: o.Revision,
						Object: store.Object{Kind: "Counter", Name: "c", Data: fmt.Appendf(nil, `{"n": %d}`, n+1)}})
					if errors.Is(err, errs.ErrConflict) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	o, err := stores[1].Get(ctx, "Counter", "", "c")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscanf(string(o.Data), `{"n": %d}`, &n)
	if n != workers*each || o.Revision != start+workers*each {
		t.Errorf("counter %d at revision %d; want %d at %d", n, o.Revision, workers*each, start+workers*each)
	}
}

// TestOpenConcurrently starts several replicas at once on a new database:
// the advisory lock must let exactly one apply the migrations.
func TestOpenConcurrently(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 5
	errc := make(chan error, n)
	for range n {
		go func() {
			s, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				_, err = s.Revision(context.Background())
				s.Close()
			}
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var migrations int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&migrations); err != nil {
		t.Fatal(err)
	}
	if migrations != 1 {
		t.Errorf("schema_migrations has %d rows, want 1", migrations)
	}
}

// TestReopen checks that state survives a restart and migrations are not
// applied twice.
func TestReopen(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	r1, _, err := s.Write(ctx, thing("a", `{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, r1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dsn)
	if rev, err := s.Revision(ctx); err != nil || rev != r1 {
		t.Errorf("revision after reopen: %d, %v; want %d", rev, err, r1)
	}
	if _, err := s.Changes(ctx, 0, 0); !errors.Is(err, errs.ErrGone) {
		t.Errorf("compaction point lost on reopen: %v", err)
	}
	if _, err := s.Get(ctx, "Thing", "p", "a"); err != nil {
		t.Error(err)
	}
}

func TestOpenBadDSN(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://u:secret@127.0.0.1:1/x?sslmode=bogus")
	if err == nil {
		t.Fatal("Open with a bad DSN succeeded")
	}
	if s := err.Error(); strings.Contains(s, "secret") {
		t.Errorf("error shows the password: %s", s)
	}
}

func BenchmarkWrite(b *testing.B) {
	storetest.BenchWrite(b, open(b, pgtest.Start(b)))
}

func BenchmarkGet(b *testing.B) {
	storetest.BenchGet(b, open(b, pgtest.Start(b)))
}
