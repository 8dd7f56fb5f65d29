-- runservice SQLite schema: version 2 -> 3 (run inside the caller's transaction).
-- Adds the ListRuns indexes and the run_values table.
-- ListRuns indexes: one per combination of equality filters (workflow, resource, status),
-- each ending in the listing order (created_at, run_id), so every filtered page is an
-- index range read with no sort, whatever the size of the table (see schema.sql).

DROP INDEX IF EXISTS runs_by_status;
CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX runs_by_resource ON runs (resource_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_workflow_status ON runs (workflow_id, status, created_at DESC, run_id DESC);
CREATE INDEX runs_by_workflow_resource ON runs (workflow_id, resource_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_resource_status ON runs (resource_id, status, created_at DESC, run_id DESC);
CREATE INDEX runs_by_workflow_resource_status
    ON runs (workflow_id, resource_id, status, created_at DESC, run_id DESC);

-- Large JSON values stored once per run (storage/values.py); older rows stay inline.
CREATE TABLE run_values (
    run_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, digest)
);
