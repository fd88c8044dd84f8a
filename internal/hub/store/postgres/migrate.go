package postgres

import (
	"context"
	"embed"
	"fmt"
	"github.com/outpost-edge/outpost/internal/hub/store/storeutil"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the advisory lock key for migrations ("outpost" in ASCII),
// shared by every replica.
const migrationLock = 0x6f7574706f7374

// migrate applies the migrations the database has not seen. PostgreSQL DDL is
// transactional, so all of them run in one transaction: a failure leaves the
// schema as it was. The transaction-scoped advisory lock makes replicas that
// start together wait for the first and then find nothing to do (without it
// two CREATE TABLE IF NOT EXISTS can still collide).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := storeutil.LoadMigrations(migrationFS)
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[int]bool{}
	latest := 0
	for _, v := range versions {
		applied[int(v)] = true
		latest = max(latest, int(v))
	}
	if known := ms[len(ms)-1].Version; latest > known {
		// An older binary must not write to a schema it does not know.
		return fmt.Errorf("migrate: the database has schema version %d, newer than this build's %d", latest, known)
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		// No arguments: pgx sends it with the simple protocol, which runs a
		// file of several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
