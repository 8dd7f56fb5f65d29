-- runservice SQLite schema: -> version 10 (run inside the caller's transaction).
-- One row the writer updates when it must sync and has nothing else to write: a commit
-- under synchronous=FULL fsyncs the WAL only when it writes a frame, and that fsync
-- covers every earlier commit made under synchronous=NORMAL (see storage/sqlite.py).

CREATE TABLE IF NOT EXISTS sync_marks (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL
);
INSERT OR IGNORE INTO sync_marks (id, count) VALUES (1, 0);
