-- runservice SQLite schema: version 6 -> 7 (run inside the caller's transaction).
-- deadline: when the run times out (seconds since the epoch), fixed at Start from the
-- workflow's and the caller's timeouts; NULL: never. The claim loop ends suspended runs
-- whose deadline passed; a driven run's owner arms a timer from it.

ALTER TABLE runs ADD COLUMN deadline REAL;
CREATE INDEX runs_overdue ON runs (deadline) WHERE status = 'suspended' AND deadline IS NOT NULL;
