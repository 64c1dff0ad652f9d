-- Issue 24: what the new kinds of check say (tcp://, tls://, dns://,
-- icmp://), and how many times a site was tried in its run before its
-- result (`retries`). Nullable, as in the message: older checks have none.
ALTER TABLE checks ADD COLUMN IF NOT EXISTS attempts integer;
ALTER TABLE checks ADD COLUMN IF NOT EXISTS dns_rcode text;
ALTER TABLE checks ADD COLUMN IF NOT EXISTS dns_answers text[];
ALTER TABLE checks ADD COLUMN IF NOT EXISTS packet_loss double precision;
ALTER TABLE checks ADD COLUMN IF NOT EXISTS tls_names text[];

-- The sites table's new keys (src/sites/keys.rs).
ALTER TABLE sites ADD COLUMN IF NOT EXISTS send text;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS retries integer;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS retry_delay text;

-- Conditions with operators: each one's outcome with the check; a site's
-- conditions and request body in the sites table.
ALTER TABLE checks ADD COLUMN IF NOT EXISTS conditions jsonb;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS conditions jsonb;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS body text;
