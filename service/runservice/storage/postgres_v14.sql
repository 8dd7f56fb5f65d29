-- runservice PostgreSQL schema, migration 14: the schema versions an older server may serve.
--
-- A server stops at start-up on a database with a schema version it does not know: a newer
-- runservice migrated it. A migration that only adds what older code never reads (a table, a
-- column with a default, an index) leaves the database usable by the version before it, and
-- records its number here; a server that does not know a version listed here serves the
-- database all the same, with a warning, so a rollback after such an upgrade starts.
CREATE TABLE IF NOT EXISTS schema_compatible (version integer PRIMARY KEY);
