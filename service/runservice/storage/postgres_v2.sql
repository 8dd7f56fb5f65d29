-- runservice PostgreSQL schema, migration 2: leases, and the listing indexes.
--
-- owner, epoch, lease_expires_at: the replica driving an active run, the epoch that fences
-- its commits (every claim adds one), and when its lease ends unless a heartbeat renews it
-- (seconds since the epoch, by the database's clock). cancel_requested: a Cancel reached a
-- replica that does not drive the run; the owner's heartbeat picks it up.

ALTER TABLE runs
    ADD COLUMN owner text,
    ADD COLUMN epoch bigint NOT NULL DEFAULT 0,
    ADD COLUMN lease_expires_at double precision,
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;

-- Heartbeats renew every lease of one owner; only owned (active) runs are in this index.
CREATE INDEX runs_by_owner ON runs (owner) WHERE owner IS NOT NULL;
-- The claim loop looks for active runs with no live owner, oldest first.
CREATE INDEX runs_active ON runs (created_at) WHERE status IN ('running', 'waiting');

-- ListRuns: one index per combination of equality filters, each in the listing order.
DROP INDEX runs_by_status;
CREATE INDEX runs_by_status ON runs (status, created_at DESC, run_id DESC);
CREATE INDEX runs_by_resource ON runs (resource_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_workflow_status ON runs (workflow_id, status, created_at DESC, run_id DESC);
CREATE INDEX runs_by_workflow_resource ON runs (workflow_id, resource_id, created_at DESC, run_id DESC);
CREATE INDEX runs_by_resource_status ON runs (resource_id, status, created_at DESC, run_id DESC);
