-- What a check says of itself (issue 21): the condition it failed, and the
-- run that made it; the run record's count of checks answered.
-- Why a completed check is down or degraded: the first condition it failed
-- (the message's `condition`), kept for report and the status page.
ALTER TABLE checks ADD COLUMN IF NOT EXISTS condition text;

-- A prober whose own network is down: each check names its run, and the
-- run record says how many of its checks got any answer. A run of several
-- checks none of which was answered is blind; report and alert both leave
-- its checks out (crate::rule::blind).
ALTER TABLE checks ADD COLUMN IF NOT EXISTS run_id uuid;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS answered bigint;
