-- Views for the common questions, for psql and Grafana users. They read
-- the rollups (hours and days up to the last fold, which `drain` does once
-- an hour has ended) and, for the latest state, the newest rows.

-- Each site and location's newest check: the pairs seen in the last 30 days
-- (daily rollups) or the last 2 hours (rows not folded yet), each looked up
-- by the (site, started_at) index.
CREATE VIEW site_status AS
SELECT p.site, p.location, c.started_at AS last_check_at, c.up, c.status_code,
       c.response_time_ms, c.error_kind, c.error, c.tls_expires_at,
       floor(extract(epoch FROM c.tls_expires_at - now()) / 86400)::integer AS tls_days_left,
       c.url
FROM (
    SELECT site, location FROM rollups_daily
    WHERE day >= (now() AT TIME ZONE 'UTC')::date - 30
    UNION
    SELECT site, location FROM checks WHERE started_at >= now() - interval '2 hours'
) AS p
CROSS JOIN LATERAL (
    SELECT * FROM checks c
    WHERE c.site = p.site AND c.location = p.location
    ORDER BY c.started_at DESC LIMIT 1
) AS c;

-- Uptime per site and UTC day, every location together.
CREATE VIEW site_uptime_daily AS
SELECT site, day, sum(checks)::bigint AS checks, sum(up_checks)::bigint AS up_checks,
       round(100.0 * sum(up_checks) / nullif(sum(checks), 0), 3) AS uptime_pct
FROM rollups_daily
GROUP BY site, day;

-- The same per hour, for time series.
CREATE VIEW site_uptime_hourly AS
SELECT site, hour, sum(checks)::bigint AS checks, sum(up_checks)::bigint AS up_checks,
       round(100.0 * sum(up_checks) / nullif(sum(checks), 0), 3) AS uptime_pct
FROM rollups_hourly
GROUP BY site, hour;

-- Latency percentiles of the up checks per site, hour and phase (`total`,
-- `dns`, `connect`, `tls`, `ttfb`), every location together, from the
-- sketches (within 1 %).
CREATE VIEW site_latency_hourly AS
WITH buckets AS (
    SELECT site, hour, phase, k, sum(n)::integer AS n
    FROM rollups_hourly,
         LATERAL (VALUES ('total', latency_keys, latency_counts), ('dns', dns_keys, dns_counts),
                         ('connect', connect_keys, connect_counts), ('tls', tls_keys, tls_counts),
                         ('ttfb', ttfb_keys, ttfb_counts)) AS p(phase, keys, counts),
         LATERAL unnest(p.keys, p.counts) AS u(k, n)
    GROUP BY 1, 2, 3, 4
)
SELECT site, hour, phase, sum(n)::bigint AS samples,
       sitewatch_sketch_quantile(array_agg(k ORDER BY k), array_agg(n ORDER BY k), 0.5) AS p50_ms,
       sitewatch_sketch_quantile(array_agg(k ORDER BY k), array_agg(n ORDER BY k), 0.95) AS p95_ms,
       sitewatch_sketch_quantile(array_agg(k ORDER BY k), array_agg(n ORDER BY k), 0.99) AS p99_ms
FROM buckets
GROUP BY site, hour, phase;

-- The same per UTC day.
CREATE VIEW site_latency_daily AS
WITH buckets AS (
    SELECT site, day, phase, k, sum(n)::integer AS n
    FROM rollups_daily,
         LATERAL (VALUES ('total', latency_keys, latency_counts), ('dns', dns_keys, dns_counts),
                         ('connect', connect_keys, connect_counts), ('tls', tls_keys, tls_counts),
                         ('ttfb', ttfb_keys, ttfb_counts)) AS p(phase, keys, counts),
         LATERAL unnest(p.keys, p.counts) AS u(k, n)
    GROUP BY 1, 2, 3, 4
)
SELECT site, day, phase, sum(n)::bigint AS samples,
       sitewatch_sketch_quantile(array_agg(k ORDER BY k), array_agg(n ORDER BY k), 0.5) AS p50_ms,
       sitewatch_sketch_quantile(array_agg(k ORDER BY k), array_agg(n ORDER BY k), 0.95) AS p95_ms,
       sitewatch_sketch_quantile(array_agg(k ORDER BY k), array_agg(n ORDER BY k), 0.99) AS p99_ms
FROM buckets
GROUP BY site, day, phase;
