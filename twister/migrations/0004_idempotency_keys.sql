-- POST /jobs with x-idempotency-key: a repeat (same API key, same idempotency key) returns the first
-- job. The unique index makes two concurrent repeats one job.
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
ALTER TABLE jobs ADD COLUMN request_hash TEXT;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
