-- runservice PostgreSQL schema, migration 9 (3-8 belong to other changes and may be absent).
-- The ListRuns indexes that contain resource_id hold only runs that have a resource id. A
-- listing by resource always has `resource_id = $n`, which implies `resource_id IS NOT NULL`,
-- so the planner still reads the same index; a run without a resource id (most runs) no
-- longer costs three index entries when it is created and two more on each status change.

DROP INDEX runs_by_resource;
CREATE INDEX runs_by_resource ON runs (resource_id, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
DROP INDEX runs_by_workflow_resource;
CREATE INDEX runs_by_workflow_resource ON runs (workflow_id, resource_id, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
DROP INDEX runs_by_resource_status;
CREATE INDEX runs_by_resource_status ON runs (resource_id, status, created_at DESC, run_id DESC)
    WHERE resource_id IS NOT NULL;
