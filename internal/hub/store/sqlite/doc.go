// Package sqlite is the embedded store.Store: one SQLite file, pure Go
// (modernc.org/sqlite, no cgo), the zero-set-up default for a single hub.
//
// The database runs in WAL mode so readers never wait for the writer. All
// writes go through one connection and one mutex: SQLite allows a single
// writer anyway, and serializing in Go avoids SQLITE_BUSY retries and keeps
// revisions, commits and Notify wake-ups in one order. Reads use a pool.
//
// Notify is in-process only: a second process writing the same file would not
// wake this one's watchers, so one file must have one hub. Several hub
// replicas need the PostgreSQL store.
//
// Migrations are embedded (migrations/NNNN_name.sql) and applied by Open in
// order; schema_migrations records which ran.
package sqlite
