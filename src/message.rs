//! The Kafka message: one JSON object per check, keyed by site name. This is
//! the one place its shape is defined, for the producer and the consumer.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The message schema version; bumped on an incompatible change.
pub const SCHEMA: u32 = 1;

/// Why a check did not complete. `null` in the message when the request
/// completed, whatever its status code or regex result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// The host name did not resolve.
    Dns,
    /// No TCP connection: refused, unreachable, reset during connect.
    Connect,
    /// The TLS handshake failed, the certificate included.
    Tls,
    /// The check's timeout ran out, in whatever phase.
    Timeout,
    /// Connected, but no valid HTTP response came (closed, malformed).
    Http,
    /// The response came but reading its body failed.
    Body,
    /// Redirects that go nowhere: a loop, more than the site's
    /// `max_redirects`, or a `Location` that cannot be followed.
    Redirect,
}

impl ErrorKind {
    /// The name used in the message and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http => "http",
            ErrorKind::Body => "body",
            ErrorKind::Redirect => "redirect",
        }
    }
}

/// One check's result, exactly as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub schema: u32,
    /// Unique per check (UUIDv7, so time-ordered): the idempotency key.
    pub check_id: Uuid,
    pub site: String,
    pub url: String,
    pub method: String,
    pub location: String,
    #[serde(with = "rfc3339_ms")]
    pub started_at: OffsetDateTime,
    /// No error, status as expected, regex matched when one is set.
    pub up: bool,
    /// With the site's `degraded_after`: up but slower than that (false
    /// when down); null without it. Absent from older messages.
    #[serde(default)]
    pub degraded: Option<bool>,
    pub status_code: Option<u16>,
    pub reason: Option<String>,
    /// Whole check, first DNS query to last body byte (or to the failure).
    pub response_time_ms: f64,
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    pub ttfb_ms: Option<f64>,
    /// The address connected to (or the first one tried).
    pub ip: Option<IpAddr>,
    pub regex: Option<String>,
    pub regex_matched: Option<bool>,
    /// With the site's `json` conditions: whether the body held them.
    #[serde(default)]
    pub json_matched: Option<bool>,
    pub body_bytes: Option<u64>,
    /// Redirects followed before the last response (0 when none was).
    /// Absent from older messages.
    #[serde(default)]
    pub redirects: Option<u32>,
    /// The URL of the last request, credentials removed: where the
    /// redirects led (the site's URL when none was followed).
    #[serde(default)]
    pub final_url: Option<String>,
    #[serde(with = "rfc3339_ms::option")]
    pub tls_expires_at: Option<OffsetDateTime>,
    pub error_kind: Option<ErrorKind>,
    /// Why the check is down, for a person: the failure, or (the request
    /// completed) the condition it failed, as `condition` says it.
    pub error: Option<String>,
    /// The first condition a completed check failed, with what was
    /// expected and what came (`status 503, expected 200-399`, `regex
    /// `ok` not found in the body (12 bytes read)`, `json $.status:
    /// expected "UP", got "DOWN"`), or the threshold a degraded check
    /// passed (`response time 1234 ms, over degraded_after 1000 ms`); null
    /// otherwise. Absent from older messages.
    #[serde(default)]
    pub condition: Option<String>,
    /// The `probe-once` run that made it (its run record's `run_id`).
    /// Absent from older messages.
    #[serde(default)]
    pub run_id: Option<Uuid>,
    /// How many times the site was checked in its run before this result
    /// (1 without `retries`; more when a failure was tried again). Absent
    /// from older messages.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// A `dns://` check's response code (`NOERROR`, `NXDOMAIN`, ...).
    #[serde(default)]
    pub dns_rcode: Option<String>,
    /// A `dns://` check's answers of the type asked, as text (`192.0.2.1`,
    /// `10 mail.example.com.`).
    #[serde(default)]
    pub dns_answers: Option<Vec<String>>,
    /// An `icmp://` check's share of echo requests unanswered, 0 to 1.
    #[serde(default)]
    pub packet_loss: Option<f64>,
    /// The names the server's certificate covers (a `tls://` check).
    #[serde(default)]
    pub tls_names: Option<Vec<String>>,
    /// With the site's `conditions`: each one's outcome (expression,
    /// passed, the value it saw), in the site's order.
    #[serde(default)]
    pub conditions: Option<Vec<crate::expression::Outcome>>,
}

/// Whether a certificate expiry is one PostgreSQL stores and every reader
/// can compute with: 1970 to 9999. Anything else (a certificate claiming
/// year 0) says nothing about when it expires.
pub fn plausible_expiry(at: OffsetDateTime) -> bool {
    (1970..=9999).contains(&at.year())
}

impl Check {
    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a check always serializes")
    }
}

/// One `probe-once` run's record, the run ledger's entry: published on the
/// same topic after the run's checks are acknowledged (key
/// `run/<location>`), stored by `drain` in `runs`. `record` is always
/// `"run"`: a check has no such field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    pub record: String,
    /// Unique per run: a record delivered twice is stored once.
    pub run_id: Uuid,
    /// `probe-once`.
    pub job: String,
    pub location: String,
    /// `I/N` when the run checked one shard.
    pub shard: Option<String>,
    /// The scheduler's tick the run was told (`--tick`), in seconds: how
    /// often runs are expected.
    pub tick_s: f64,
    #[serde(with = "rfc3339_ms")]
    pub started_at: OffsetDateTime,
    #[serde(with = "rfc3339_ms")]
    pub finished_at: OffsetDateTime,
    pub sites_due: u64,
    pub checked: u64,
    /// Checks the broker acknowledged.
    pub published: u64,
    /// Checks that got any answer from their site (see
    /// [`crate::rule::answered`]): none of several means the prober's own
    /// network was down. Absent from older records.
    #[serde(default)]
    pub answered: Option<u64>,
    /// `ok`, `deadline` (stopped starting checks at its deadline), or the
    /// signal that stopped it (`SIGTERM`).
    pub outcome: String,
}

