-- COLLATE "C": byte order, the same as SQLite's, whatever the database's
-- locale, so List pages the same way on both stores.
CREATE TABLE objects (
    kind       text COLLATE "C" NOT NULL,
    project    text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    key        text COLLATE "C",      -- NULL when the object has no key
    revision   bigint           NOT NULL,
    created_at timestamptz      NOT NULL,
    updated_at timestamptz      NOT NULL,
    data       jsonb            NOT NULL,
    PRIMARY KEY (kind, project, name)
);

CREATE UNIQUE INDEX objects_kind_key ON objects (kind, key) WHERE key IS NOT NULL;

-- One row per op; the ops of one Write share its revision and keep their
-- order in seq.
CREATE TABLE changes (
    revision   bigint      NOT NULL,
    seq        integer     NOT NULL,
    type       smallint    NOT NULL,
    kind       text        NOT NULL,
    project    text        NOT NULL,
    name       text        NOT NULL,
    key        text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    data       jsonb       NOT NULL,
    PRIMARY KEY (revision, seq)
);

-- 'revision' is the global revision counter: every Write increments it with
-- UPDATE ... RETURNING as its first statement, so the row lock orders the
-- writers and revisions commit in increasing order (a sequence would hand out
-- numbers that can commit out of order, and a watcher reading "revision >
-- since" could skip one). 'compacted' is its own row so Compact does not
-- block writers on that lock.
CREATE TABLE store_state (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);

INSERT INTO store_state (name, value) VALUES ('revision', 0), ('compacted', 0);

CREATE TABLE last_seen (
    host_key text        PRIMARY KEY,
    seen_at  timestamptz NOT NULL
);
