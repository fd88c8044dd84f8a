package store

import (
	"context"
	"time"
)

// Object is one stored object: the JSON document of an api/v1 object plus the
// columns the store indexes. The store owns Revision, CreatedAt and UpdatedAt;
// callers copy them into the document's metadata when they read it.
type Object struct {
	Kind    string
	Project string // "" for objects outside projects (projects, API tokens)
	Name    string
	// Key, when not empty, is unique among objects of the same Kind across all
	// projects (a host ID, a token ID): GetByKey finds the object by it.
	Key       string
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
	Data      []byte // JSON
}

// OpType is what an Op does.
type OpType int

const (
	OpCreate OpType = iota + 1
	OpUpdate
	OpDelete
)

func (t OpType) String() string {
	switch t {
	case OpCreate:
		return "create"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "unknown"
}

// Op is one write in a Write call.
type Op struct {
	Type OpType
	// Object identifies the object by Kind, Project and Name; for create and
	// update it also carries Key and Data.
	Object Object
	// ExpectRevision, for update and delete, is the revision the caller read:
	// if the stored object has another, the write fails with ErrConflict.
	// 0 writes whatever revision the object has (controllers that own a field).
	ExpectRevision int64
}

// ChangeType says what happened to an object.
type ChangeType int

const (
	Created ChangeType = iota + 1
	Updated
	Deleted
)

// Change is one entry of the change log: the object as it was after the
// write (for Deleted: as it was before, with the delete's revision).
type Change struct {
	Type   ChangeType
	Object Object
}

// ListOptions selects objects for List.
type ListOptions struct {
	Kind string
	// Project "" lists every project's objects of Kind.
	Project string
	// AfterName and Limit page through a large list ordered by project, name:
	// pass the last project/name seen. Limit 0 means no limit.
	AfterProject string
	AfterName    string
	Limit        int
}

// Store keeps every object of the hub. Implementations: SQLite (the embedded
// default) and PostgreSQL (several hub replicas). Every Write commits
// atomically and bumps one global, monotonic revision shared by all objects;
// all objects written by one Write get that same revision, and every write
// is appended to the change log in revision order.
//
// Errors wrap the sentinels of package errs: ErrNotFound, ErrAlreadyExists
// (same kind/project/name, or same kind/key), ErrConflict (ExpectRevision
// mismatch), ErrGone (Changes since a compacted revision).
type Store interface {
	Get(ctx context.Context, kind, project, name string) (Object, error)
	GetByKey(ctx context.Context, kind, key string) (Object, error)
	// List returns the selected objects ordered by project, name, and the
	// revision they were read at.
	List(ctx context.Context, opts ListOptions) ([]Object, int64, error)
	// Write applies ops atomically and returns the new revision and the
	// objects as written (for deletes: as they were, with the delete's
	// revision), in op order. An update replaces Key too: pass the key again.
	// Malformed ops (empty kind or name, bad JSON, NUL bytes) fail with
	// ErrInvalid.
	Write(ctx context.Context, ops ...Op) (int64, []Object, error)
	// Revision returns the newest committed revision.
	Revision(ctx context.Context) (int64, error)
	// Changes returns up to limit changes with revision > since, oldest
	// first. A page never ends inside a revision (a Write with more ops than
	// limit comes back whole), so resuming from the last revision seen loses
	// nothing. Limit <= 0 means no limit. It fails with ErrGone when since is
	// older than the log keeps.
	Changes(ctx context.Context, since int64, limit int) ([]Change, error)
	// Compact drops change-log entries with revision <= before.
	Compact(ctx context.Context, before int64) error
	// Notify returns a channel that receives the newest revision (best effort,
	// coalesced: a slow reader sees only the latest) whenever a write commits
	// anywhere: in this process, or for PostgreSQL in any replica. The channel
	// is closed when ctx ends.
	Notify(ctx context.Context) <-chan int64

	// SaveLastSeen records when hosts were last heard from. It is not a
	// revisioned write: heartbeats must not churn the change log.
	SaveLastSeen(ctx context.Context, seen map[string]time.Time) error
	// LoadLastSeen returns every recorded last-seen time by host key.
	LoadLastSeen(ctx context.Context) (map[string]time.Time, error)

	Close() error
}
