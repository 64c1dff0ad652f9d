-- `alert`: what it knows between runs, and its outbox.

-- A site's `[site.alerts]`, for the sites kept in PostgreSQL.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS alerts jsonb;

-- Per site and location: the newest check evaluated (the position), and
-- the streak it ended: consecutive failed and good checks, and whether
-- the location counts as down.
CREATE TABLE IF NOT EXISTS alert_locations (
    site             text NOT NULL,
    location         text NOT NULL,
    last_started_at  timestamptz NOT NULL,
    last_check_id    uuid NOT NULL,
    fails            integer NOT NULL,
    goods            integer NOT NULL,
    down             boolean NOT NULL,
    -- first failed check of the current failed streak, and of the outage
    first_fail_at    timestamptz,
    down_since       timestamptz,
    status_code      smallint,
    error_kind       text,
    error            text,
    url              text,
    PRIMARY KEY (site, location)
);

-- Per site: its state (`up`, `down`, `stale`) and since when, what the
-- receivers were last told and when, and the certificate thresholds
-- already sent for its current certificate.
CREATE TABLE IF NOT EXISTS alert_sites (
    site            text PRIMARY KEY,
    state           text NOT NULL,
    since           timestamptz NOT NULL,
    notified        text NOT NULL DEFAULT 'up',
    notified_at     timestamptz,
    tls_expires_at  timestamptz,
    tls_days_sent   integer[] NOT NULL DEFAULT '{}'
);

-- Per location: a prober that lost its own network (every site it checks
-- failing without an answer), or whose runs stopped.
CREATE TABLE IF NOT EXISTS alert_probers (
    location    text PRIMARY KEY,
    state       text NOT NULL,          -- up | prober_down | stale
    since       timestamptz NOT NULL,
    notified    text NOT NULL DEFAULT 'up'
);

-- The outbox: every event, recorded before it is sent, with exactly what
-- a webhook receives; one delivery per event and notifier.
CREATE TABLE IF NOT EXISTS alert_events (
    event_id    uuid PRIMARY KEY,
    kind        text NOT NULL,
    site        text,
    location    text,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS alert_deliveries (
    event_id      uuid NOT NULL REFERENCES alert_events ON DELETE CASCADE,
    notifier      text NOT NULL,
    delivered_at  timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    PRIMARY KEY (event_id, notifier)
);

CREATE INDEX IF NOT EXISTS alert_deliveries_pending
    ON alert_deliveries (event_id) WHERE delivered_at IS NULL;

-- The run ledger: one row per `probe-once` run, from the run record it
-- publishes after its checks.
CREATE TABLE IF NOT EXISTS runs (
    run_id          uuid PRIMARY KEY,
    job             text NOT NULL,
    location        text NOT NULL,
    shard           text,
    tick_s          double precision NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    sites_due       integer NOT NULL,
    checked         integer NOT NULL,
    published       integer NOT NULL,
    outcome         text NOT NULL,
    kafka_topic     text,
    kafka_partition integer,
    kafka_offset    bigint,
    inserted_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS runs_location_started_at ON runs (location, started_at DESC);
