-- runservice SQLite schema: version 11 -> 12 (run inside the caller's transaction).
-- The first outcome of each TriggerSchedule that carried a request id, so a retry returns it
-- and fires nothing (see storage/schedules.py). Kept when the run is deleted.
-- outcome: started, skipped or buffered; tick: when it fired (seconds since the epoch);
-- run_id: the run it started; active_run_id: the run that made it skip or buffer.
CREATE TABLE IF NOT EXISTS schedule_triggers (
    schedule_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    tick REAL NOT NULL,
    run_id TEXT,
    active_run_id TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (schedule_id, request_id)
);
