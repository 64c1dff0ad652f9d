-- One row per check, typed columns for every message field, and where in
-- Kafka it came from. check_id is the idempotency key: a message delivered
-- twice is stored once.
CREATE TABLE checks (
    check_id         uuid PRIMARY KEY,
    schema           smallint NOT NULL,
    site             text NOT NULL,
    url              text NOT NULL,
    method           text NOT NULL,
    location         text NOT NULL,
    started_at       timestamptz NOT NULL,
    up               boolean NOT NULL,
    status_code      smallint,
    reason           text,
    response_time_ms double precision NOT NULL,
    dns_ms           double precision,
    connect_ms       double precision,
    tls_ms           double precision,
    ttfb_ms          double precision,
    ip               inet,
    regex            text,
    regex_matched    boolean,
    body_bytes       bigint,
    tls_expires_at   timestamptz,
    error_kind       text,
    error            text,
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    inserted_at      timestamptz NOT NULL DEFAULT now()
);

-- "Latest checks of a site" (ORDER BY started_at DESC LIMIT n) and "a site
-- over a time range" (started_at BETWEEN a AND b) are both one index range scan.
CREATE INDEX checks_site_started_at ON checks (site, started_at DESC);

-- Everything that was on the topic but cannot be a check, with the reason.
-- One row per Kafka record: a redelivered poison message is stored once.
CREATE TABLE dead_letters (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    key              bytea,
    payload          bytea,
    reason           text NOT NULL,
    inserted_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);

-- Where each drain group stands in each partition: the next offset to read.
-- Written in the same transaction as the rows, so it is never ahead of or
-- behind what is stored; Kafka's committed offsets only mirror it.
CREATE TABLE drain_offsets (
    kafka_group      text NOT NULL,
    kafka_topic      text NOT NULL,
    kafka_partition  integer NOT NULL,
    next_offset      bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kafka_group, kafka_topic, kafka_partition)
);
