package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/storeutil"
)

// Channel is the LISTEN/NOTIFY channel every write notifies with its
// revision as payload.
const Channel = "outpost_changes"

// listenerAppName marks the LISTEN connection in pg_stat_activity.
const listenerAppName = "outpost-hub-listener"

// Store is the PostgreSQL store.Store. Safe for concurrent use; several
// Stores (hub replicas) may share one database.
type Store struct {
	pool      *pgxpool.Pool
	listenCfg *pgx.ConnConfig
	n         *storeutil.Notifier

	stopListen context.CancelFunc
	listenDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open connects to the database at dsn (a URL or key=value DSN, as pgx
// takes), brings its schema up to date and starts listening for other
// replicas' writes.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message can quote the DSN, password included: keep it out.
		return nil, fmt.Errorf("open postgres store: invalid DSN: %w", errs.ErrInvalid)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	s := &Store{
		pool:       pool,
		listenCfg:  cfg.ConnConfig.Copy(),
		n:          storeutil.NewNotifier(),
		listenDone: make(chan struct{}),
	}
	if _, ok := s.listenCfg.RuntimeParams["application_name"]; !ok {
		s.listenCfg.RuntimeParams["application_name"] = listenerAppName
	}
	// LISTEN before Open returns, so a write any replica commits after Open
	// wakes this Store's watchers.
	conn, err := s.connectListener(ctx)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stopListen = cancel
	go s.listen(lctx, conn)
	return s, nil
}

// Close stops listening, closes every Notify channel and the pool.
func (s *Store) Close() error {
	s.stopListen()
	<-s.listenDone
	s.n.Close()
	s.pool.Close()
	return nil
}

func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCfg)
	if err != nil {
		return nil, fmt.Errorf("connect listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen on %s: %w", Channel, err)
	}
	return conn, nil
}

// listenPing is how long the listener waits for a notification before it
// checks that its connection is still alive: a dead TCP connection can
// otherwise look like a quiet one for a long time.
const listenPing = 30 * time.Second

