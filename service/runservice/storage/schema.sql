-- runservice SQLite schema, version 4 (PRAGMA user_version); migrate_vN.sql makes change N.
-- Applied migrations are recorded in schema_migrations (see storage/sqlite.py, _migrate).
-- JSON columns hold compact json.dumps text; SQL NULL means Python None.

-- owner, epoch, lease_expires_at: ownership of an active run (see storage.Lease): the
-- replica driving it, the epoch that fences its commits, and when its lease ends unless
-- renewed. SQLite has one process (the lock file), which voids every lease at open.
-- cancel_requested: a Cancel reached a replica that does not drive the run.
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    resource_id TEXT,
    status TEXT NOT NULL,
    input TEXT,
    state TEXT,
    request_context TEXT,
    result TEXT,
    error TEXT,
    suspended TEXT,
    resume_labels TEXT,
    started_at REAL,
    ended_at REAL,
    wake_at REAL,
    trace_id TEXT NOT NULL DEFAULT '',
    -- Sequence of the run's last event; appends allocate from here inside the
    -- writing transaction, so sequences are gap-free and commit in order.
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    owner TEXT,
    epoch INTEGER NOT NULL DEFAULT 0,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

-- Listing is newest first with keyset paging on (created_at, run_id). One index per
-- combination of equality filters (workflow, resource, status), each ending in that order:
-- every ListRuns page is a range read of one index (the store names it with INDEXED BY),
-- never a scan and sort, at any table size. A list of statuses is one range per status,
-- merged. Boot recovery looks runs up by status too.
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow_id, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_resource ON runs (resource_id, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow_status ON runs (workflow_id, status, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow_resource
    ON runs (workflow_id, resource_id, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_resource_status ON runs (resource_id, status, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow_resource_status
    ON runs (workflow_id, resource_id, status, created_at DESC, run_id DESC);

-- Heartbeats renew every lease of one owner; only owned (active) runs are in this index.
CREATE INDEX IF NOT EXISTS runs_by_owner ON runs (owner) WHERE owner IS NOT NULL;

-- Steps and events are rowid tables: a new row lands at the right edge of the table
-- and only the small (run_id, key) index entry goes to a random place. Clustered on
-- (random) run ids instead, every commit rewrote many pages full of large rows: about
-- twice the WAL written per commit, measured (see BENCHMARKS.md).
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL,
    path_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, path_key)
);

CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE IF NOT EXISTS requests (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, request_id)
) WITHOUT ROWID;

-- Large JSON values (input, step payloads and outputs, event data) stored once per run and
-- referenced from run columns, step records and events (see storage/values.py).
CREATE TABLE IF NOT EXISTS run_values (
    run_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, digest)
);
