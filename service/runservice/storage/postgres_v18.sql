-- runservice PostgreSQL schema, migration 18: woken runs waiting for room of a bound the replicas share.
--
-- `woken_epoch`: set by `wake_bounded` to the run's lease epoch when the run, `waiting` and its
-- sleep ended, found its workflow's shared `max_active_runs` taken (its owner holds room of its own
-- for it meanwhile). While the run is still `waiting` under that epoch with a live owner,
-- `claim_bounded` counts it as holding room, and `wake_bounded` lets such runs go on in the order
-- their sleeps ended: counting only driven runs, the claim loops of the other replicas took the
-- room for waiting Starts each time a drive ended, and the woken run waited for as long as they
-- kept coming (audit D3). Going on clears it; a claim by another owner (a new epoch) voids it.
--
-- The index holds only the marked runs still `waiting`: the count reads those few, not every
-- sleeping run of the workflow. Only what older code never reads: a server of an earlier version
-- may serve the database (schema_compatible); it neither sets nor counts the mark.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS woken_epoch bigint;
CREATE INDEX IF NOT EXISTS runs_woken ON runs (workflow_id)
    WHERE status = 'waiting' AND woken_epoch IS NOT NULL;
