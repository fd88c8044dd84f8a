package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestStartGivesFreshDatabases: each caller gets its own empty database on
// the one shared server.
func TestStartGivesFreshDatabases(t *testing.T) {
	ctx := context.Background()
	dsn1, dsn2 := Start(t), Start(t)
	if dsn1 == dsn2 {
		t.Fatalf("two callers got the same DSN %s", dsn1)
	}
	c1, err := pgx.Connect(ctx, dsn1)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close(ctx)
	c2, err := pgx.Connect(ctx, dsn2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close(ctx)
	if _, err := c1.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	// Independent: the table is not in the other database.
	if _, err := c2.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Errorf("second database is not independent: %v", err)
	}
	var port1, port2 int
	if err := c1.QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port1); err != nil {
		t.Fatal(err)
	}
	if err := c2.QueryRow(ctx, `SELECT inet_server_port()`).Scan(&port2); err != nil {
		t.Fatal(err)
	}
	if port1 != port2 {
		t.Errorf("databases on two servers (ports %d, %d), want one shared server", port1, port2)
	}
}

// TestDatabaseDroppedAfterTest: the database of a finished (sub)test is gone.
func TestDatabaseDroppedAfterTest(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(Start(t))
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
	})
	var exists bool
	err := srv.admin(func(ctx context.Context, c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT exists (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	})
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test", name)
	}
}

// fakeTB records how Start ended a test instead of ending it.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Skipf(format string, a ...any)  { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) { f.failed = fmt.Sprintf(format, a...) }

func TestStartFailed(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		ci          bool
		skip, fatal bool
	}{
		{"not installed", errNoBinaries, false, true, false},
		{"not installed under CI", errNoBinaries, true, false, true},
		{"other error", errors.New("initdb: boom"), false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			startFailed(f, tt.err, tt.ci)
			if (f.skipped != "") != tt.skip || (f.failed != "") != tt.fatal {
				t.Fatalf("skipped %q, failed %q", f.skipped, f.failed)
			}
			msg := f.skipped + f.failed
			if errors.Is(tt.err, errNoBinaries) && !strings.Contains(msg, "postgresql") {
				t.Errorf("message %q does not name the Debian package postgresql", msg)
			}
		})
	}
}
