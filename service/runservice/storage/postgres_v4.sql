-- runservice PostgreSQL schema, migration 4: versioned definitions.
--
-- definition_version, definition_digest: the workflow version a run started on and the
-- digest of that definition's step graph. Runs stored before: version '1' (the default
-- version of a workflow whose author gives none) and digest '' (unknown: any served
-- definition of version '1' may continue them).

ALTER TABLE runs
    ADD COLUMN definition_version text NOT NULL DEFAULT '1',
    ADD COLUMN definition_digest text NOT NULL DEFAULT '';

-- ListRuns filtered by a workflow's version (which versions do active runs still need).
CREATE INDEX runs_by_workflow_version ON runs (workflow_id, definition_version, created_at DESC, run_id DESC);
