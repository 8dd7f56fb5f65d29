-- runservice SQLite schema: migration 8 (run inside the caller's transaction).
-- Time travel and fork: the run a fork was made from, and the latest time travel of a
-- run (JSON: target step, its input, how many time travels, the fork's step).

ALTER TABLE runs ADD COLUMN forked_from TEXT;
ALTER TABLE runs ADD COLUMN travel TEXT;
CREATE INDEX runs_by_forked_from ON runs (forked_from, created_at DESC, run_id DESC) WHERE forked_from IS NOT NULL;
