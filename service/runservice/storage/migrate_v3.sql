-- runservice SQLite schema: version 2 -> 3 (run inside the caller's transaction).
-- Adds the ListRuns indexes and the run_values table.
-- Idempotent: commits before run_values joined this script made a version 3 (and b8e41f5 a
-- version 4) with the indexes but no run_values; storage/sqlite.py runs it again on those to
-- complete them (an index migrate_v11.sql already made partial is kept as it is).
-- ListRuns indexes: one per combination of equality filters (workflow, resource, status),
-- each ending in the listing order (created_at, run_id), so every filtered page is an
-- index range read with no sort, whatever the size of the table (see schema.sql).

DROP INDEX IF EXISTS runs_by_status;
CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_resource ON runs (resource_id, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow_status ON runs (workflow_id, status, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow_resource ON runs (workflow_id, resource_id, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_resource_status ON runs (resource_id, status, created_at DESC, run_id DESC);
CREATE INDEX IF NOT EXISTS runs_by_workflow_resource_status
    ON runs (workflow_id, resource_id, status, created_at DESC, run_id DESC);

-- Large JSON values stored once per run (storage/values.py); older rows stay inline.
CREATE TABLE IF NOT EXISTS run_values (
    run_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, digest)
);
