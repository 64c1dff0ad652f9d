//! Delivering an event to a notifier: what each kind is ([`config`]), what
//! each HTTP service receives ([`channels`]), email ([`email`]), and the
//! one send that says what the service answered.

pub mod channels;
pub mod config;
pub mod email;

use std::time::Duration;

use serde_json::Value;

pub use config::{Kind, Notifier};

/// Sends one event; `Ok` with what the service answered (`202 Accepted`),
/// or why it failed in one line, never the URL or key (secrets: webhook
/// URLs carry tokens, Telegram's carries the bot's).
pub async fn send(
    client: &reqwest::Client,
    notifier: &Notifier,
    payload: &Value,
    timeout: Duration,
) -> Result<String, String> {
    if notifier.kind == Kind::Email {
        return email::send(notifier, payload, timeout).await;
    }
    let request = channels::request(notifier, payload)?;
    let mut builder = client
        .post(&request.url)
        .header(reqwest::header::CONTENT_TYPE, &request.content_type)
        .body(request.body);
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    if let Some(id) = payload["event_id"].as_str() {
        // Receivers that dedupe on a header find the event id there too.
        builder = builder.header("Idempotency-Key", id);
    }
    let response = builder.send().await.map_err(|e| {
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
    if status.is_redirection() {
        return Err(format!(
            "answered {status} (redirect to {}), not followed: set the notifier's URL to where it points",
            location(&response)
        ));
    }
    let body = answer_text(response).await;
    if status.is_success() {
        Ok(format!("{status}{body}"))
    } else {
        Err(format!("answered {status}{body}"))
    }
}

/// The start of a service's answer, for a person: `: {"ok":false,...}`,
/// on one line, escaped; empty without one.
async fn answer_text(response: reqwest::Response) -> String {
    let bytes = response.bytes().await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]);
    let text = crate::escape::terminal(text.trim());
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

/// Where a redirect points (the receiver's own answer, not the notifier's
/// URL: safe to show, credentials removed).
fn location(response: &reqwest::Response) -> String {
    response
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
        .unwrap_or_else(|| "nowhere".to_owned())
}