impl RunRecord {
    /// The value of `record` that marks a run record.
    pub const RECORD: &'static str = "run";

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a run always serializes")
    }
}

/// What a record on the topic is. Not boxed: nearly every record is a
/// check, decoded and moved once on drain's hot path, where a box would be
/// one allocation more per message for nothing.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Record {
    Check(Check),
    Run(RunRecord),
}

/// RFC 3339 in UTC with millisecond precision: `2026-11-22T13:45:01.123Z`.
pub mod rfc3339_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    use time::{OffsetDateTime, UtcOffset};

    /// Formats a timestamp the way every message carries it.
    pub fn format(t: &OffsetDateTime) -> String {
        let t = t.to_offset(UtcOffset::UTC);
        t.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .expect("a UTC timestamp always formats")
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }

    /// The same for optional fields.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let text = Option::<std::borrow::Cow<'de, str>>::deserialize(d)?;
            text.map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_check_round_trips_through_json_with_every_field_present() {
        let check = Check {
            schema: SCHEMA,
            check_id: Uuid::now_v7(),
            site: "s".into(),
            url: "https://example.com/".into(),
            method: "GET".into(),
            location: "here".into(),
            started_at: datetime!(2026-11-22 13:45:01.123456 UTC),
            up: false,
            status_code: None,
            reason: None,
            response_time_ms: 12.5,
            dns_ms: Some(1.0),
            connect_ms: None,
            tls_ms: None,
            ttfb_ms: None,
            ip: Some("127.0.0.1".parse().unwrap()),
            regex: None,
            regex_matched: None,
            json_matched: None,
            degraded: None,
            redirects: Some(0),
            final_url: Some("https://example.com/".into()),
            body_bytes: None,
            tls_expires_at: Some(datetime!(2030-01-02 03:04:05 UTC)),
            error_kind: Some(ErrorKind::Connect),
            error: Some("connection refused".into()),
            condition: None,
            run_id: Some(Uuid::nil()),
            attempts: None,
            dns_rcode: None,
            dns_answers: None,
            packet_loss: None,
            tls_names: None,
            conditions: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&check.to_json()).unwrap();
        assert_eq!(json["started_at"], "2026-11-22T13:45:01.123Z");
        assert_eq!(json["tls_expires_at"], "2030-01-02T03:04:05.000Z");
        assert_eq!(json["error_kind"], "connect");
        assert!(json["status_code"].is_null() && json.get("status_code").is_some());
        assert_eq!(json.as_object().unwrap().len(), 34);
        assert!(json["degraded"].is_null() && json.get("degraded").is_some());
        let back: Check = serde_json::from_value(json).unwrap();
        assert_eq!(back.started_at, datetime!(2026-11-22 13:45:01.123 UTC));
        assert_eq!(back.check_id, check.check_id);
    }

    /// The backticked first cells of the table under `heading` in the
    /// contract (docs/src/contract.md), each cell split at its commas.
    fn contract_fields(heading: &str) -> Vec<String> {
        let contract = include_str!("../docs/src/contract.md");
        contract
            .split_once(heading)
            .unwrap_or_else(|| panic!("the contract has no {heading}"))
            .1
            .lines()
            .skip_while(|l| !l.starts_with("| field |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .flat_map(|l| l.split('|').nth(1).unwrap_or_default().split(','))
            .map(|f| f.trim().trim_matches('`').to_owned())
            .collect()
    }

    fn keys(json: &[u8]) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap();
        value.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn the_contract_lists_every_field_of_the_message_and_the_run_record() {
        let check = Check {
            schema: SCHEMA,
            check_id: Uuid::nil(),
            site: "s".into(),
            url: "u".into(),
            method: "GET".into(),
            location: "l".into(),
            started_at: datetime!(2026-11-22 13:45:01 UTC),
            up: true,
            degraded: None,
            status_code: None,
            reason: None,
            response_time_ms: 1.0,
            dns_ms: None,
            connect_ms: None,
            tls_ms: None,
            ttfb_ms: None,
            ip: None,
            regex: None,
            regex_matched: None,
            json_matched: None,
            body_bytes: None,
            redirects: None,
            final_url: None,
            tls_expires_at: None,
            error_kind: None,
            error: None,
            condition: None,
            run_id: None,
            attempts: None,
            dns_rcode: None,
            dns_answers: None,
            packet_loss: None,
            tls_names: None,
            conditions: None,
        };
        let mut documented = contract_fields("## The message");
        let mut declared = keys(&check.to_json());
        documented.sort();
        declared.sort();
        assert_eq!(documented, declared, "docs/src/contract.md's message table");

        let run = RunRecord {
            schema: SCHEMA,
            record: RunRecord::RECORD.into(),
            run_id: Uuid::nil(),
            job: "probe-once".into(),
            location: "l".into(),
            shard: None,
            tick_s: 60.0,
            started_at: datetime!(2026-11-22 13:45:01 UTC),
            finished_at: datetime!(2026-11-22 13:45:02 UTC),
            sites_due: 1,
            checked: 1,
            published: 1,
            answered: Some(1),
            outcome: "ok".into(),
        };
        let mut documented = contract_fields("## The run record");
        let mut declared = keys(&run.to_json());
        documented.sort();
        declared.sort();
        assert_eq!(
            documented, declared,
            "docs/src/contract.md's run record table"
        );
    }
}
