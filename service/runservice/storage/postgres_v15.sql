-- runservice PostgreSQL schema, migration 15: deleted runs whose rows are still being removed.
--
-- A delete used to remove a run's rows in the writer's transaction, and a run with millions of
-- events held every other write of the replica for as long. Now a large run's delete removes its
-- runs row and records its id here; its steps, items, values, requests and events are removed
-- afterwards in chunks off the writer (storage/removal.py), then the id. While the id is here no
-- run is made under it and reads hide the rows under it (delete marks excepted), and a process
-- killed half-way leaves it here for the next one, or another replica, to go on.
-- events_below: the run's events at and above it are removed already (they go from the last
-- down, each chunk a range of sequences below it, which the planner reads by the index).
--
-- Only a table older code never reads: a server of an earlier version may serve the database
-- (schema_compatible). It does not remove leftovers; ids listed here keep theirs until a newer
-- server runs again (README, "Upgrading across schema version 15").
CREATE TABLE IF NOT EXISTS deleted_runs (
    run_id text PRIMARY KEY,
    deleted_at double precision NOT NULL,
    events_below bigint NOT NULL
);
-- The removal takes the oldest first (ORDER BY deleted_at LIMIT n): read from here, never a
-- sort of the whole table (a retention sweep of a large backlog may list many).
CREATE INDEX IF NOT EXISTS deleted_runs_by_deleted_at ON deleted_runs (deleted_at);
