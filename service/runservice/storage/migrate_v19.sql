-- runservice SQLite schema: version 18 -> 19 (run inside the caller's transaction).
-- When each run was last left waiting for a claim loop (seconds since the epoch): set by the
-- writes that commit an execution with no owner (a Start, Resume, TimeTravel, ForkRun or
-- schedule tick left for want of room) and by every create. The claim loops take waiting runs
-- in this order, `coalesce(queued_at, created_at)`: by creation, a Resume of an old run went
-- ahead of every Start already waiting (audit D2). NULL: stored before this column, or by an
-- older server; such a run is ordered by its creation, as before. The claim reads only the
-- active runs through runs_by_workflow_status and sorts those: no index changes. Only a column
-- older code never reads (schema_compatible): an older server serves the database.
ALTER TABLE runs ADD COLUMN queued_at REAL;
