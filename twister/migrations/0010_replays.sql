-- twister jobs replay: attempts of a step made by runs (or parts of runs) that a replay set aside;
-- a job's retry counts add them, so they keep counting across replays.
ALTER TABLE jobs ADD COLUMN earlier_download_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN earlier_upload_attempts INTEGER NOT NULL DEFAULT 0;
