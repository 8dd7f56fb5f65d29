-- runservice SQLite schema: version 13 -> 14 (run inside the caller's transaction).
-- Foreach items move to a WITHOUT ROWID table, clustered on their key. A foreach commits
-- each item's row before the next item runs; in a rowid table that row dirtied two pages
-- (the table's last page and the key's index page), clustered it dirties one: the run's
-- own page, where its earlier items are. Items of one run are written in order, so this
-- holds whatever the run ids look like (unlike steps and events, see schema.sql).
CREATE TABLE foreach_items_v14 (
    run_id TEXT NOT NULL,
    path_key TEXT NOT NULL,
    item_index INTEGER NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (run_id, path_key, item_index)
) WITHOUT ROWID;
INSERT INTO foreach_items_v14 (run_id, path_key, item_index, item)
    SELECT run_id, path_key, item_index, item FROM foreach_items ORDER BY run_id, path_key, item_index;
DROP TABLE foreach_items;
ALTER TABLE foreach_items_v14 RENAME TO foreach_items;
