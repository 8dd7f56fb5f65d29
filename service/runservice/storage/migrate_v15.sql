-- runservice SQLite schema: version 14 -> 15 (run inside the caller's transaction).
-- A DeleteRun with a request id keeps its request row once the run is gone, so a retry of
-- it succeeds (engine.delete_run). Nothing removed those rows: every delete by a client left
-- one for ever. deleted_at says when the run was deleted, and the sweep forgets marks older
-- than a day (engine/retention.py); marks made before this version count from now. Other
-- requests leave it NULL: they go with their run.
ALTER TABLE requests ADD COLUMN deleted_at REAL;
UPDATE requests SET deleted_at = (julianday('now') - 2440587.5) * 86400.0 WHERE kind = 'delete';
CREATE INDEX IF NOT EXISTS requests_deleted ON requests (deleted_at) WHERE kind = 'delete';
