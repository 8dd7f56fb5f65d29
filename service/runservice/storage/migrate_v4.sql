-- runservice SQLite schema: version 3 -> 4 (run inside the caller's transaction).
-- Leases: the replica that owns an active run, the epoch fencing its commits, the lease's
-- end, and a cancel requested through another replica (see schema.sql).

ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_expires_at REAL;
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_owner ON runs (owner) WHERE owner IS NOT NULL;
