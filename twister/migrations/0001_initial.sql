-- The schema as twister created it before migrations: IF NOT EXISTS, so databases made then adopt it.
CREATE TABLE IF NOT EXISTS api_keys (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    webhook_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS jobs (
    id UUID PRIMARY KEY,
    api_key_id BIGINT NOT NULL REFERENCES api_keys(id),
    url TEXT NOT NULL,
    request JSONB NOT NULL,
    created_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    step TEXT NOT NULL,
    finished_at BIGINT,
    error TEXT,
    error_type TEXT,
    s3_key TEXT,
    title TEXT,
    file_size BIGINT,
    download_speed_mbps DOUBLE PRECISION,
    upload_speed_mbps DOUBLE PRECISION,
    extract_duration_ms BIGINT,
    download_duration_ms BIGINT,
    mux_duration_ms BIGINT,
    upload_duration_ms BIGINT,
    total_duration_ms BIGINT,
    download_retries INTEGER,
    upload_retries INTEGER,
    queue_wait_ms BIGINT,
    requested_quality TEXT,
    actual_quality TEXT,
    native_video_codec TEXT,
    native_audio_codec TEXT,
    webhook_status TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner_created ON jobs (api_key_id, created_at DESC);
