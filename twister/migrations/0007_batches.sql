-- Batches: a playlist's entries or a bulk submission, one job each. A paused batch's jobs wait
-- (no workflow) until POST /batch/{id}/start. `finished_at` is claimed by the job that ends it last
-- (`finished_by`, so a repeated claim by that job answers the same).
CREATE TABLE batches (
    id UUID PRIMARY KEY,
    api_key_id BIGINT NOT NULL REFERENCES api_keys(id),
    show_url TEXT,
    title TEXT,
    folder TEXT,
    webhook_url TEXT,
    paused BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    finished_by UUID
);
ALTER TABLE jobs ADD COLUMN batch_id UUID REFERENCES batches(id);
-- POST /jobs/{id}/retry: the job this one retries (usage counts a job and its retries once).
ALTER TABLE jobs ADD COLUMN retry_of UUID;
CREATE INDEX jobs_by_batch ON jobs (batch_id, created_at) WHERE batch_id IS NOT NULL;
-- GET /jobs?status=...: a key's jobs of one status, newest first, without scanning the others.
CREATE INDEX jobs_owner_status_created ON jobs (api_key_id, status, created_at DESC);
