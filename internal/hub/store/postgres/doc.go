// Package postgres is the store.Store for several hub replicas sharing one
// PostgreSQL database (pgx, pgxpool).
//
// Every Write starts by incrementing the one-row revision counter. The row
// lock that takes orders all writers: revisions commit in increasing order,
// so a watcher that has read every change up to revision N and then reads
// "revision > N" can never miss a lower revision that commits later (which a
// sequence would allow). It also makes the conflict and uniqueness checks
// inside a Write race-free.
//
// Notify works across replicas: each Write sends pg_notify on channel
// outpost_changes in its transaction (delivered on commit), and each Store
// keeps one connection LISTENing on it. When that connection is lost the
// Store reconnects and wakes its watchers with the current revision, since
// notifications sent meanwhile are gone.
//
// Migrations are embedded (migrations/NNNN_name.sql) and applied by Open in
// one transaction under an advisory lock, so replicas starting together
// apply them once.
package postgres