func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listenDone)
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	backoff := 100 * time.Millisecond
	for {
		if conn == nil {
			c, err := s.connectListener(ctx)
			if err != nil {
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			conn, backoff = c, 100*time.Millisecond
			// Notifications sent while no connection listened are lost: wake
			// everyone with the current revision so they look for themselves.
			var rev int64
			if err := conn.QueryRow(ctx, `SELECT value FROM store_state WHERE name = 'revision'`).Scan(&rev); err == nil {
				s.n.Publish(rev)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		msg, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if rev, err := strconv.ParseInt(msg.Payload, 10, 64); err == nil {
				s.n.Publish(rev)
			}
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		conn.Close(context.Background())
		conn = nil
	}
}

// ident names an object in errors the way users write it: project/name.
func ident(project, name string) string {
	if project == "" {
		return name
	}
	return project + "/" + name
}

// nullKey stores "no key" as NULL so the unique index ignores it.
func nullKey(k string) any {
	if k == "" {
		return nil
	}
	return k
}

const objectColumns = `kind, project, name, coalesce(key, ''), revision, created_at, updated_at, data`

func scanObject(row pgx.Row) (store.Object, error) {
	var o store.Object
	if err := row.Scan(&o.Kind, &o.Project, &o.Name, &o.Key, &o.Revision, &o.CreatedAt, &o.UpdatedAt, &o.Data); err != nil {
		return store.Object{}, err
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o, nil
}

// Get returns one object.
func (s *Store) Get(ctx context.Context, kind, project, name string) (store.Object, error) {
	o, err := scanObject(s.pool.QueryRow(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND project = $2 AND name = $3`,
		kind, project, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Object{}, fmt.Errorf("get %s %q: %w", kind, ident(project, name), errs.ErrNotFound)
	}
	if err != nil {
		return store.Object{}, fmt.Errorf("get %s %q: %w", kind, ident(project, name), err)
	}
	return o, nil
}

// GetByKey returns the object of kind with key.
func (s *Store) GetByKey(ctx context.Context, kind, key string) (store.Object, error) {
	if key == "" {
		return store.Object{}, fmt.Errorf("get %s with empty key: %w", kind, errs.ErrNotFound)
	}
	o, err := scanObject(s.pool.QueryRow(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = $1 AND key = $2`, kind, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Object{}, fmt.Errorf("get %s with key %q: %w", kind, key, errs.ErrNotFound)
	}
	if err != nil {
		return store.Object{}, fmt.Errorf("get %s with key %q: %w", kind, key, err)
	}
	return o, nil
}

// snapshot runs f in a read-only REPEATABLE READ transaction: its queries
// all see one snapshot, so a revision read with them matches them exactly.
func (s *Store) snapshot(ctx context.Context, f func(pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func readState(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `SELECT value FROM store_state WHERE name = $1`, name).Scan(&v)
	return v, err
}

// List returns the selected objects and the revision they were read at.
func (s *Store) List(ctx context.Context, opts store.ListOptions) ([]store.Object, int64, error) {
	q := `SELECT ` + objectColumns + ` FROM objects WHERE kind = $1`
	args := []any{opts.Kind}
	if opts.Project != "" {
		args = append(args, opts.Project)
		q += fmt.Sprintf(` AND project = $%d`, len(args))
	}
	if opts.AfterProject != "" || opts.AfterName != "" {
		after := opts.AfterProject
		if after == "" {
			// A caller listing one project pages by name alone.
			after = opts.Project
		}
		args = append(args, after, opts.AfterName)
		q += fmt.Sprintf(` AND (project, name) > ($%d, $%d)`, len(args)-1, len(args))
	}
	q += ` ORDER BY project, name`
	if opts.Limit > 0 {
		args = append(args, opts.Limit)
		q += fmt.Sprintf(` LIMIT $%d`, len(args))
	}
	var (
		out []store.Object
		rev int64
	)
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Object, error) { return scanObject(r) })
		if err != nil {
			return err
		}
		rev, err = readState(ctx, tx, "revision")
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", opts.Kind, err)
	}
	if out == nil {
		out = []store.Object{}
	}
	return out, rev, nil
}

// Revision returns the newest committed revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	rev, err := readState(ctx, s.pool, "revision")
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// bumpRevision takes the next revision and queues its notification. It must
// be a Write's first statement: its row lock is what orders writers (see
// the package doc). The notification is only delivered if the transaction
// commits.
const bumpRevision = `WITH r AS (
	UPDATE store_state SET value = value + 1 WHERE name = 'revision' RETURNING value
)
SELECT r.value FROM r, LATERAL (SELECT pg_notify('` + Channel + `', r.value::text)) AS n`

// Write applies ops in one transaction under a new revision. With no ops it
// writes nothing and returns the current revision.
func (s *Store) Write(ctx context.Context, ops ...store.Op) (int64, []store.Object, error) {
	if err := storeutil.ValidateOps(ops); err != nil {
		return 0, nil, err
	}
	if len(ops) == 0 {
		rev, err := s.Revision(ctx)
		return rev, nil, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("write: %w", err)
	}
	defer tx.Rollback(ctx)
	var rev int64
	if err := tx.QueryRow(ctx, bumpRevision).Scan(&rev); err != nil {
		return 0, nil, fmt.Errorf("write: bump revision: %w", err)
	}
	// Microseconds: the precision of timestamptz, so the times returned
	// here equal the ones read back later.
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]store.Object, len(ops))
	for i, op := range ops {
		o, err := apply(ctx, tx, rev, i, now, op)
		if err != nil {
			return 0, nil, err
		}
		out[i] = o
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, fmt.Errorf("write: commit: %w", err)
	}
	// The LISTEN connection will deliver this too; publishing now saves the
	// round trip for this replica's own watchers.
	s.n.Publish(rev)
	return rev, out, nil
}

// Each op is one statement: the object change and its change-log row are
// written together by a data-modifying CTE.
const (
	createSQL = `WITH ins AS (
		INSERT INTO objects (kind, project, name, key, revision, created_at, updated_at, data)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
		ON CONFLICT DO NOTHING
		RETURNING kind, project, name, key, revision, created_at, updated_at, data
	)
	INSERT INTO changes (revision, seq, type, kind, project, name, key, created_at, updated_at, data)
	SELECT revision, $8, 1, kind, project, name, key, created_at, updated_at, data FROM ins`

	updateSQL = `WITH upd AS (
		UPDATE objects SET key = $4, revision = $5, updated_at = $6, data = $7
		WHERE kind = $1 AND project = $2 AND name = $3 AND ($8::bigint = 0 OR revision = $8::bigint)
		RETURNING kind, project, name, key, revision, created_at, updated_at, data
	)
	INSERT INTO changes (revision, seq, type, kind, project, name, key, created_at, updated_at, data)
	SELECT revision, $9, 2, kind, project, name, key, created_at, updated_at, data FROM upd
	RETURNING created_at`

	deleteSQL = `WITH d AS (
		DELETE FROM objects
		WHERE kind = $1 AND project = $2 AND name = $3 AND ($4::bigint = 0 OR revision = $4::bigint)
		RETURNING kind, project, name, key, created_at, updated_at, data
	)
	INSERT INTO changes (revision, seq, type, kind, project, name, key, created_at, updated_at, data)
	SELECT $5, $6, 3, kind, project, name, key, created_at, updated_at, data FROM d
	RETURNING coalesce(key, ''), created_at, updated_at, data`
)

