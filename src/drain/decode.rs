//! A Kafka record to a [`Check`] (or a [`Run`] of the run ledger), or the
//! reason it cannot be one (which sends it to `dead_letters`).

use serde::Deserialize;

use crate::message::{Check, Record, Run, SCHEMA};
use crate::store::storable;

/// The largest payload taken as a check. A real one is under 2 KiB (URL and
/// error text included); anything far larger is not ours.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Decodes and range-checks one payload. The reason of a refusal is always
/// storable (no NUL, bounded length): it may quote the payload.
pub fn decode(payload: Option<&[u8]>) -> Result<Record, String> {
    match decode_unchecked(payload) {
        Ok(check) => Ok(Record::Check(check)),
        // Only what is not a check is tried as a run record: checks, nearly
        // every record, are parsed once.
        Err(reason) => match payload.and_then(|p| serde_json::from_slice::<Run>(p).ok()) {
            Some(run) if run.record == Run::RECORD => check_run(run).map(Record::Run),
            _ => Err(reason),
        }
        .map_err(|reason| storable(&reason)),
    }
}

/// Range-checks a run record.
fn check_run(run: Run) -> Result<Run, String> {
    if run.schema != SCHEMA {
        return Err(format!(
            "unknown schema version {} of a run record",
            run.schema
        ));
    }
    if run.location.is_empty() || run.job.is_empty() {
        return Err("a run record without a location or a job".to_owned());
    }
    let texts = [&run.location, &run.job, &run.outcome];
    if texts
        .into_iter()
        .chain(run.shard.iter())
        .any(|t| t.contains('\0'))
    {
        return Err("a run record's text contains a NUL character".to_owned());
    }
    if !(run.tick_s.is_finite() && run.tick_s > 0.0) {
        return Err(format!(
            "a run record's tick_s {} is not a duration",
            run.tick_s
        ));
    }
    let max = i32::MAX as u64;
    if run.sites_due > max || run.checked > max || run.published > max {
        return Err("a run record's counts are out of range".to_owned());
    }
    Ok(run)
}

