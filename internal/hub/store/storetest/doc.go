// Package storetest is the conformance suite every store.Store must pass:
// the SQLite and PostgreSQL stores run the same tests, so the hub can rely on
// the same behaviour from both (errors, revisions, the change log, Notify,
// atomic multi-op writes, optimistic concurrency).
//
// Where store.Store's comments leave a choice open, the suite pins the one
// both implementations make:
//   - a fresh store is at revision 0; each successful Write advances it by
//     exactly one and a failed one not at all;
//   - Write with no ops writes nothing and returns the current revision;
//   - Write rejects an unknown op type, an empty kind or name, invalid JSON
//     data, a negative ExpectRevision, and what PostgreSQL cannot store
//     (NUL or invalid UTF-8 in kind/project/name/key, \u0000 in data) with
//     errs.ErrInvalid, before touching the database;
//   - GetByKey with an empty key is errs.ErrNotFound;
//   - List with Project set pages by AfterName alone (AfterProject "" means
//     Project);
//   - update replaces Key too (an empty Key removes it);
//   - a deleted object, in Write's result and in its Deleted change, is the
//     object as it was with the delete's revision (UpdatedAt unchanged);
//   - Changes with limit <= 0 returns everything; a page never ends inside a
//     revision (it stops before, or holds the whole first revision when that
//     alone has more than limit changes);
//   - Compact caps before at the current revision, never lowers the
//     compaction point, and Changes(since) fails with errs.ErrGone for since
//     below it;
//   - Notify channels start empty (subscribe, then read the state) and are
//     also closed when the store is closed;
//   - SaveLastSeen keeps the newer time per host;
//   - times are UTC with microsecond precision;
//   - Data comes back as equivalent JSON, not necessarily the same bytes
//     (PostgreSQL's jsonb reorders keys and drops whitespace), so the suite
//     compares it as JSON.
//
// The suite also checks that errors name the object (`Thing "p1/a"`), and
// runs writers concurrently: unique revisions and no lost updates under
// optimistic concurrency.
package storetest
