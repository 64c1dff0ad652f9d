-- The sites kept in PostgreSQL (`sitewatch sites ...`,
-- SITEWATCH_SITES_SOURCE=database): one row per site, one column per key
-- of a `[[site]]`, as written (durations and status sets as text), so that
-- a row is validated exactly as a sites file's site is, when it is read.
-- A row that does not validate is named in a warning and skipped.
CREATE TABLE IF NOT EXISTS sites (
    name            text PRIMARY KEY,
    url             text NOT NULL,
    method          text,
    headers         jsonb,
    timeout         text,
    expect_status   text,
    regex           text,
    ca_file         text,
    max_body_bytes  bigint,
    "interval"      text,
    degraded_after  text,
    json            jsonb,
    max_redirects   integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
