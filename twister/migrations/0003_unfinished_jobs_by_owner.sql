-- Admission counts a key's unfinished jobs (its concurrent-jobs limit) on every POST /jobs.
CREATE INDEX jobs_unfinished_by_owner ON jobs (api_key_id) WHERE finished_at IS NULL;
