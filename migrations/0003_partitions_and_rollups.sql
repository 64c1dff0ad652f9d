-- History at scale: `checks` partitioned by UTC day of started_at (so that
-- `sitewatch prune` drops whole days), and rollups per site, location and
-- hour (and day) with latency sketches, which `report` reads instead of raw
-- rows. An existing `checks` is moved into the partitioned table row by row
-- in this migration's transaction, and the rollups are filled from it.

ALTER TABLE checks RENAME TO checks_unpartitioned;
ALTER INDEX checks_pkey RENAME TO checks_unpartitioned_pkey;
ALTER INDEX checks_site_started_at RENAME TO checks_unpartitioned_site_started_at;

-- The same columns (site keeps COLLATE "C"). The primary key must hold the
-- partition key: a redelivered message carries both, so it is stored once.
CREATE TABLE checks (LIKE checks_unpartitioned INCLUDING DEFAULTS)
    PARTITION BY RANGE (started_at);
ALTER TABLE checks ADD PRIMARY KEY (started_at, check_id);
CREATE INDEX checks_site_started_at ON checks (site, started_at DESC);

-- The partition of one UTC day, created when missing: `checks_YYYYMMDD`.
-- Created apart and then attached, which locks `checks` only against other
-- schema changes (SHARE UPDATE EXCLUSIVE), not against drains inserting.
CREATE FUNCTION sitewatch_check_partition(day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'checks_' || to_char(day, 'YYYYMMDD');
    low timestamptz := day::timestamp AT TIME ZONE 'UTC';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('sitewatch:partitions'));
    IF NOT EXISTS (
        SELECT 1 FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'checks'::regclass AND c.relname = part
    ) THEN
        EXECUTE format('CREATE TABLE %I (LIKE checks INCLUDING DEFAULTS)', part);
        EXECUTE format('ALTER TABLE checks ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, low, low + interval '1 day');
    END IF;
    RETURN part;
END
$$;

SELECT sitewatch_check_partition(day)
FROM (SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date AS day FROM checks_unpartitioned) AS days;
SELECT sitewatch_check_partition((now() AT TIME ZONE 'UTC')::date + ahead)
FROM generate_series(-1, 7) AS ahead;
INSERT INTO checks SELECT * FROM checks_unpartitioned;
DROP TABLE checks_unpartitioned;

-- Sketch buckets, as src/sketch.rs computes them: ceil(ln(ms) / ln γ),
-- γ = 1.01 / 0.99 (1 % relative accuracy); zero and below in bucket -32768.
CREATE FUNCTION sitewatch_sketch_key(ms double precision) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN ms = 'NaN' OR ms <= 1e-6 THEN -32768
                ELSE least(32767, greatest(-32767, ceil(ln(ms) / 0.020000666706669435)))::smallint END
$$;

-- The value a bucket stands for (within 1 % of every value in it).
CREATE FUNCTION sitewatch_sketch_value(bucket smallint) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN bucket = -32768 THEN 0
                ELSE 2 * exp(bucket * 0.020000666706669435) / (exp(0.020000666706669435) + 1) END
$$;

-- The q quantile of a sketch (buckets in order, with their counts), as
-- src/sketch.rs reads it: the value of rank floor(q * (n - 1)).
CREATE FUNCTION sitewatch_sketch_quantile(keys smallint[], counts integer[], q double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    WITH b AS (
        SELECT k, sum(n) OVER (ORDER BY k) AS seen, sum(n) OVER () AS total
        FROM unnest(keys, counts) AS u(k, n)
    )
    SELECT sitewatch_sketch_value(k) FROM b
    WHERE seen > floor(q * (total - 1))
    ORDER BY k LIMIT 1
$$;

-- Two sketches added together, bucket by bucket (what folding does).
CREATE FUNCTION sitewatch_sketch_merge(a_keys smallint[], a_counts integer[],
                                       b_keys smallint[], b_counts integer[],
                                       OUT keys smallint[], OUT counts integer[])
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(k ORDER BY k), '{}'), coalesce(array_agg(n ORDER BY k), '{}')
    FROM (SELECT k, sum(n)::integer AS n
          FROM unnest(a_keys || b_keys, a_counts || b_counts) AS u(k, n)
          GROUP BY k) AS s
$$;

-- Per site, location and UTC hour: checks, up checks, latency sketches
-- (milliseconds, up checks only) of the whole check and of each phase, and
-- the latest certificate expiry seen.
CREATE TABLE rollups_hourly (
    site            text COLLATE "C" NOT NULL,
    location        text NOT NULL,
    hour            timestamptz NOT NULL,
    checks          integer NOT NULL,
    up_checks       integer NOT NULL,
    latency_keys    smallint[] NOT NULL,
    latency_counts  integer[] NOT NULL,
    dns_keys        smallint[] NOT NULL,
    dns_counts      integer[] NOT NULL,
    connect_keys    smallint[] NOT NULL,
    connect_counts  integer[] NOT NULL,
    tls_keys        smallint[] NOT NULL,
    tls_counts      integer[] NOT NULL,
    ttfb_keys       smallint[] NOT NULL,
    ttfb_counts     integer[] NOT NULL,
    -- The latest check that saw a server certificate: when, and its expiry.
    tls_checked_at  timestamptz,
    tls_expires_at  timestamptz,
    PRIMARY KEY (site, location, hour)
);
CREATE INDEX rollups_hourly_hour ON rollups_hourly (hour);

-- The same per UTC day: what reports over weeks and months read.
CREATE TABLE rollups_daily (
    site            text COLLATE "C" NOT NULL,
    location        text NOT NULL,
    day             date NOT NULL,
    checks          integer NOT NULL,
    up_checks       integer NOT NULL,
    latency_keys    smallint[] NOT NULL,
    latency_counts  integer[] NOT NULL,
    dns_keys        smallint[] NOT NULL,
    dns_counts      integer[] NOT NULL,
    connect_keys    smallint[] NOT NULL,
    connect_counts  integer[] NOT NULL,
    tls_keys        smallint[] NOT NULL,
    tls_counts      integer[] NOT NULL,
    ttfb_keys       smallint[] NOT NULL,
    ttfb_counts     integer[] NOT NULL,
    tls_checked_at  timestamptz,
    tls_expires_at  timestamptz,
    PRIMARY KEY (site, location, day)
);
CREATE INDEX rollups_daily_day ON rollups_daily (day);

-- What each drain batch added to the rollups, written in the batch's own
-- transaction: one row per batch, however many sites it holds. `drain`
-- folds the chunks whose hours have all ended into rollups_hourly and
-- rollups_daily (in one transaction, which deletes them); readers add the
-- chunks not yet folded. Rows, chunks and rollups never disagree.
CREATE TABLE rollup_chunks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    last_hour       timestamptz NOT NULL,
    data            bytea NOT NULL,
    inserted_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rollup_chunks_last_hour ON rollup_chunks (last_hour);
-- Chunks are read once and deleted: compressing them costs more than it saves.
ALTER TABLE rollup_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- The rollups of the rows already stored.
CREATE TEMP TABLE rollup_fill ON COMMIT DROP AS
SELECT site, location, date_trunc('hour', started_at, 'UTC') AS hour, up,
       response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms, started_at, tls_expires_at
FROM checks;

CREATE TEMP VIEW rollup_fill_sketches AS
SELECT site, location, hour, phase,
       array_agg(k ORDER BY k) AS keys, array_agg(n ORDER BY k) AS counts
FROM (
    SELECT site, location, hour, phase, sitewatch_sketch_key(v) AS k, count(*)::integer AS n
    FROM rollup_fill,
         LATERAL (VALUES (1, response_time_ms), (2, dns_ms), (3, connect_ms), (4, tls_ms), (5, ttfb_ms)) AS p(phase, v)
    WHERE up AND v IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
) AS buckets
GROUP BY 1, 2, 3, 4;

CREATE TEMP TABLE rollup_fill_hourly ON COMMIT DROP AS
SELECT c.site, c.location, c.hour, c.checks, c.up_checks,
       coalesce(s1.keys, '{}') AS latency_keys, coalesce(s1.counts, '{}') AS latency_counts,
       coalesce(s2.keys, '{}') AS dns_keys, coalesce(s2.counts, '{}') AS dns_counts,
       coalesce(s3.keys, '{}') AS connect_keys, coalesce(s3.counts, '{}') AS connect_counts,
       coalesce(s4.keys, '{}') AS tls_keys, coalesce(s4.counts, '{}') AS tls_counts,
       coalesce(s5.keys, '{}') AS ttfb_keys, coalesce(s5.counts, '{}') AS ttfb_counts,
       c.tls_checked_at, c.tls_expires_at
FROM (
    SELECT site, location, hour, count(*)::integer AS checks, (count(*) FILTER (WHERE up))::integer AS up_checks,
           max(started_at) FILTER (WHERE tls_expires_at IS NOT NULL) AS tls_checked_at,
           (array_agg(tls_expires_at ORDER BY started_at DESC) FILTER (WHERE tls_expires_at IS NOT NULL))[1] AS tls_expires_at
    FROM rollup_fill GROUP BY 1, 2, 3
) AS c
LEFT JOIN rollup_fill_sketches s1 ON (s1.site, s1.location, s1.hour, s1.phase) = (c.site, c.location, c.hour, 1)
LEFT JOIN rollup_fill_sketches s2 ON (s2.site, s2.location, s2.hour, s2.phase) = (c.site, c.location, c.hour, 2)
LEFT JOIN rollup_fill_sketches s3 ON (s3.site, s3.location, s3.hour, s3.phase) = (c.site, c.location, c.hour, 3)
LEFT JOIN rollup_fill_sketches s4 ON (s4.site, s4.location, s4.hour, s4.phase) = (c.site, c.location, c.hour, 4)
LEFT JOIN rollup_fill_sketches s5 ON (s5.site, s5.location, s5.hour, s5.phase) = (c.site, c.location, c.hour, 5);

INSERT INTO rollups_hourly SELECT * FROM rollup_fill_hourly;

-- Days from hours: counts add up, sketches merge bucket by bucket.
CREATE TEMP VIEW rollup_fill_day_sketches AS
SELECT site, location, day, phase,
       array_agg(k ORDER BY k) AS keys, array_agg(n ORDER BY k) AS counts
FROM (
    SELECT site, location, (hour AT TIME ZONE 'UTC')::date AS day, phase, k, sum(n)::integer AS n
    FROM rollup_fill_hourly,
         LATERAL (VALUES (1, latency_keys, latency_counts), (2, dns_keys, dns_counts),
                         (3, connect_keys, connect_counts), (4, tls_keys, tls_counts),
                         (5, ttfb_keys, ttfb_counts)) AS p(phase, keys, counts),
         LATERAL unnest(p.keys, p.counts) AS u(k, n)
    GROUP BY 1, 2, 3, 4, 5
) AS buckets
GROUP BY 1, 2, 3, 4;

INSERT INTO rollups_daily
SELECT c.site, c.location, c.day, c.checks, c.up_checks,
       coalesce(s1.keys, '{}'), coalesce(s1.counts, '{}'),
       coalesce(s2.keys, '{}'), coalesce(s2.counts, '{}'),
       coalesce(s3.keys, '{}'), coalesce(s3.counts, '{}'),
       coalesce(s4.keys, '{}'), coalesce(s4.counts, '{}'),
       coalesce(s5.keys, '{}'), coalesce(s5.counts, '{}'),
       c.tls_checked_at, c.tls_expires_at
FROM (
    SELECT site, location, (hour AT TIME ZONE 'UTC')::date AS day,
           sum(checks)::integer AS checks, sum(up_checks)::integer AS up_checks,
           max(tls_checked_at) AS tls_checked_at,
           (array_agg(tls_expires_at ORDER BY tls_checked_at DESC) FILTER (WHERE tls_checked_at IS NOT NULL))[1] AS tls_expires_at
    FROM rollup_fill_hourly GROUP BY 1, 2, 3
) AS c
LEFT JOIN rollup_fill_day_sketches s1 ON (s1.site, s1.location, s1.day, s1.phase) = (c.site, c.location, c.day, 1)
LEFT JOIN rollup_fill_day_sketches s2 ON (s2.site, s2.location, s2.day, s2.phase) = (c.site, c.location, c.day, 2)
LEFT JOIN rollup_fill_day_sketches s3 ON (s3.site, s3.location, s3.day, s3.phase) = (c.site, c.location, c.day, 3)
LEFT JOIN rollup_fill_day_sketches s4 ON (s4.site, s4.location, s4.day, s4.phase) = (c.site, c.location, c.day, 4)
LEFT JOIN rollup_fill_day_sketches s5 ON (s5.site, s5.location, s5.day, s5.phase) = (c.site, c.location, c.day, 5);

DROP VIEW rollup_fill_day_sketches;
DROP VIEW rollup_fill_sketches;
