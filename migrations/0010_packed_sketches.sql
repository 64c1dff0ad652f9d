-- The rollups' sketches also as bytes, for readers: per bucket in key
-- order, the key (2 bytes) and the count (4 bytes), big-endian. PostgreSQL
-- sends a bytea as it is, and an array element by element: reading 31,000
-- daily rows' sketches took 0.53 s as arrays and 0.04 s as bytes
-- (BENCHMARKS.md). The arrays stay what SQL reads and writes (views,
-- Grafana, sitewatch_rebuild_rollups); the bytes are generated from them,
-- so they can never disagree.
CREATE OR REPLACE FUNCTION sitewatch_sketch_pack(keys smallint[], counts integer[])
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(int2send(k) || int4send(n), ''::bytea ORDER BY o), ''::bytea)
    FROM unnest(keys, counts) WITH ORDINALITY AS u(k, n, o)
$$;

-- Storage: a row over 2 kB gets its largest values moved out of line
-- (TOAST), and compressed where that helps. The bytes are what `report`
-- reads: kept in the row, uncompressed (MAIN); the arrays go out of line
-- first, uncompressed (EXTERNAL). In one ALTER TABLE per table, so the
-- one rewrite it makes already stores the rows that way (reading a day's
-- sketches of 1,000 sites: 0.27 s with the defaults, 0.09 s so).
ALTER TABLE rollups_hourly
    ALTER COLUMN latency_keys SET STORAGE EXTERNAL, ALTER COLUMN latency_counts SET STORAGE EXTERNAL,
    ALTER COLUMN dns_keys SET STORAGE EXTERNAL, ALTER COLUMN dns_counts SET STORAGE EXTERNAL,
    ALTER COLUMN connect_keys SET STORAGE EXTERNAL, ALTER COLUMN connect_counts SET STORAGE EXTERNAL,
    ALTER COLUMN tls_keys SET STORAGE EXTERNAL, ALTER COLUMN tls_counts SET STORAGE EXTERNAL,
    ALTER COLUMN ttfb_keys SET STORAGE EXTERNAL, ALTER COLUMN ttfb_counts SET STORAGE EXTERNAL,
    ADD COLUMN latency_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(latency_keys, latency_counts)) STORED,
    ALTER COLUMN latency_packed SET STORAGE MAIN,
    ADD COLUMN dns_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(dns_keys, dns_counts)) STORED,
    ALTER COLUMN dns_packed SET STORAGE MAIN,
    ADD COLUMN connect_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(connect_keys, connect_counts)) STORED,
    ALTER COLUMN connect_packed SET STORAGE MAIN,
    ADD COLUMN tls_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(tls_keys, tls_counts)) STORED,
    ALTER COLUMN tls_packed SET STORAGE MAIN,
    ADD COLUMN ttfb_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(ttfb_keys, ttfb_counts)) STORED,
    ALTER COLUMN ttfb_packed SET STORAGE MAIN;

ALTER TABLE rollups_daily
    ALTER COLUMN latency_keys SET STORAGE EXTERNAL, ALTER COLUMN latency_counts SET STORAGE EXTERNAL,
    ALTER COLUMN dns_keys SET STORAGE EXTERNAL, ALTER COLUMN dns_counts SET STORAGE EXTERNAL,
    ALTER COLUMN connect_keys SET STORAGE EXTERNAL, ALTER COLUMN connect_counts SET STORAGE EXTERNAL,
    ALTER COLUMN tls_keys SET STORAGE EXTERNAL, ALTER COLUMN tls_counts SET STORAGE EXTERNAL,
    ALTER COLUMN ttfb_keys SET STORAGE EXTERNAL, ALTER COLUMN ttfb_counts SET STORAGE EXTERNAL,
    ADD COLUMN latency_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(latency_keys, latency_counts)) STORED,
    ALTER COLUMN latency_packed SET STORAGE MAIN,
    ADD COLUMN dns_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(dns_keys, dns_counts)) STORED,
    ALTER COLUMN dns_packed SET STORAGE MAIN,
    ADD COLUMN connect_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(connect_keys, connect_counts)) STORED,
    ALTER COLUMN connect_packed SET STORAGE MAIN,
    ADD COLUMN tls_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(tls_keys, tls_counts)) STORED,
    ALTER COLUMN tls_packed SET STORAGE MAIN,
    ADD COLUMN ttfb_packed bytea GENERATED ALWAYS AS (sitewatch_sketch_pack(ttfb_keys, ttfb_counts)) STORED,
    ALTER COLUMN ttfb_packed SET STORAGE MAIN;

-- The failed hours and the hour before each, from the index alone.
DROP INDEX IF EXISTS rollups_hourly_failed;
CREATE INDEX IF NOT EXISTS rollups_hourly_failed ON rollups_hourly (site, location, hour)
    INCLUDE (checks, up_checks) WHERE up_checks < checks;
CREATE INDEX IF NOT EXISTS rollups_hourly_counts ON rollups_hourly (site, location, hour)
    INCLUDE (checks, up_checks);
