-- One state rule for `report` and `alert` (src/rule.rs). A location's
-- streak also keeps the first check of its current good streak (where an
-- outage ends) and whether its newest check was degraded; a site keeps the
-- start of the outage its receivers were told of, so that `resolved` says
-- when it began, when it ended and how long it lasted. `state` may now be
-- any of up, pending, down, degraded, stale, maintenance, unknown.
ALTER TABLE alert_locations ADD COLUMN IF NOT EXISTS first_good_at timestamptz;
ALTER TABLE alert_locations ADD COLUMN IF NOT EXISTS degraded boolean NOT NULL DEFAULT false;
ALTER TABLE alert_sites ADD COLUMN IF NOT EXISTS outage_since timestamptz;

