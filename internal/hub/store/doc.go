// Package store is the hub's persistence: one Store interface over a
// revisioned object table and its change log, implemented on SQLite
// (embedded, pure Go, the zero-set-up default) and PostgreSQL (for several
// hub replicas). Migrations are embedded and run by Open. A conformance suite
// (storetest) runs against both.
package store
