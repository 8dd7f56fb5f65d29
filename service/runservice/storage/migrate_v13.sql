-- runservice SQLite schema: version 12 -> 13 (run inside the caller's transaction).
-- A suspended run's wake_at is the earliest deadline of a nested workflow suspended inside it
-- (engine/deadlines.py): the claim loop takes the run then, so the nested workflow fails with
-- its timeout without waiting for a resume.
CREATE INDEX IF NOT EXISTS runs_wake_suspended ON runs (wake_at)
    WHERE status = 'suspended' AND wake_at IS NOT NULL;