func apply(ctx context.Context, tx pgx.Tx, rev int64, seq int, now time.Time, op store.Op) (store.Object, error) {
	o := op.Object
	fail := func(err error) (store.Object, error) {
		return store.Object{}, fmt.Errorf("%s %s %q: %w", op.Type, o.Kind, ident(o.Project, o.Name), err)
	}
	switch op.Type {
	case store.OpCreate:
		tag, err := tx.Exec(ctx, createSQL, o.Kind, o.Project, o.Name, nullKey(o.Key), rev, now, o.Data, seq)
		if err != nil {
			return fail(err)
		}
		if tag.RowsAffected() == 0 {
			return fail(whyNotCreated(ctx, tx, o))
		}
		o.Revision, o.CreatedAt, o.UpdatedAt = rev, now, now
		return o, nil

	case store.OpUpdate:
		var created time.Time
		err := tx.QueryRow(ctx, updateSQL, o.Kind, o.Project, o.Name, nullKey(o.Key), rev, now, o.Data, op.ExpectRevision, seq).Scan(&created)
		if errors.Is(err, pgx.ErrNoRows) {
			return fail(whyNotFound(ctx, tx, o, op.ExpectRevision))
		}
		if isUniqueViolation(err) {
			return fail(fmt.Errorf("key %q is used by another object: %w", o.Key, errs.ErrAlreadyExists))
		}
		if err != nil {
			return fail(err)
		}
		o.Revision, o.CreatedAt, o.UpdatedAt = rev, created.UTC(), now
		return o, nil

	case store.OpDelete:
		err := tx.QueryRow(ctx, deleteSQL, o.Kind, o.Project, o.Name, op.ExpectRevision, rev, seq).
			Scan(&o.Key, &o.CreatedAt, &o.UpdatedAt, &o.Data)
		if errors.Is(err, pgx.ErrNoRows) {
			return fail(whyNotFound(ctx, tx, o, op.ExpectRevision))
		}
		if err != nil {
			return fail(err)
		}
		o.Revision, o.CreatedAt, o.UpdatedAt = rev, o.CreatedAt.UTC(), o.UpdatedAt.UTC()
		return o, nil
	}
	return fail(fmt.Errorf("unknown op type %d: %w", op.Type, errs.ErrInvalid))
}

