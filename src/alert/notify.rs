//! Delivering an event to a notifier: a webhook gets the event as it is,
//! Slack `{"text": summary}`, Alertmanager an alert on `/api/v2/alerts`.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::policy::{Kind, Notifier};
use crate::message::rfc3339_ms;

/// How long an alert sent to Alertmanager fires without news: Alertmanager
/// resolves an alert whose `endsAt` passes, and `alert` sends a firing
/// alert once (and at each `remind_every`), so the horizon is long; the
/// `resolved` event ends it at once.
pub const ALERTMANAGER_HORIZON: time::Duration = time::Duration::hours(24);

/// The request body for `notifier`, and the URL it goes to.
pub fn request(notifier: &Notifier, payload: &Value) -> (String, Value) {
    let url = notifier.url.expose().to_owned();
    match notifier.kind {
        Kind::Webhook => (url, payload.clone()),
        Kind::Slack => {
            let summary = payload["summary"].as_str().unwrap_or_default();
            (url, json!({ "text": crate::escape::slack(summary) }))
        }
        Kind::Alertmanager => {
            let url = if url.trim_end_matches('/').ends_with("/api/v2/alerts") {
                url
            } else {
                format!("{}/api/v2/alerts", url.trim_end_matches('/'))
            };
            (url, json!([alertmanager_alert(payload)]))
        }
    }
}

/// One Alertmanager alert: labels name the condition (so a `resolved`
/// event ends the alert its `down` started), annotations carry the rest.
fn alertmanager_alert(p: &Value) -> Value {
    let kind = p["kind"].as_str().unwrap_or_default();
    let condition = if kind == "resolved" {
        p["resolves"].as_str().unwrap_or("down")
    } else {
        kind
    };
    let is_site = !p["site"].is_null();
    let (alertname, severity) = match (condition, is_site) {
        ("down" | "reminder", _) => ("SiteDown", "critical"),
        ("stale", true) => ("SiteStale", "warning"),
        ("stale", false) => ("ProberStale", "warning"),
        ("tls_expiring", _) => ("TlsCertificateExpiring", "warning"),
        ("prober_down", _) => ("ProberDown", "critical"),
        _ => ("Sitewatch", "warning"),
    };
    let at = p["at"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let ends = if kind == "resolved" {
        at
    } else {
        at + ALERTMANAGER_HORIZON
    };
    let mut labels = json!({ "alertname": alertname, "severity": severity });
    for key in ["site", "location"] {
        if let Some(v) = p.get(key).and_then(Value::as_str) {
            labels[key] = v.into();
        }
    }
    let mut annotations = json!({
        "summary": p["summary"],
        "event_id": p["event_id"],
    });
    for key in ["url", "error_kind", "error", "tls_expires_at"] {
        if let Some(v) = p.get(key).and_then(Value::as_str) {
            annotations[key] = v.into();
        }
    }
    json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": p["since"],
        "endsAt": rfc3339_ms::format(&ends),
    })
}

/// Sends one event; the error says why in one line, never the URL (a
/// secret: webhook URLs carry tokens).
pub async fn send(
    client: &reqwest::Client,
    notifier: &Notifier,
    payload: &Value,
) -> Result<(), String> {
    let (url, body) = request(notifier, payload);
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(id) = payload["event_id"].as_str() {
        // Receivers that dedupe on a header find the event id there too.
        request = request.header("Idempotency-Key", id);
    }
    let response = request.send().await.map_err(|e| {
        let e = e.without_url();
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        let what = if e.is_timeout() {
            "timed out"
        } else {
            "failed"
        };
        format!("{what}: {cause}")
    })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        // The receiver's own answer, not the notifier's URL: safe to show.
        let to = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| {
                let text = String::from_utf8_lossy(l.as_bytes()).into_owned();
                let text = match url::Url::parse(&text) {
                    Ok(mut url) => {
                        crate::sites::strip_credentials(&mut url);
                        url.to_string()
                    }
                    Err(_) => text,
                };
                crate::escape::terminal(&text)
                    .chars()
                    .take(300)
                    .collect::<String>()
            })
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "nowhere".to_owned());
        Err(format!(
            "answered {status} (redirect to {to}), not followed: set the notifier's URL to where it points"
        ))
    } else {
        Err(format!("answered {status}"))
    }
}
