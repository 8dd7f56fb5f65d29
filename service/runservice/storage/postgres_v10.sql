-- runservice PostgreSQL schema, version 10: the first outcome of each TriggerSchedule that
-- carried a request id, so a retry returns it and fires nothing (see storage/schedules.py).
-- Kept when the run is deleted. outcome: started, skipped or buffered; tick: when it fired
-- (seconds since the epoch); run_id: the run it started; active_run_id: the run that made it
-- skip or buffer.
CREATE TABLE IF NOT EXISTS schedule_triggers (
    schedule_id text NOT NULL,
    request_id text NOT NULL,
    outcome text NOT NULL,
    tick double precision NOT NULL,
    run_id text,
    active_run_id text,
    created_at double precision NOT NULL,
    PRIMARY KEY (schedule_id, request_id)
);
