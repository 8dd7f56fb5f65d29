-- runservice PostgreSQL schema, migration 13: when a deleted run's request mark was made.
--
-- A DeleteRun with a request id keeps its request row once the run is gone, so a retry of
-- it succeeds (engine.delete_run). Nothing removed those rows: every delete by a client left
-- one for ever. deleted_at says when the run was deleted, and the sweep forgets marks older
-- than a day (engine/retention.py); marks made before this migration count from now. Other
-- requests leave it NULL: they go with their run.
ALTER TABLE requests ADD COLUMN IF NOT EXISTS deleted_at double precision;
UPDATE requests SET deleted_at = extract(epoch from now()) WHERE kind = 'delete' AND deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS requests_deleted ON requests (deleted_at) WHERE kind = 'delete';
