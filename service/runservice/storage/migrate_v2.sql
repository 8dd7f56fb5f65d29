-- runservice SQLite schema: version 1 -> 2 (run inside the caller's transaction).
-- Steps and events move from WITHOUT ROWID tables to rowid tables (see schema.sql).

CREATE TABLE steps_v2 (
    run_id TEXT NOT NULL,
    path_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, path_key)
);
INSERT INTO steps_v2 (run_id, path_key, position, record)
    SELECT run_id, path_key, position, record FROM steps ORDER BY run_id, path_key;
DROP TABLE steps;
ALTER TABLE steps_v2 RENAME TO steps;

CREATE TABLE events_v2 (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
INSERT INTO events_v2 (run_id, seq, time, body)
    SELECT run_id, seq, time, body FROM events ORDER BY run_id, seq;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
