-- A job's own storage target (inline `storage`), sealed with the server key: secrets never in plain text.
ALTER TABLE jobs ADD COLUMN storage TEXT;
