-- runservice SQLite schema: version 16 -> 17 (run inside the caller's transaction).
-- Deleted runs whose rows are still being removed. A delete used to remove a run's rows in the
-- writer's transaction, on the event loop: a run with a million events stood the whole server
-- still for seconds. Now a large run's delete removes its runs row and records its id here; its
-- steps, items, values, requests and events are removed afterwards in small batches of the
-- writer, between other writes (storage/removal.py), then the id. While the id is here no run is
-- made under it and reads hide the rows under it (delete marks excepted); a process stopped
-- half-way leaves it here for the next one to go on. events_below: the run's events at and above
-- it are removed already (they go from the last down, a range of sequences per chunk). Only a
-- table older code never reads (schema_compatible): an older server serves the database, without
-- removing leftovers.
CREATE TABLE IF NOT EXISTS deleted_runs (
    run_id TEXT PRIMARY KEY,
    deleted_at REAL NOT NULL,
    events_below INTEGER NOT NULL
) WITHOUT ROWID;
-- The removal takes the oldest first (ORDER BY deleted_at LIMIT n): read from here, never a
-- sort of the whole table (a retention sweep of a large backlog may list many).
CREATE INDEX IF NOT EXISTS deleted_runs_by_deleted_at ON deleted_runs (deleted_at);
