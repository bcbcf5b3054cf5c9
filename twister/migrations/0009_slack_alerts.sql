-- POST /user/slack: a key's Slack incoming webhook (sealed with the server key: its URL is a secret)
-- and which finished jobs it hears about.
ALTER TABLE api_keys ADD COLUMN slack_webhook TEXT;
ALTER TABLE api_keys ADD COLUMN slack_notify_level TEXT;
