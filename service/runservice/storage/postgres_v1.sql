-- runservice PostgreSQL schema, migration 1 (applied in its own transaction under the
-- migration advisory lock; recorded in schema_migrations).
--
-- JSON documents are bytea holding orjson output: the store never queries inside them,
-- so jsonb's server-side parse and re-encoding on every write (and its text round trip
-- through the driver) would be pure cost. Measured on an event-sized document, 10,000
-- rows inserted 50 per unnest statement: ~5 us of server CPU per row as bytea, ~10 us
-- as jsonb (a run writes ~12 such documents); reading back costs the same either way.
-- SQL NULL means Python None.
--
-- Leases (owner, epoch, expiry) come in a later migration as columns of `runs`: the
-- table keeps a fillfactor below 100 so the frequent per-step updates of a run row stay
-- HOT (no index touched), as they will when those columns are added.

CREATE TABLE runs (
    run_id text PRIMARY KEY,
    workflow_id text NOT NULL,
    resource_id text,
    status text NOT NULL,
    input bytea,
    state bytea,
    request_context bytea,
    result bytea,
    error bytea,
    suspended bytea,
    resume_labels bytea,
    started_at double precision,
    ended_at double precision,
    wake_at double precision,
    trace_id text NOT NULL DEFAULT '',
    -- Sequence of the run's last event; appends allocate from here inside the writing
    -- transaction (under the row lock), so sequences are gap-free and commit in order.
    last_seq bigint NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
) WITH (fillfactor = 85);

-- Listing is newest first with keyset paging on (created_at, run_id).
CREATE INDEX runs_by_workflow ON runs (workflow_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_time ON runs (created_at DESC, run_id DESC);
-- Recovery looks runs up by status.
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE steps (
    run_id text NOT NULL,
    path_key text NOT NULL,
    position integer NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (run_id, path_key)
);

CREATE TABLE events (
    run_id text NOT NULL,
    seq bigint NOT NULL,
    time double precision NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE requests (
    run_id text NOT NULL,
    kind text NOT NULL,
    request_id text NOT NULL,
    PRIMARY KEY (run_id, kind, request_id)
);
