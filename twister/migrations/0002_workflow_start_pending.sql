-- A job row is written before its workflow is started. Until the start is confirmed the row says
-- so, and the gateway's reconciler starts (idempotently: workflow id = job id) what is still pending.
ALTER TABLE jobs ADD COLUMN workflow_start_pending BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX jobs_workflow_start_pending ON jobs (created_at) WHERE workflow_start_pending;
