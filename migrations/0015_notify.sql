-- Issue 25: a site's group (notifiers route by it) in the sites table, and
-- what alert needs to notify `degraded`: each location's run of slow
-- checks and the newest response time.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS "group" text;
ALTER TABLE alert_locations ADD COLUMN IF NOT EXISTS slow integer NOT NULL DEFAULT 0;
ALTER TABLE alert_locations ADD COLUMN IF NOT EXISTS response_time_ms double precision;
