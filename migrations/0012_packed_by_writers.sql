-- The rollups' `*_packed` columns (migration 10) are no longer generated:
-- `drain` writes them beside the arrays, both from the same sketch, and a
-- trigger packs the arrays for any other writer. Generated, they cost
-- PostgreSQL a call of sitewatch_sketch_pack per sketch of every row
-- written: 0.75 s of the 0.78 s that inserting 20,000 hourly rows took,
-- at the end of every drain that folds (BENCHMARKS.md).
--
-- The trigger fires only when a writer leaves the bytes out (an INSERT
-- without them) or changes a sketch's arrays but not its bytes (an
-- UPDATE), so what SQL writers did before (sitewatch_rebuild_rollups, a
-- hand-written fix) keeps working, and arrays and bytes still agree. It
-- packs all five sketches: packing is a function of the arrays, so that is
-- always right. DROP EXPRESSION keeps the stored values and rewrites
-- nothing.
ALTER TABLE rollups_hourly
    ALTER COLUMN latency_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN dns_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN connect_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN tls_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN ttfb_packed DROP EXPRESSION IF EXISTS;
ALTER TABLE rollups_daily
    ALTER COLUMN latency_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN dns_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN connect_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN tls_packed DROP EXPRESSION IF EXISTS,
    ALTER COLUMN ttfb_packed DROP EXPRESSION IF EXISTS;

CREATE OR REPLACE FUNCTION sitewatch_rollups_pack() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.latency_packed := sitewatch_sketch_pack(NEW.latency_keys, NEW.latency_counts);
    NEW.dns_packed := sitewatch_sketch_pack(NEW.dns_keys, NEW.dns_counts);
    NEW.connect_packed := sitewatch_sketch_pack(NEW.connect_keys, NEW.connect_counts);
    NEW.tls_packed := sitewatch_sketch_pack(NEW.tls_keys, NEW.tls_counts);
    NEW.ttfb_packed := sitewatch_sketch_pack(NEW.ttfb_keys, NEW.ttfb_counts);
    RETURN NEW;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['rollups_hourly', 'rollups_daily'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_pack_inserted', t);
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE INSERT ON %I FOR EACH ROW
             WHEN (NEW.latency_packed IS NULL OR NEW.dns_packed IS NULL OR NEW.connect_packed IS NULL
                   OR NEW.tls_packed IS NULL OR NEW.ttfb_packed IS NULL)
             EXECUTE FUNCTION sitewatch_rollups_pack()', t || '_pack_inserted', t);
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_pack_updated', t);
        EXECUTE format(
            'CREATE TRIGGER %I BEFORE UPDATE ON %I FOR EACH ROW
             WHEN (NEW.latency_packed IS NULL OR NEW.dns_packed IS NULL OR NEW.connect_packed IS NULL
                   OR NEW.tls_packed IS NULL OR NEW.ttfb_packed IS NULL
                   OR (NEW.latency_packed IS NOT DISTINCT FROM OLD.latency_packed
                       AND (NEW.latency_keys, NEW.latency_counts) IS DISTINCT FROM (OLD.latency_keys, OLD.latency_counts))
                   OR (NEW.dns_packed IS NOT DISTINCT FROM OLD.dns_packed
                       AND (NEW.dns_keys, NEW.dns_counts) IS DISTINCT FROM (OLD.dns_keys, OLD.dns_counts))
                   OR (NEW.connect_packed IS NOT DISTINCT FROM OLD.connect_packed
                       AND (NEW.connect_keys, NEW.connect_counts) IS DISTINCT FROM (OLD.connect_keys, OLD.connect_counts))
                   OR (NEW.tls_packed IS NOT DISTINCT FROM OLD.tls_packed
                       AND (NEW.tls_keys, NEW.tls_counts) IS DISTINCT FROM (OLD.tls_keys, OLD.tls_counts))
                   OR (NEW.ttfb_packed IS NOT DISTINCT FROM OLD.ttfb_packed
                       AND (NEW.ttfb_keys, NEW.ttfb_counts) IS DISTINCT FROM (OLD.ttfb_keys, OLD.ttfb_counts)))
             EXECUTE FUNCTION sitewatch_rollups_pack()', t || '_pack_updated', t);
    END LOOP;
END
$$;
