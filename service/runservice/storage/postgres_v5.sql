-- runservice PostgreSQL schema, migration 5: run deadlines.
--
-- deadline: when the run times out (seconds since the epoch), fixed at Start from the
-- workflow's and the caller's timeouts; NULL: never. The claim loop ends suspended runs
-- whose deadline passed (by the database's clock); a driven run's owner arms a timer from it.

ALTER TABLE runs ADD COLUMN deadline double precision;

-- The claim loop looks for suspended runs past their deadline.
CREATE INDEX runs_overdue ON runs (deadline) WHERE status = 'suspended' AND deadline IS NOT NULL;
