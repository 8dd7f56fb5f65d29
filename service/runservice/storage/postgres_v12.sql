-- runservice PostgreSQL schema, migration 12: large values stored once per run.
--
-- A JSON value of at least 1 KB (storage/values.py) goes once into run_values, keyed by
-- its run and a digest of its JSON, and every place that holds it refers to it: a step
-- record, an event or a foreach item leaves the field out and names it under "refs"; the
-- input and result columns of runs hold a zero byte and the digest. A 1 MB input through
-- three pass-through steps was stored about 20 times over (input, each step's payload and
-- output in its record and in its events, the result); now once. Rows written before keep
-- their values inline and read as ever. Values are deleted with their run.
CREATE TABLE IF NOT EXISTS run_values (
    run_id text NOT NULL,
    digest text NOT NULL,
    body bytea NOT NULL,
    PRIMARY KEY (run_id, digest)
);
