-- runservice PostgreSQL schema, migration 6: time travel and fork.
--
-- forked_from: the run a fork (ForkRun) was made from. travel: the latest time travel of
-- a run (JSON as bytea, like the other documents: target step, its input, how many time
-- travels, the fork's step).

ALTER TABLE runs
    ADD COLUMN forked_from text,
    ADD COLUMN travel bytea;

-- ListRuns filtered by forked_from: a run's forks, newest first.
CREATE INDEX runs_by_forked_from ON runs (forked_from, created_at DESC, run_id DESC)
    WHERE forked_from IS NOT NULL;
