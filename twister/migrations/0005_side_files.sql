-- Files delivered beside the video: WebVTT subtitles and a JPEG thumbnail.
ALTER TABLE jobs ADD COLUMN subtitle_key TEXT;
ALTER TABLE jobs ADD COLUMN thumbnail_key TEXT;
