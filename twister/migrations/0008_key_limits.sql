-- Per-key caps (NULL: none beyond the server's), set with `twister keys create/set`.
ALTER TABLE api_keys ADD COLUMN max_resolution INTEGER;
ALTER TABLE api_keys ADD COLUMN max_duration_seconds INTEGER;
ALTER TABLE api_keys ADD COLUMN max_filesize_bytes BIGINT;
ALTER TABLE api_keys ADD COLUMN storage_limit_gb DOUBLE PRECISION;
ALTER TABLE api_keys ADD COLUMN max_concurrent_jobs INTEGER;
-- The size and duration limits a job runs with (the server's and its key's, as they were when it was made).
ALTER TABLE jobs ADD COLUMN limits JSONB;
-- GET /usage and the storage quota: the bytes a key keeps stored.
CREATE INDEX jobs_stored_by_owner ON jobs (api_key_id) INCLUDE (file_size) WHERE s3_key IS NOT NULL;