fn decode_unchecked(payload: Option<&[u8]>) -> Result<Check, String> {
    let payload = payload
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "empty payload".to_owned())?;
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload of {} bytes is larger than the {MAX_PAYLOAD_BYTES} bytes a check can be",
            payload.len()
        ));
    }
    let check: Check = serde_json::from_slice(payload).map_err(|e| {
        // Name the schema version when that is what differs, rather than
        // the first field the other version lacks.
        #[derive(Deserialize)]
        struct Version {
            schema: Option<serde_json::Value>,
        }
        match serde_json::from_slice::<Version>(payload) {
            Err(_) if e.is_syntax() || e.is_eof() => format!("not JSON: {e}"),
            Ok(Version { schema: Some(v) }) if v != serde_json::json!(SCHEMA) => {
                format!("unknown schema version {v}")
            }
            _ => format!("not a check: {e}"),
        }
    })?;
    if check.schema != SCHEMA {
        return Err(format!("unknown schema version {}", check.schema));
    }
    if check.site.is_empty() {
        return Err("site is empty".to_owned());
    }
    // PostgreSQL refuses a NUL in `text`: one such record would fail its
    // whole batch, on every run.
    let texts = [
        ("site", Some(&check.site)),
        ("url", Some(&check.url)),
        ("final_url", check.final_url.as_ref()),
        ("method", Some(&check.method)),
        ("location", Some(&check.location)),
        ("reason", check.reason.as_ref()),
        ("regex", check.regex.as_ref()),
        ("error", check.error.as_ref()),
    ];
    for (field, value) in texts {
        if value.is_some_and(|v| v.contains('\0')) {
            return Err(format!(
                "{field} contains a NUL character, which PostgreSQL cannot store"
            ));
        }
    }
    // HTTP allows any three digits; servers do send 599 and 799.
    if let Some(code) = check.status_code
        && !(100..=999).contains(&code)
    {
        return Err(format!("status_code {code} is out of range 100-999"));
    }
    let durations = [
        ("response_time_ms", Some(check.response_time_ms)),
        ("dns_ms", check.dns_ms),
        ("connect_ms", check.connect_ms),
        ("tls_ms", check.tls_ms),
        ("ttfb_ms", check.ttfb_ms),
    ];
    for (field, value) in durations {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(format!("{field} {v} is not a duration"));
        }
    }
    if check.redirects.is_some_and(|r| r > i32::MAX as u32) {
        return Err("redirects is out of range".to_owned());
    }
    if check.body_bytes.is_some_and(|b| b > i64::MAX as u64) {
        return Err("body_bytes is out of range".to_owned());
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MAX_REASON_CHARS;

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "schema": 1, "check_id": "01a20381-0368-717d-871f-86ea8b5889a8", "site": "x",
            "url": "http://127.0.0.1:1/", "method": "GET", "location": "vm",
            "started_at": "2026-11-22T13:45:16.392Z", "up": false, "status_code": null,
            "reason": null, "response_time_ms": 0.515, "dns_ms": null, "connect_ms": null,
            "tls_ms": null, "ttfb_ms": null, "ip": "127.0.0.1", "regex": null,
            "regex_matched": null, "body_bytes": null, "tls_expires_at": null,
            "error_kind": "connect", "error": "Connection refused (os error 111)"
        })
    }

    fn reason(v: &serde_json::Value) -> String {
        decode(Some(&serde_json::to_vec(v).unwrap())).unwrap_err()
    }

    #[test]
    fn a_valid_message_decodes() {
        let Record::Check(check) = decode(Some(&serde_json::to_vec(&valid()).unwrap())).unwrap()
        else {
            panic!("a check")
        };
        assert_eq!(check.site, "x");
        assert_eq!(check.degraded, None, "an older message has no `degraded`");
        let mut newer = valid();
        newer["degraded"] = true.into();
        newer["a_field_of_tomorrow"] = "ignored".into();
        let Record::Check(check) = decode(Some(&serde_json::to_vec(&newer).unwrap())).unwrap()
        else {
            panic!("a check")
        };
        assert_eq!(check.degraded, Some(true));
    }

    #[test]
    fn each_kind_of_poison_gets_its_reason() {
        assert!(
            decode(Some(b"{not json"))
                .unwrap_err()
                .starts_with("not JSON: ")
        );
        assert_eq!(decode(None).unwrap_err(), "empty payload");
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(
            decode(Some(&huge))
                .unwrap_err()
                .starts_with("payload of 65537 bytes")
        );
        let mut v = valid();
        v["schema"] = 2.into();
        v.as_object_mut().unwrap().remove("site");
        assert_eq!(reason(&v), "unknown schema version 2");
        let mut v = valid();
        v.as_object_mut().unwrap().remove("check_id");
        assert!(
            reason(&v).starts_with("not a check: missing field `check_id`"),
            "{}",
            reason(&v)
        );
        let mut v = valid();
        v["status_code"] = 1000.into();
        assert_eq!(reason(&v), "status_code 1000 is out of range 100-999");
        let mut v = valid();
        v["dns_ms"] = (-1.0).into();
        assert_eq!(reason(&v), "dns_ms -1 is not a duration");
        let mut v = valid();
        v["status_code"] = 70000.into();
        assert!(
            reason(&v).starts_with("not a check: invalid value: integer `70000`"),
            "{}",
            reason(&v)
        );
        for field in ["site", "url", "location", "error", "regex"] {
            let mut v = valid();
            v[field] = "a\u{0}b".into();
            assert_eq!(
                reason(&v),
                format!("{field} contains a NUL character, which PostgreSQL cannot store")
            );
        }
    }

    #[test]
    fn a_reason_is_always_storable() {
        // serde quotes the offending value: a NUL in it must not reach PostgreSQL.
        let payload = b"{\"schema\": 1, \"error_kind\": \"x\\u0000y\"}";
        let _ = decode(Some(payload));
        let mut v = valid();
        v["error_kind"] = "bad\u{0}kind".into();
        let r = reason(&v);
        assert!(!r.contains('\0'), "{r:?}");
        assert!(r.contains("\\u{0}"), "{r:?}");
        let long = storable(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
    }
}
