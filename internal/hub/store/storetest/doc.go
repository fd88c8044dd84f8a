// Package storetest is the conformance suite every store.Store must pass:
// the SQLite and PostgreSQL stores run the same tests, so the hub can rely on
// the same behaviour from both (errors, revisions, the change log, Notify,
// atomic multi-op writes, optimistic concurrency).
//
// Where store.Store's comments leave a choice open, the suite pins the one
// both implementations make:
//   - a fresh store is at revision 0;
//   - Write with no ops writes nothing and returns the current revision;
//   - Write rejects an unknown op type, an empty kind or name, invalid JSON
//     data or a negative ExpectRevision with errs.ErrInvalid;
//   - update replaces Key too (an empty Key removes it);
//   - a deleted object, in Write's result and in its Deleted change, is the
//     object as it was with the delete's revision (UpdatedAt unchanged);
//   - Changes with limit <= 0 returns everything; a page never ends inside a
//     revision (it stops before, or holds the whole first revision when that
//     alone has more than limit changes);
//   - Compact caps before at the current revision, never lowers the
//     compaction point, and Changes(since) fails with errs.ErrGone for since
//     below it;
//   - SaveLastSeen keeps the newer time per host;
//   - times are UTC with microsecond precision.
package storetest
