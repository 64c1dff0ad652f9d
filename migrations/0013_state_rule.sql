-- One state rule for `report` and `alert` (src/rule.rs). A location's
-- streak also keeps the first check of its current good streak (where an
-- outage ends) and whether its newest check was degraded; a site keeps the
-- start of the outage its receivers were told of, so that `resolved` says
-- when it began, when it ended and how long it lasted. `state` may now be
-- any of up, pending, down, degraded, stale, maintenance, unknown.
ALTER TABLE alert_locations ADD COLUMN IF NOT EXISTS first_good_at timestamptz;
ALTER TABLE alert_locations ADD COLUMN IF NOT EXISTS degraded boolean NOT NULL DEFAULT false;
ALTER TABLE alert_sites ADD COLUMN IF NOT EXISTS outage_since timestamptz;

-- Why a completed check is down or degraded: the first condition it failed
-- (the message's `condition`), kept for report and the status page.
ALTER TABLE checks ADD COLUMN IF NOT EXISTS condition text;

-- A prober whose own network is down: each check names its run, and the
-- run record says how many of its checks got any answer. A run of several
-- checks none of which was answered is blind; report and alert both leave
-- its checks out (crate::rule::blind).
ALTER TABLE checks ADD COLUMN IF NOT EXISTS run_id uuid;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS answered bigint;
