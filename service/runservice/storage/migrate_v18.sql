-- runservice SQLite schema: version 17 -> 18 (run inside the caller's transaction).
-- When a server last declared each schedule (seconds since the epoch). Replicas sharing a
-- PostgreSQL refresh it and prune only what no replica has declared for a lease (see
-- engine/schedules.py); the SQLite store has one server, which declares at boot and prunes what it
-- no longer declares at once, as before. Kept here so both stores have the same columns. NULL:
-- stored before this column, or by an older server. Only a column older code never reads
-- (schema_compatible): an older server serves the database.
ALTER TABLE schedules ADD COLUMN declared_at REAL;
