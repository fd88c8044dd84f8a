package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outpost-edge/outpost/internal/errs"
	"github.com/outpost-edge/outpost/internal/hub/store"
	"github.com/outpost-edge/outpost/internal/hub/store/storeutil"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Store is the SQLite store.Store. Safe for concurrent use.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers; the same as w for an in-memory database

	// wmu serializes writes in Go so a Write never waits in SQLite's busy
	// handler and publishes its revision before the next Write commits.
	wmu sync.Mutex
	n   *storeutil.Notifier

	// Statements of Get and Write, by query, prepared once: parsing the SQL
	// is about a third of a write's cost. Read-only after Open.
	rstmts, wstmts map[string]*sql.Stmt
}

var _ store.Store = (*Store)(nil)

// busyTimeout bounds how long a connection waits for a lock held by another
// process opening the same file (a second Open, a backup tool).
const busyTimeout = 10 * time.Second

// Open opens (creating if needed) the database file at path and brings its
// schema up to date. path ":memory:" is a private in-memory database, for
// tests.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite store %q: path must be a plain file name: %w", path, errs.ErrInvalid)
	}
	// synchronous=NORMAL is the usual WAL setting: the database stays
	// consistent on power loss but may lose the last commits; FULL would
	// fsync the WAL on every commit.
	params := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)",
		busyTimeout.Milliseconds())
	s := &Store{n: storeutil.NewNotifier()}
	var err error
	if path == ":memory:" {
		// Every connection to :memory: is its own database, so readers and
		// the writer share the one connection.
		s.w, err = sql.Open("sqlite", path+"?"+params+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
		}
		// The database lives as long as its connection: never let the pool
		// close it.
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxIdleTime(0)
		s.w.SetConnMaxLifetime(0)
		s.r = s.w
	} else {
		params += "&_pragma=journal_mode(WAL)"
		// BEGIN IMMEDIATE: take the write lock when the transaction starts,
		// not at its first write, so a writer never has to upgrade a read
		// lock and fail with SQLITE_BUSY halfway through.
		s.w, err = sql.Open("sqlite", path+"?"+params+"&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
		}
		s.w.SetMaxOpenConns(1)
		s.w.SetMaxIdleConns(1)
		s.w.SetConnMaxIdleTime(0)
		s.w.SetConnMaxLifetime(0)
		s.r, err = sql.Open("sqlite", path+"?"+params+"&_pragma=query_only(1)")
		if err != nil {
			s.w.Close()
			return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
		}
		s.r.SetMaxOpenConns(8)
		s.r.SetMaxIdleConns(8)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	return s, nil
}

