-- Times are INTEGER microseconds since the Unix epoch, UTC.

CREATE TABLE objects (
    kind       TEXT    NOT NULL,
    project    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    key        TEXT,             -- NULL when the object has no key
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (kind, project, name)
);

CREATE UNIQUE INDEX objects_kind_key ON objects (kind, key) WHERE key IS NOT NULL;

-- One row per op; the ops of one Write share its revision and keep their
-- order in seq.
CREATE TABLE changes (
    revision   INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    type       INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    project    TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    key        TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    data       TEXT    NOT NULL,
    PRIMARY KEY (revision, seq)
) WITHOUT ROWID;

-- 'revision': the newest committed revision. 'compacted': Changes since an
-- older revision than this fails with ErrGone.
CREATE TABLE store_state (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO store_state (name, value) VALUES ('revision', 0), ('compacted', 0);

CREATE TABLE last_seen (
    host_key TEXT    PRIMARY KEY,
    seen_at  INTEGER NOT NULL
) WITHOUT ROWID;
