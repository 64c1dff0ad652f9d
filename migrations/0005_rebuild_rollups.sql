-- sitewatch_rebuild_rollups(first_day, last_day): recompute the hourly and
-- daily rollups of those UTC days (both included) from the rows in
-- `checks`, for after rows were changed by hand, and for loading history
-- written straight into `checks`. It waits for running drains to commit
-- and holds new batches until it commits, and refuses days that still
-- have chunks not folded (let `drain` fold them first: it does once their
-- hours end). Returns the number of hourly rollup rows written.
-- The first hour a chunk holds, beside its last (null in chunks written
-- before this migration: they may hold any earlier hour).
ALTER TABLE rollup_chunks ADD COLUMN first_hour timestamptz;

CREATE FUNCTION sitewatch_rebuild_rollups(first_day date, last_day date) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := first_day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (last_day + 1)::timestamp AT TIME ZONE 'UTC';
    written bigint;
BEGIN
    IF last_day < first_day THEN
        RAISE EXCEPTION 'sitewatch_rebuild_rollups: last_day % is before first_day %', last_day, first_day;
    END IF;
    LOCK TABLE rollup_chunks IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM rollup_chunks
               WHERE last_hour >= lo AND coalesce(first_hour, '-infinity') < hi) THEN
        RAISE EXCEPTION 'sitewatch_rebuild_rollups: rollup chunks not folded yet may touch % to %: run drain once their hours have ended', first_day, last_day;
    END IF;
    DELETE FROM rollups_hourly WHERE hour >= lo AND hour < hi;
    DELETE FROM rollups_daily WHERE day >= first_day AND day <= last_day;

    WITH rows AS (
        SELECT site, location, date_trunc('hour', started_at, 'UTC') AS hour, started_at, up,
               tls_expires_at, response_time_ms, dns_ms, connect_ms, tls_ms, ttfb_ms
        FROM checks WHERE started_at >= lo AND started_at < hi
    ), counted AS (
        SELECT site, location, hour, count(*)::integer AS checks,
               (count(*) FILTER (WHERE up))::integer AS up_checks,
               max(started_at) FILTER (WHERE tls_expires_at IS NOT NULL) AS tls_checked_at,
               (array_agg(tls_expires_at ORDER BY started_at DESC)
                    FILTER (WHERE tls_expires_at IS NOT NULL))[1] AS tls_expires_at
        FROM rows GROUP BY site, location, hour
    ), keyed AS (
        SELECT site, location, hour, p.phase, sitewatch_sketch_key(p.v) AS k, count(*)::integer AS n
        FROM rows, LATERAL (VALUES (1, response_time_ms), (2, dns_ms), (3, connect_ms),
                                   (4, tls_ms), (5, ttfb_ms)) AS p(phase, v)
        WHERE up AND p.v IS NOT NULL
        GROUP BY site, location, hour, p.phase, k
    ), sketched AS (
        SELECT site, location, hour,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 1) AS k1, array_agg(n ORDER BY k) FILTER (WHERE phase = 1) AS n1,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 2) AS k2, array_agg(n ORDER BY k) FILTER (WHERE phase = 2) AS n2,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 3) AS k3, array_agg(n ORDER BY k) FILTER (WHERE phase = 3) AS n3,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 4) AS k4, array_agg(n ORDER BY k) FILTER (WHERE phase = 4) AS n4,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 5) AS k5, array_agg(n ORDER BY k) FILTER (WHERE phase = 5) AS n5
        FROM keyed GROUP BY site, location, hour
    )
    INSERT INTO rollups_hourly (site, location, hour, checks, up_checks,
                                latency_keys, latency_counts, dns_keys, dns_counts,
                                connect_keys, connect_counts, tls_keys, tls_counts,
                                ttfb_keys, ttfb_counts, tls_checked_at, tls_expires_at)
    SELECT c.site, c.location, c.hour, c.checks, c.up_checks,
           coalesce(s.k1, '{}'), coalesce(s.n1, '{}'), coalesce(s.k2, '{}'), coalesce(s.n2, '{}'),
           coalesce(s.k3, '{}'), coalesce(s.n3, '{}'), coalesce(s.k4, '{}'), coalesce(s.n4, '{}'),
           coalesce(s.k5, '{}'), coalesce(s.n5, '{}'), c.tls_checked_at, c.tls_expires_at
    FROM counted c LEFT JOIN sketched s USING (site, location, hour);
    GET DIAGNOSTICS written = ROW_COUNT;

    -- Days from their hours: counts add up, sketches merge bucket by bucket.
    WITH hours AS (
        SELECT * FROM rollups_hourly WHERE hour >= lo AND hour < hi
    ), counted AS (
        SELECT site, location, (hour AT TIME ZONE 'UTC')::date AS day,
               sum(checks)::integer AS checks, sum(up_checks)::integer AS up_checks,
               max(tls_checked_at) AS tls_checked_at,
               (array_agg(tls_expires_at ORDER BY tls_checked_at DESC)
                    FILTER (WHERE tls_checked_at IS NOT NULL))[1] AS tls_expires_at
        FROM hours GROUP BY 1, 2, 3
    ), keyed AS (
        SELECT site, location, (hour AT TIME ZONE 'UTC')::date AS day, p.phase, u.k, sum(u.n)::integer AS n
        FROM hours,
             LATERAL (VALUES (1, latency_keys, latency_counts), (2, dns_keys, dns_counts),
                             (3, connect_keys, connect_counts), (4, tls_keys, tls_counts),
                             (5, ttfb_keys, ttfb_counts)) AS p(phase, keys, counts),
             LATERAL unnest(p.keys, p.counts) AS u(k, n)
        GROUP BY 1, 2, 3, 4, 5
    ), sketched AS (
        SELECT site, location, day,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 1) AS k1, array_agg(n ORDER BY k) FILTER (WHERE phase = 1) AS n1,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 2) AS k2, array_agg(n ORDER BY k) FILTER (WHERE phase = 2) AS n2,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 3) AS k3, array_agg(n ORDER BY k) FILTER (WHERE phase = 3) AS n3,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 4) AS k4, array_agg(n ORDER BY k) FILTER (WHERE phase = 4) AS n4,
               array_agg(k ORDER BY k) FILTER (WHERE phase = 5) AS k5, array_agg(n ORDER BY k) FILTER (WHERE phase = 5) AS n5
        FROM keyed GROUP BY site, location, day
    )
    INSERT INTO rollups_daily (site, location, day, checks, up_checks,
                               latency_keys, latency_counts, dns_keys, dns_counts,
                               connect_keys, connect_counts, tls_keys, tls_counts,
                               ttfb_keys, ttfb_counts, tls_checked_at, tls_expires_at)
    SELECT c.site, c.location, c.day, c.checks, c.up_checks,
           coalesce(s.k1, '{}'), coalesce(s.n1, '{}'), coalesce(s.k2, '{}'), coalesce(s.n2, '{}'),
           coalesce(s.k3, '{}'), coalesce(s.n3, '{}'), coalesce(s.k4, '{}'), coalesce(s.n4, '{}'),
           coalesce(s.k5, '{}'), coalesce(s.n5, '{}'), c.tls_checked_at, c.tls_expires_at
    FROM counted c LEFT JOIN sketched s USING (site, location, day);
    RETURN written;
END
$$;

-- `report` reads the hours that hold failed checks, for all time (when a
-- site last recovered): a small index over just those.
CREATE INDEX rollups_hourly_failed ON rollups_hourly (site, hour) WHERE up_checks < checks;

-- `report` places outages check by check: with what it reads in the index
-- (the location, whether the check was up, its status and error kind),
-- those reads touch the index alone, not one table page per check. (On a
-- large `checks`, building it takes minutes, and drains wait meanwhile.)
DROP INDEX checks_site_started_at;
CREATE INDEX checks_site_started_at ON checks (site, started_at DESC)
    INCLUDE (location, up, status_code, error_kind);
