-- runservice PostgreSQL schema, migration 3: cron schedules and the record of their fired
-- ticks (see storage/schedules.py and migrate_v5.sql for the columns).
--
-- A tick is claimed under the schedule row's lock (SELECT ... FOR UPDATE SKIP LOCKED) by
-- moving next_tick on, in the transaction that inserts its schedule_ticks row and creates
-- its run: replicas firing at once take turns, and the second finds the tick gone.

CREATE TABLE schedules (
    schedule_id text PRIMARY KEY,
    workflow_id text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    input bytea,
    resource_id text,
    overlap text NOT NULL,
    missed text NOT NULL,
    description text NOT NULL DEFAULT '',
    paused boolean NOT NULL DEFAULT false,
    next_tick double precision,
    last_tick double precision,
    pending_tick double precision,
    last_run_id text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);

CREATE TABLE schedule_ticks (
    schedule_id text NOT NULL,
    tick double precision NOT NULL,
    kind text NOT NULL,
    outcome text NOT NULL,
    run_id text,
    fired_at double precision NOT NULL,
    PRIMARY KEY (schedule_id, tick)
);
CREATE UNIQUE INDEX schedule_ticks_by_run ON schedule_ticks (run_id) WHERE run_id IS NOT NULL;
