-- runservice SQLite schema: version 4 -> 5 (run inside the caller's transaction).
-- Cron schedules and the record of their fired ticks (see storage/schedules.py).

-- One row per declared schedule: its definition (from code or configuration, rewritten at
-- every boot), its paused flag (set through the API, kept across boots) and where it
-- stands. next_tick, last_tick, pending_tick: seconds since the epoch; pending_tick is the
-- tick `buffer_one` keeps until the active run ends; last_run_id: the last run it started.
CREATE TABLE IF NOT EXISTS schedules (
    schedule_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    input TEXT,
    resource_id TEXT,
    overlap TEXT NOT NULL,
    missed TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    paused INTEGER NOT NULL DEFAULT 0,
    next_tick REAL,
    last_tick REAL,
    pending_tick REAL,
    last_run_id TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- Every tick fired (a run started) or skipped (overlap policy), once: the primary key is
-- the claim. kind: cron, missed, buffered or trigger. Kept when the run is deleted, so a
-- deleted run's tick never fires again. run_id finds the schedule and tick of a run.
CREATE TABLE IF NOT EXISTS schedule_ticks (
    schedule_id TEXT NOT NULL,
    tick REAL NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT,
    fired_at REAL NOT NULL,
    PRIMARY KEY (schedule_id, tick)
);
CREATE UNIQUE INDEX IF NOT EXISTS schedule_ticks_by_run ON schedule_ticks (run_id) WHERE run_id IS NOT NULL;
