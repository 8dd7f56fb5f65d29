-- runservice SQLite schema: version 19 -> 20 (run inside the caller's transaction).
-- `woken_epoch`: set by `wake_bounded` to the run's lease epoch when the run, `waiting` and its
-- sleep ended, found its workflow's shared `max_active_runs` taken (its owner holds room of its own
-- for it meanwhile). While the run is still `waiting` under that epoch with a live owner,
-- `claim_bounded` counts it as holding room, and `wake_bounded` lets such runs go on in the order
-- their sleeps ended (audit D3; the bound is shared only by servers on one database, which SQLite
-- has only in tests: postgres_v18.sql tells why). Going on clears it; a claim by another owner
-- (a new epoch) voids it. The index holds only the marked runs still waiting. Only what older code
-- never reads (schema_compatible): an older server serves the database.
ALTER TABLE runs ADD COLUMN woken_epoch INTEGER;
CREATE INDEX runs_woken ON runs (workflow_id) WHERE status = 'waiting' AND woken_epoch IS NOT NULL;
