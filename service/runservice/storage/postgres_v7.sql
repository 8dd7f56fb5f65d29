-- runservice PostgreSQL schema, migration 7: foreach items as their own rows.
--
-- An item's progress upserts one small row instead of rewriting its step's whole record
-- with every item in it, so the cost of an item does not grow with the item count.
-- `item` is the item's JSON (ForeachItem.to_json, orjson bytes like every other document).
-- Existing records keep their inline `foreach_items`: readers merge them under the rows
-- (a row wins for its index), and the step's next full write moves them into rows.
CREATE TABLE IF NOT EXISTS foreach_items (
    run_id text NOT NULL,
    path_key text NOT NULL,
    item_index integer NOT NULL,
    item bytea NOT NULL,
    PRIMARY KEY (run_id, path_key, item_index)
);