// Write statements are prepared on the writer and run in a transaction with
// writeTx; read statements on the readers.
const (
	qGet        = `SELECT ` + objectColumns + ` FROM objects WHERE kind = ? AND project = ? AND name = ?`
	qGetByKey   = `SELECT ` + objectColumns + ` FROM objects WHERE kind = ? AND key = ?`
	qBump       = `UPDATE store_state SET value = value + 1 WHERE name = 'revision' RETURNING value`
	qExists     = `SELECT 1 FROM objects WHERE kind = ? AND project = ? AND name = ?`
	qKeyHolder  = `SELECT project, name FROM objects WHERE kind = ? AND key = ? AND NOT (project = ? AND name = ?)`
	qInsert     = `INSERT INTO objects (` + objectColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	qRevCreated = `SELECT revision, created_at FROM objects WHERE kind = ? AND project = ? AND name = ?`
	qUpdate     = `UPDATE objects SET key = ?, revision = ?, updated_at = ?, data = ? WHERE kind = ? AND project = ? AND name = ?`
	qDelete     = `DELETE FROM objects WHERE kind = ? AND project = ? AND name = ?`
	qAppend     = `INSERT INTO changes (revision, seq, type, kind, project, name, key, created_at, updated_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func (s *Store) prepare(ctx context.Context) error {
	prep := func(db *sql.DB, qs ...string) (map[string]*sql.Stmt, error) {
		m := make(map[string]*sql.Stmt)
		for _, q := range qs {
			st, err := db.PrepareContext(ctx, q)
			if err != nil {
				return m, fmt.Errorf("prepare %q: %w", q, err)
			}
			m[q] = st
		}
		return m, nil
	}
	var err error
	if s.rstmts, err = prep(s.r, qGet, qGetByKey); err != nil {
		return err
	}
	// Prepared now, outside any transaction: once a Write holds the single
	// writer connection, preparing on the pool would wait for it forever.
	s.wstmts, err = prep(s.w, qGet, qBump, qExists, qKeyHolder, qInsert, qRevCreated, qUpdate, qDelete, qAppend)
	return err
}

// writeTx runs prepared statements in a write transaction.
type writeTx struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (w writeTx) queryRow(q string, args ...any) *sql.Row {
	return w.tx.StmtContext(w.ctx, w.stmts[q]).QueryRowContext(w.ctx, args...)
}

func (w writeTx) exec(q string, args ...any) error {
	_, err := w.tx.StmtContext(w.ctx, w.stmts[q]).ExecContext(w.ctx, args...)
	return err
}

// Close closes the database and every Notify channel.
func (s *Store) Close() error {
	s.n.Close()
	for _, m := range []map[string]*sql.Stmt{s.rstmts, s.wstmts} {
		for _, st := range m {
			st.Close()
		}
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// ident names an object in errors the way users write it: project/name.
func ident(project, name string) string {
	if project == "" {
		return name
	}
	return project + "/" + name
}

const objectColumns = `kind, project, name, key, revision, created_at, updated_at, data`

type scanner interface{ Scan(...any) error }

func scanObject(sc scanner) (store.Object, error) {
	var (
		o                store.Object
		key              sql.NullString
		created, updated int64
		data             []byte
	)
	if err := sc.Scan(&o.Kind, &o.Project, &o.Name, &key, &o.Revision, &created, &updated, &data); err != nil {
		return store.Object{}, err
	}
	o.Key = key.String
	o.CreatedAt = time.UnixMicro(created).UTC()
	o.UpdatedAt = time.UnixMicro(updated).UTC()
	o.Data = data
	return o, nil
}

// nullKey stores "no key" as NULL so the unique index ignores it.
func nullKey(k string) sql.NullString { return sql.NullString{String: k, Valid: k != ""} }

// Get returns one object.
func (s *Store) Get(ctx context.Context, kind, project, name string) (store.Object, error) {
	row := s.rstmts[qGet].QueryRowContext(ctx, kind, project, name)
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
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
	row := s.rstmts[qGetByKey].QueryRowContext(ctx, kind, key)
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Object{}, fmt.Errorf("get %s with key %q: %w", kind, key, errs.ErrNotFound)
	}
	if err != nil {
		return store.Object{}, fmt.Errorf("get %s with key %q: %w", kind, key, err)
	}
	return o, nil
}

// List returns the selected objects and the revision they were read at, from
// one snapshot.
func (s *Store) List(ctx context.Context, opts store.ListOptions) ([]store.Object, int64, error) {
	q := `SELECT ` + objectColumns + ` FROM objects WHERE kind = ?`
	args := []any{opts.Kind}
	if opts.Project != "" {
		q += ` AND project = ?`
		args = append(args, opts.Project)
	}
	if opts.AfterProject != "" || opts.AfterName != "" {
		after := opts.AfterProject
		if after == "" {
			// A caller listing one project pages by name alone.
			after = opts.Project
		}
		q += ` AND (project, name) > (?, ?)`
		args = append(args, after, opts.AfterName)
	}
	q += ` ORDER BY project, name`
	if opts.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, opts.Limit)
	}

	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", opts.Kind, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", opts.Kind, err)
	}
	defer rows.Close()
	out := []store.Object{}
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list %s: %w", opts.Kind, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", opts.Kind, err)
	}
	// Read in the same transaction as the rows: the WAL snapshot makes the
	// revision exactly the one the list reflects.
	rev, err := readState(ctx, tx, "revision")
	if err != nil {
		return nil, 0, fmt.Errorf("list %s: %w", opts.Kind, err)
	}
	return out, rev, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readState(ctx context.Context, q querier, name string) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `SELECT value FROM store_state WHERE name = ?`, name).Scan(&v)
	return v, err
}

// Revision returns the newest committed revision.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	rev, err := readState(ctx, s.r, "revision")
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("write: %w", err)
	}
	defer tx.Rollback()
	w := writeTx{ctx: ctx, tx: tx, stmts: s.wstmts}
	var rev int64
	if err := w.queryRow(qBump).Scan(&rev); err != nil {
		return 0, nil, fmt.Errorf("write: bump revision: %w", err)
	}
	// Microseconds: the precision PostgreSQL keeps, so both stores return
	// the same times they were given.
	now := time.Now().UTC().Truncate(time.Microsecond)
	out := make([]store.Object, len(ops))
	for i, op := range ops {
		o, err := apply(w, rev, i, now, op)
		if err != nil {
			return 0, nil, err
		}
		out[i] = o
	}
	if err := tx.Commit(); err != nil {
		return 0, nil, fmt.Errorf("write: commit: %w", err)
	}
	// Still under wmu: wake-ups go out in commit order.
	s.n.Publish(rev)
	return rev, out, nil
}

func apply(w writeTx, rev int64, seq int, now time.Time, op store.Op) (store.Object, error) {
	o := op.Object
	id := ident(o.Project, o.Name)
	verb := op.Type.String()
	fail := func(err error) (store.Object, error) {
		return store.Object{}, fmt.Errorf("%s %s %q: %w", verb, o.Kind, id, err)
	}

	var change store.ChangeType
	switch op.Type {
	case store.OpCreate:
		var one int
		err := w.queryRow(qExists, o.Kind, o.Project, o.Name).Scan(&one)
		if err == nil {
			return fail(errs.ErrAlreadyExists)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fail(err)
		}
		if err := checkKeyFree(w, o); err != nil {
			return fail(err)
		}
		o.Revision, o.CreatedAt, o.UpdatedAt = rev, now, now
		if err := w.exec(qInsert, o.Kind, o.Project, o.Name, nullKey(o.Key), rev, now.UnixMicro(), now.UnixMicro(), string(o.Data)); err != nil {
			return fail(err)
		}
		change = store.Created

	case store.OpUpdate:
		var cur, created int64
		err := w.queryRow(qRevCreated, o.Kind, o.Project, o.Name).Scan(&cur, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fail(errs.ErrNotFound)
		}
		if err != nil {
			return fail(err)
		}
		if op.ExpectRevision != 0 && op.ExpectRevision != cur {
			return fail(conflict(cur, op.ExpectRevision))
		}
		if err := checkKeyFree(w, o); err != nil {
			return fail(err)
		}
		o.Revision, o.CreatedAt, o.UpdatedAt = rev, time.UnixMicro(created).UTC(), now
		if err := w.exec(qUpdate, nullKey(o.Key), rev, now.UnixMicro(), string(o.Data), o.Kind, o.Project, o.Name); err != nil {
			return fail(err)
		}
		change = store.Updated

	case store.OpDelete:
		old, err := scanObject(w.queryRow(qGet, o.Kind, o.Project, o.Name))
		if errors.Is(err, sql.ErrNoRows) {
			return fail(errs.ErrNotFound)
		}
		if err != nil {
			return fail(err)
		}
		if op.ExpectRevision != 0 && op.ExpectRevision != old.Revision {
			return fail(conflict(old.Revision, op.ExpectRevision))
		}
		if err := w.exec(qDelete, o.Kind, o.Project, o.Name); err != nil {
			return fail(err)
		}
		o = old
		o.Revision = rev
		change = store.Deleted
	}

	if err := w.exec(qAppend, rev, seq, int(change), o.Kind, o.Project, o.Name, nullKey(o.Key),
		o.CreatedAt.UnixMicro(), o.UpdatedAt.UnixMicro(), string(o.Data)); err != nil {
		return fail(fmt.Errorf("append change: %w", err))
	}
	return o, nil
}

func conflict(cur, expected int64) error {
	return fmt.Errorf("%w (revision is %d, expected %d)", errs.ErrConflict, cur, expected)
}

// checkKeyFree fails when another object of o's kind already has o's key.
// The unique index would catch it too, but not say which object holds it.
func checkKeyFree(w writeTx, o store.Object) error {
	if o.Key == "" {
		return nil
	}
	var project, name string
	err := w.queryRow(qKeyHolder, o.Kind, o.Key, o.Project, o.Name).Scan(&project, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("key %q is used by %q: %w", o.Key, ident(project, name), errs.ErrAlreadyExists)
}

const changeColumns = `revision, type, kind, project, name, key, created_at, updated_at, data`

func scanChange(sc scanner) (store.Change, error) {
	var (
		c                store.Change
		typ              int
		key              sql.NullString
		created, updated int64
		data             []byte
	)
	o := &c.Object
	if err := sc.Scan(&o.Revision, &typ, &o.Kind, &o.Project, &o.Name, &key, &created, &updated, &data); err != nil {
		return store.Change{}, err
	}
	c.Type = store.ChangeType(typ)
	o.Key = key.String
	o.CreatedAt = time.UnixMicro(created).UTC()
	o.UpdatedAt = time.UnixMicro(updated).UTC()
	o.Data = data
	return c, nil
}

// Changes returns changes after since, oldest first. limit <= 0 means no
// limit. A page never ends inside a revision, since a watcher resumes from
// the last revision it saw and would skip the rest of a split one: the page
// stops before such a revision, or, when the first revision alone has more
// than limit changes, holds that whole revision.
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]store.Change, error) {
	fail := func(err error) ([]store.Change, error) {
		return nil, fmt.Errorf("changes since revision %d: %w", since, err)
	}
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	compacted, err := readState(ctx, tx, "compacted")
	if err != nil {
		return fail(err)
	}
	if since < compacted {
		return fail(fmt.Errorf("the change log starts after revision %d: %w", compacted, errs.ErrGone))
	}
	q := `SELECT ` + changeColumns + ` FROM changes WHERE revision > ? ORDER BY revision, seq`
	args := []any{since}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit+1)
	}
	out, err := queryChanges(ctx, tx, q, args...)
	if err != nil {
		return fail(err)
	}
	if limit <= 0 || len(out) <= limit {
		return out, nil
	}
	split := out[limit].Object.Revision
	out = out[:limit]
	i := len(out)
	for i > 0 && out[i-1].Object.Revision == split {
		i--
	}
	if i > 0 {
		return out[:i], nil
	}
	out, err = queryChanges(ctx, tx, `SELECT `+changeColumns+` FROM changes WHERE revision = ? ORDER BY seq`, split)
	if err != nil {
		return fail(err)
	}
	return out, nil
}

func queryChanges(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]store.Change, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Change{}
	for rows.Next() {
		c, err := scanChange(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Compact drops the change log up to and including before. before is capped
// at the current revision: compacting revisions that do not exist yet would
// make Changes from the current revision fail.
func (s *Store) Compact(ctx context.Context, before int64) error {
	fail := func(err error) error { return fmt.Errorf("compact changes up to revision %d: %w", before, err) }
	if before <= 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	rev, err := readState(ctx, tx, "revision")
	if err != nil {
		return fail(err)
	}
	upTo := min(before, rev)
	if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE revision <= ?`, upTo); err != nil {
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE store_state SET value = max(value, ?) WHERE name = 'compacted'`, upTo); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// Notify returns a channel that receives the newest revision after each
// Write of this Store. It is closed when ctx ends or the Store is closed.
func (s *Store) Notify(ctx context.Context) <-chan int64 {
	return s.n.Subscribe(ctx)
}

// SaveLastSeen records last-seen times. A time older than the one stored for
// a host is ignored (newer wins), so a late flush of stale times can never
// make a host look longer gone than it is.
func (s *Store) SaveLastSeen(ctx context.Context, seen map[string]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	fail := func(err error) error { return fmt.Errorf("save last-seen times of %d hosts: %w", len(seen), err) }
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	// Many rows per statement: a hub flushes thousands of hosts at once,
	// and each statement costs a parse and a VM run.
	const perStmt = 200
	for len(keys) > 0 {
		n := min(len(keys), perStmt)
		var b strings.Builder
		b.WriteString(`INSERT INTO last_seen (host_key, seen_at) VALUES `)
		args := make([]any, 0, 2*n)
		for i, k := range keys[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?)")
			args = append(args, k, seen[k].UnixMicro())
		}
		b.WriteString(` ON CONFLICT (host_key) DO UPDATE SET seen_at = max(seen_at, excluded.seen_at)`)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fail(err)
		}
		keys = keys[n:]
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// LoadLastSeen returns every recorded last-seen time, in UTC.
func (s *Store) LoadLastSeen(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT host_key, seen_at FROM last_seen`)
	if err != nil {
		return nil, fmt.Errorf("load last-seen times: %w", err)
	}
	defer rows.Close()
	out := make(map[string]time.Time)
	for rows.Next() {
		var (
			k  string
			at int64
		)
		if err := rows.Scan(&k, &at); err != nil {
			return nil, fmt.Errorf("load last-seen times: %w", err)
		}
		out[k] = time.UnixMicro(at).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load last-seen times: %w", err)
	}
	return out, nil
}
