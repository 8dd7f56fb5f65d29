-- runservice SQLite schema: version 8 -> 9 (run inside the caller's transaction).
-- Foreach items as their own rows: an item's progress upserts one small row instead of
-- rewriting its step's whole record with every item in it (the cost of an item no longer
-- grows with the item count). `item` is the item's JSON (ForeachItem.to_json, large values
-- referenced as in step records, see storage/values.py).
-- Existing records keep their inline `foreach_items`: readers merge them under the rows
-- (a row wins for its index), and the step's next full write moves them into rows.
CREATE TABLE IF NOT EXISTS foreach_items (
    run_id TEXT NOT NULL,
    path_key TEXT NOT NULL,
    item_index INTEGER NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (run_id, path_key, item_index)
);