// whyNotCreated tells which uniqueness rule a create that inserted nothing
// ran into. Writers are serialized by the revision row lock, so nothing has
// changed since the insert.
func whyNotCreated(ctx context.Context, tx pgx.Tx, o store.Object) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM objects WHERE kind = $1 AND project = $2 AND name = $3`, o.Kind, o.Project, o.Name).Scan(&one)
	if err == nil {
		return errs.ErrAlreadyExists
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	var project, name string
	err = tx.QueryRow(ctx, `SELECT project, name FROM objects WHERE kind = $1 AND key = $2`, o.Kind, o.Key).Scan(&project, &name)
	if err != nil {
		return fmt.Errorf("insert had no effect: %w", err)
	}
	return fmt.Errorf("key %q is used by %q: %w", o.Key, ident(project, name), errs.ErrAlreadyExists)
}

// whyNotFound tells whether an update or delete that matched no row hit a
// missing object or a revision mismatch.
func whyNotFound(ctx context.Context, tx pgx.Tx, o store.Object, expected int64) error {
	var cur int64
	err := tx.QueryRow(ctx, `SELECT revision FROM objects WHERE kind = $1 AND project = $2 AND name = $3`, o.Kind, o.Project, o.Name).Scan(&cur)
	if errors.Is(err, pgx.ErrNoRows) {
		return errs.ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w (revision is %d, expected %d)", errs.ErrConflict, cur, expected)
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

const changeColumns = `revision, type, kind, project, name, coalesce(key, ''), created_at, updated_at, data`

func scanChange(row pgx.CollectableRow) (store.Change, error) {
	var (
		c   store.Change
		typ int16
	)
	o := &c.Object
	if err := row.Scan(&o.Revision, &typ, &o.Kind, &o.Project, &o.Name, &o.Key, &o.CreatedAt, &o.UpdatedAt, &o.Data); err != nil {
		return store.Change{}, err
	}
	c.Type = store.ChangeType(typ)
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return c, nil
}

// Changes returns changes after since, oldest first. limit <= 0 means no
// limit. A page never ends inside a revision, since a watcher resumes from
// the last revision it saw and would skip the rest of a split one: the page
// stops before such a revision, or, when the first revision alone has more
// than limit changes, holds that whole revision.
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	var out []store.Change
	// One snapshot: a Compact committing between reading the compaction
	// point and the rows must not silently drop changes.
	err := s.snapshot(ctx, func(tx pgx.Tx) error {
		compacted, err := readState(ctx, tx, "compacted")
		if err != nil {
			return err
		}
		if since < compacted {
			return fmt.Errorf("the change log starts after revision %d: %w", compacted, errs.ErrGone)
		}
		q := `SELECT ` + changeColumns + ` FROM changes WHERE revision > $1 ORDER BY revision, seq`
		args := []any{since}
		if limit > 0 {
			q += ` LIMIT $2`
			args = append(args, limit+1)
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanChange)
		if err != nil {
			return err
		}
		if limit <= 0 || len(out) <= limit {
			return nil
		}
		split := out[limit].Object.Revision
		out = out[:limit]
		i := len(out)
		for i > 0 && out[i-1].Object.Revision == split {
			i--
		}
		if i > 0 {
			out = out[:i]
			return nil
		}
		rows, err = tx.Query(ctx, `SELECT `+changeColumns+` FROM changes WHERE revision = $1 ORDER BY seq`, split)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanChange)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("changes since revision %d: %w", since, err)
	}
	if out == nil {
		out = []store.Change{}
	}
	return out, nil
}

// Compact drops the change log up to and including before. before is capped
// at the current revision: compacting revisions that do not exist yet would
// make Changes from the current revision fail.
func (s *Store) Compact(ctx context.Context, before int64) error {
	fail := func(err error) error { return fmt.Errorf("compact changes up to revision %d: %w", before, err) }
	if before <= 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback(ctx)
	// A plain read, no lock: compaction must not hold up writers, and a
	// write still in flight has a revision above this one anyway.
	rev, err := readState(ctx, tx, "revision")
	if err != nil {
		return fail(err)
	}
	upTo := min(before, rev)
	if _, err := tx.Exec(ctx, `DELETE FROM changes WHERE revision <= $1`, upTo); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE store_state SET value = GREATEST(value, $1) WHERE name = 'compacted'`, upTo); err != nil {
		return fail(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(err)
	}
	return nil
}

// Notify returns a channel that receives the newest revision after each
// Write of any Store on this database. It is closed when ctx ends or the
// Store is closed.
func (s *Store) Notify(ctx context.Context) <-chan int64 {
	return s.n.Subscribe(ctx)
}

// SaveLastSeen records last-seen times. A time older than the one stored for
// a host is ignored (newer wins): replicas flush their own, possibly stale,
// view of the same hosts, and the latest heartbeat must win.
func (s *Store) SaveLastSeen(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	// The same order in every replica, so two concurrent flushes lock rows
	// in the same order and cannot deadlock.
	sort.Strings(keys)
	// Bounded statements; no transaction around them since the rows need not
	// change together.
	const perStmt = 5000
	for len(keys) > 0 {
		n := min(len(keys), perStmt)
		times := make([]time.Time, n)
		for i, k := range keys[:n] {
			times[i] = seen[k].UTC()
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO last_seen (host_key, seen_at)
			SELECT * FROM unnest($1::text[], $2::timestamptz[])
			ON CONFLICT (host_key) DO UPDATE SET seen_at = GREATEST(last_seen.seen_at, excluded.seen_at)`,
			keys[:n], times); err != nil {
			return fmt.Errorf("save last-seen times of %d hosts: %w", len(seen), err)
		}
		keys = keys[n:]
	}
	return nil
}

// LoadLastSeen returns every recorded last-seen time, in UTC.
func (s *Store) LoadLastSeen(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT host_key, seen_at FROM last_seen`)
	if err != nil {
		return nil, fmt.Errorf("load last-seen times: %w", err)
	}
	defer rows.Close()
	out := make(map[string]time.Time)
	for rows.Next() {
		var (
			k  string
			at time.Time
		)
		if err := rows.Scan(&k, &at); err != nil {
			return nil, fmt.Errorf("load last-seen times: %w", err)
		}
		out[k] = at.UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load last-seen times: %w", err)
	}
	return out, nil
}
