-- runservice SQLite schema: version 10 -> 11 (run inside the caller's transaction; numbers 5-10
-- belong to other changes and may be absent).
-- The four ListRuns indexes that start with or contain resource_id hold only runs that have
-- a resource id. A listing by resource always has `resource_id = ?`, which implies
-- `resource_id IS NOT NULL`, so each page is still a range read of the same index; a run
-- without a resource id (most runs) no longer costs four index entries when it is created
-- and two more index updates on every status change.

DROP INDEX runs_by_resource;
CREATE INDEX runs_by_resource ON runs (resource_id, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
DROP INDEX runs_by_workflow_resource;
CREATE INDEX runs_by_workflow_resource ON runs (workflow_id, resource_id, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
DROP INDEX runs_by_resource_status;
CREATE INDEX runs_by_resource_status ON runs (resource_id, status, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
DROP INDEX runs_by_workflow_resource_status;
CREATE INDEX runs_by_workflow_resource_status
    ON runs (workflow_id, resource_id, status, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
