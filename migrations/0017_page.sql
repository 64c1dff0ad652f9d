-- Issue 26: what the status page shows of a site (the sites table's new
-- keys, src/sites/keys.rs).
ALTER TABLE sites ADD COLUMN IF NOT EXISTS public boolean;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS hide_url boolean;
