//! What each HTTP service receives for an event, in its documented shape,
//! every value from the event escaped for the service's format:
//!
//! - `webhook`: the event as it is, or the notifier's template of it;
//! - `slack`: `{"text"}`, Slack's three escapes;
//! - `alertmanager`: one alert on `/api/v2/alerts`;
//! - `pagerduty`: Events API v2, `trigger` and `resolve` with one
//!   `dedup_key` per outage;
//! - `opsgenie`: Alert API, create with an `alias` per outage, close it
//!   on resolve;
//! - `teams`: an Adaptive Card for a Workflows webhook;
//! - `discord`: `content` with no mention allowed;
//! - `telegram`: Bot API `sendMessage`, plain text;
//! - `google_chat`: a card whose text is HTML-escaped;
//! - `ntfy`: JSON publishing to the server, the topic from the URL.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::{Kind, Notifier};
use crate::message::rfc3339_ms;

/// How long an alert sent to Alertmanager fires without news: Alertmanager
/// resolves an alert whose `endsAt` passes, and `alert` sends a firing
/// alert once (and at each `remind_every`), so the horizon is long; the
/// `resolved` event ends it at once.
pub const ALERTMANAGER_HORIZON: time::Duration = time::Duration::hours(24);

/// One request to a service.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub url: String,
    pub content_type: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    fn json(url: String, body: &Value) -> HttpRequest {
        HttpRequest {
            url,
            content_type: "application/json".to_owned(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        }
    }
}

/// The request that delivers `payload` (an event) to `notifier`; an error
/// when the notifier's template cannot render it.
pub fn request(notifier: &Notifier, payload: &Value) -> Result<HttpRequest, String> {
    let url = notifier.secret.expose().to_owned();
    let e = Event(payload);
    Ok(match notifier.kind {
        Kind::Webhook => match &notifier.template {
            None => HttpRequest::json(url, payload),
            Some(template) => HttpRequest {
                url,
                content_type: notifier.content_type.clone(),
                headers: Vec::new(),
                body: render(template, &notifier.content_type, payload)?.into_bytes(),
            },
        },
        Kind::Slack => {
            HttpRequest::json(url, &json!({ "text": crate::escape::slack(e.summary()) }))
        }
        Kind::Alertmanager => {
            let url = if url.trim_end_matches('/').ends_with("/api/v2/alerts") {
                url
            } else {
                format!("{}/api/v2/alerts", url.trim_end_matches('/'))
            };
            HttpRequest::json(url, &json!([alertmanager_alert(payload)]))
        }
        Kind::PagerDuty => HttpRequest::json(
            format!("{}/v2/enqueue", notifier.endpoint),
            &pagerduty(notifier.secret.expose(), &e),
        ),
        Kind::Opsgenie => {
            let mut request = opsgenie(&notifier.endpoint, &e);
            request.headers.push((
                "Authorization",
                format!("GenieKey {}", notifier.secret.expose()),
            ));
            request
        }
        Kind::Teams => HttpRequest::json(url, &teams(&e)),
        Kind::Discord => HttpRequest::json(
            url,
            &json!({
                "content": cut(&format!("**{}**\n{}", crate::escape::commonmark(&e.title()), crate::escape::commonmark(e.summary())), 2000),
                "allowed_mentions": { "parse": [] },
            }),
        ),
        Kind::Telegram => HttpRequest::json(
            format!(
                "{}/bot{}/sendMessage",
                notifier.endpoint,
                notifier.secret.expose()
            ),
            &json!({
                "chat_id": notifier.chat_id,
                "text": cut(&e.text(), 4096),
                "disable_web_page_preview": true,
            }),
        ),
        Kind::GoogleChat => HttpRequest::json(url, &google_chat(&e)),
        Kind::Ntfy => ntfy(&url, &e)?,
        Kind::Email => return Err("email is not sent over HTTP".to_owned()),
    })
}

/// An event's payload, read.
#[derive(Clone, Copy)]
pub struct Event<'a>(pub &'a Value);

impl<'a> Event<'a> {
    pub fn str(&self, key: &str) -> Option<&'a str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn kind(&self) -> &'a str {
        self.str("kind").unwrap_or("event")
    }

    pub fn summary(&self) -> &'a str {
        self.str("summary").unwrap_or_default()
    }

    /// What the event is about: its site, or its prober's location.
    pub fn subject(&self) -> String {
        match (self.str("site"), self.str("location")) {
            (Some(site), _) => site.to_owned(),
            (None, Some(location)) => format!("prober {location}"),
            (None, None) => "sitewatch".to_owned(),
        }
    }

    /// The condition it starts or ends: `down` for a reminder, what a
    /// `resolved` resolves.
    pub fn condition(&self) -> &'a str {
        match self.kind() {
            "resolved" => self.str("resolves").unwrap_or("down"),
            "reminder" => "down",
            kind => kind,
        }
    }

    pub fn resolves(&self) -> bool {
        self.kind() == "resolved"
    }

    /// `critical`, `warning` or `info` (PagerDuty's names).
    pub fn severity(&self) -> &'static str {
        if self.resolves() {
            return "info";
        }
        match self.condition() {
            "down" | "prober_down" => "critical",
            "stale" | "degraded" | "tls_expiring" => "warning",
            _ => "info",
        }
    }

    /// A title for a person: `api is down`, `api is up again`.
    pub fn title(&self) -> String {
        let subject = self.subject();
        match (self.kind(), self.condition()) {
            ("resolved", "degraded") => format!("{subject} is fast again"),
            ("resolved", "test") => "the test from sitewatch is over".to_owned(),
            ("resolved", "stale") => format!("{subject} is checked again"),
            ("resolved", _) => format!("{subject} is up again"),
            ("down", _) => format!("{subject} is down"),
            ("reminder", _) => format!("{subject} is still down"),
            ("stale", _) => format!("{subject} is not checked any more"),
            ("degraded", _) => format!("{subject} is slow"),
            ("tls_expiring", _) => format!("{subject}'s certificate expires soon"),
            ("prober_down", _) => format!("{subject} lost its network"),
            ("test", _) => "a test from sitewatch".to_owned(),
            (kind, _) => format!("{subject}: {kind}"),
        }
    }

    /// One key per outage: the same for a `down`, its reminders and its
    /// `resolved`; a new one for the next outage. PagerDuty's `dedup_key`
    /// and Opsgenie's `alias` (at most 255 characters: a longer one is the
    /// hash of it).
    pub fn incident_key(&self) -> String {
        let condition = self.condition();
        let start = match (condition, self.kind()) {
            ("down", "resolved") => self.str("outage_start"),
            ("down", _) => self.str("since"),
            ("test", _) => self.str("event_id"),
            _ => None,
        };
        let mut key = format!("sitewatch/{}/{condition}", self.subject());
        if let Some(start) = start {
            key.push('/');
            key.push_str(start);
        }
        if key.chars().count() > 255 {
            use sha2::Digest;
            let hash = sha2::Sha256::digest(key.as_bytes());
            key = format!(
                "sitewatch/{}",
                hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
        key
    }

    /// Its facts, labelled, for a person: the site, URL, locations, status,
    /// error, certificate, latency, and when.
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut facts = Vec::new();
        let mut add = |label, value: Option<String>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                facts.push((label, v));
            }
        };
        add("Site", self.str("site").map(str::to_owned));
        add("Location", self.str("location").map(str::to_owned));
        add("URL", self.str("url").map(str::to_owned));
        add("State", self.str("state").map(str::to_owned));
        if let (Some(down), Some(total)) = (
            self.0.get("locations_down").and_then(Value::as_u64),
            self.0.get("locations_total").and_then(Value::as_u64),
        ) && total > 0
        {
            add("Locations down", Some(format!("{down} of {total}")));
        }
        add(
            "Status",
            self.0
                .get("status_code")
                .and_then(Value::as_i64)
                .map(|c| c.to_string()),
        );
        add(
            "Error",
            match (self.str("error_kind"), self.str("error")) {
                (Some(k), Some(e)) => Some(format!("{k}: {e}")),
                (None, Some(e)) => Some(e.to_owned()),
                _ => None,
            },
        );
        if let Some(ms) = self.0.get("response_time_ms").and_then(Value::as_f64) {
            let limit = self.0.get("degraded_after_ms").and_then(Value::as_f64);
            add(
                "Response time",
                Some(match limit {
                    Some(l) => format!("{ms:.0} ms (slow past {l:.0} ms)"),
                    None => format!("{ms:.0} ms"),
                }),
            );
        }
        add(
            "Certificate expires",
            self.str("tls_expires_at").map(str::to_owned),
        );
        if self.resolves() {
            add("Started", self.str("outage_start").map(str::to_owned));
            add("Ended", self.str("outage_end").map(str::to_owned));
            add(
                "Lasted",
                self.0
                    .get("duration_s")
                    .and_then(Value::as_f64)
                    .map(|s| super::super::model::span(time::Duration::seconds_f64(s))),
            );
        } else {
            add("Since", self.str("since").map(str::to_owned));
        }
        add("At", self.str("at").map(str::to_owned));
        add("Event", self.str("event_id").map(str::to_owned));
        facts
    }

    /// Plain text: the summary, then the facts a line each.
    pub fn text(&self) -> String {
        let mut text = format!("{}\n{}\n", self.title(), self.summary());
        for (label, value) in self.facts() {
            text.push_str(&format!("\n{label}: {value}"));
        }
        text
    }
}

/// At most `max` characters, `…` at the end when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The template engine's environment for a body of `content_type`: values
/// are escaped as JSON in a JSON body, as HTML in an HTML or XML one.
fn environment(content_type: &str) -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    let escape = if content_type.contains("json") {
        minijinja::AutoEscape::Json
    } else if content_type.contains("html") || content_type.contains("xml") {
        minijinja::AutoEscape::Html
    } else {
        minijinja::AutoEscape::None
    };
    env.set_auto_escape_callback(move |_| escape);
    env
}

/// Whether `template` parses, with why not.
pub fn check_template(template: &str) -> Result<(), String> {
    environment("application/json")
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| crate::escape::controls(&e.to_string()))
}

/// `template` rendered with the event's fields.
pub fn render(template: &str, content_type: &str, payload: &Value) -> Result<String, String> {
    environment(content_type)
        .render_str(template, payload)
        .map_err(|e| {
            format!(
                "the template cannot render the event: {}",
                crate::escape::controls(&e.to_string())
            )
        })
}

/// One Alertmanager alert: labels name the condition (so a `resolved`
/// event ends the alert its `down` started), annotations carry the rest.
fn alertmanager_alert(p: &Value) -> Value {
    let e = Event(p);
    let is_site = !p["site"].is_null();
    let (alertname, severity) = match (e.condition(), is_site) {
        ("down", _) => ("SiteDown", "critical"),
        ("stale", true) => ("SiteStale", "warning"),
        ("stale", false) => ("ProberStale", "warning"),
        ("degraded", _) => ("SiteDegraded", "warning"),
        ("tls_expiring", _) => ("TlsCertificateExpiring", "warning"),
        ("prober_down", _) => ("ProberDown", "critical"),
        ("test", _) => ("SitewatchTest", "info"),
        _ => ("Sitewatch", "warning"),
    };
    let at = e
        .str("at")
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .unwrap_or_else(OffsetDateTime::now_utc);
    let ends = if e.resolves() || e.kind() == "test" {
        at
    } else {
        at + ALERTMANAGER_HORIZON
    };
    let mut labels = json!({ "alertname": alertname, "severity": severity });
    for key in ["site", "location"] {
        if let Some(v) = e.str(key) {
            labels[key] = v.into();
        }
    }
    let mut annotations = json!({
        "summary": p["summary"],
        "event_id": p["event_id"],
    });
    for key in ["url", "error_kind", "error", "tls_expires_at"] {
        if let Some(v) = e.str(key) {
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

/// PagerDuty Events API v2: `trigger` (with the payload) or `resolve`, one
/// `dedup_key` per outage.
fn pagerduty(routing_key: &str, e: &Event) -> Value {
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": if e.resolves() { "resolve" } else { "trigger" },
        "dedup_key": e.incident_key(),
        "client": "sitewatch",
    });
    if !e.resolves() {
        let details: serde_json::Map<String, Value> = e
            .facts()
            .into_iter()
            .map(|(label, value)| (label.to_owned(), value.into()))
            .collect();
        body["payload"] = json!({
            "summary": cut(e.summary(), 1024),
            "source": e.str("url").or(e.str("location")).unwrap_or("sitewatch"),
            "severity": e.severity(),
            "timestamp": e.str("at"),
            "component": e.subject(),
            "class": e.condition(),
            "custom_details": details,
        });
    }
    body
}

/// Opsgenie Alert API: create with an `alias` per outage, or close the
/// alert of that alias.
fn opsgenie(endpoint: &str, e: &Event) -> HttpRequest {
    let alias = e.incident_key();
    if e.resolves() {
        let encoded: String =
            url::form_urlencoded::byte_serialize(alias.as_bytes()).collect::<String>();
        return HttpRequest::json(
            format!("{endpoint}/v2/alerts/{encoded}/close?identifierType=alias"),
            &json!({ "source": "sitewatch", "note": cut(e.summary(), 25_000) }),
        );
    }
    let priority = match e.severity() {
        "critical" => "P1",
        "warning" => "P3",
        _ => "P5",
    };
    let details: serde_json::Map<String, Value> = e
        .facts()
        .into_iter()
        .map(|(label, value)| (label.to_owned(), cut(&value, 8000).into()))
        .collect();
    HttpRequest::json(
        format!("{endpoint}/v2/alerts"),
        &json!({
            "message": cut(&e.title(), 130),
            "alias": alias,
            "description": cut(e.summary(), 15_000),
            "priority": priority,
            "source": "sitewatch",
            "tags": ["sitewatch", e.condition()],
            "entity": cut(&e.subject(), 512),
            "details": details,
        }),
    )
}

/// A Microsoft Teams message for a Workflows webhook: one Adaptive Card.
fn teams(e: &Event) -> Value {
    let color = match e.severity() {
        "critical" => "Attention",
        "warning" => "Warning",
        _ => "Good",
    };
    let facts: Vec<Value> = e
        .facts()
        .into_iter()
        .map(|(label, value)| json!({ "title": label, "value": crate::escape::commonmark(&value) }))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": crate::escape::commonmark(&e.title()), "weight": "Bolder", "size": "Medium", "color": color, "wrap": true },
                    { "type": "TextBlock", "text": crate::escape::commonmark(e.summary()), "wrap": true },
                    { "type": "FactSet", "facts": facts },
                ],
            },
        }],
    })
}

/// A Google Chat message: a card (its widgets' text is a subset of HTML:
/// every value escaped).
fn google_chat(e: &Event) -> Value {
    let x = crate::escape::xml;
    let mut facts = String::new();
    for (label, value) in e.facts() {
        facts.push_str(&format!("<b>{}</b>: {}<br>", x(label), x(&value)));
    }
    json!({
        "cardsV2": [{
            "cardId": "sitewatch",
            "card": {
                // The header is plain text of sitewatch's own: every name is
                // in the widgets below, escaped.
                "header": { "title": format!("sitewatch: {}", e.kind()), "subtitle": e.condition() },
                "sections": [{
                    "widgets": [
                        { "textParagraph": { "text": x(&cut(e.summary(), 4000)) } },
                        { "textParagraph": { "text": facts } },
                    ],
                }],
            },
        }],
    })
}

/// ntfy: JSON publishing to the server (the topic URL's parent), the
/// topic the URL's last segment; priority from the severity.
fn ntfy(url: &str, e: &Event) -> Result<HttpRequest, String> {
    let mut server = url::Url::parse(url).map_err(|_| "the ntfy URL is not a URL".to_owned())?;
    let topic = server
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            "the ntfy URL names no topic: set it to the topic's URL, such as https://ntfy.sh/alerts"
                .to_owned()
        })?;
    if let Ok(mut segments) = server.path_segments_mut() {
        segments.pop().push("");
    }
    let (priority, tags) = match e.severity() {
        "critical" => (5, ["rotating_light"]),
        "warning" => (4, ["warning"]),
        _ => (3, ["white_check_mark"]),
    };
    Ok(HttpRequest::json(
        server.to_string(),
        &json!({
            "topic": topic,
            "title": cut(&e.title(), 250),
            "message": cut(&e.text(), 4000),
            "priority": priority,
            "tags": tags,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> Value {
        json!({
            "event_id": "5f0c1d8e-0000-4000-8000-000000000001",
            "kind": "down", "site": "api [click](https://evil.example) @everyone <b>x</b>",
            "url": "https://api.example.com/health", "state": "down",
            "at": "2026-12-07T10:00:00.000Z", "since": "2026-12-07T09:58:00.000Z",
            "locations_down": 1, "locations_total": 1, "status_code": 503,
            "error_kind": null, "error": null, "tls_expires_at": null,
            "summary": "api is down <!channel> *now*",
        })
    }

    fn resolved() -> Value {
        let mut p = down();
        p["kind"] = "resolved".into();
        p["resolves"] = "down".into();
        p["outage_start"] = "2026-12-07T09:58:00.000Z".into();
        p["outage_end"] = "2026-12-07T10:05:00.000Z".into();
        p["duration_s"] = 420.0.into();
        p
    }

    #[test]
    fn a_down_and_its_resolved_share_one_incident_key_and_the_next_outage_another() {
        let d = down();
        let r = resolved();
        assert_eq!(Event(&d).incident_key(), Event(&r).incident_key());
        let mut reminder = d.clone();
        reminder["kind"] = "reminder".into();
        assert_eq!(Event(&reminder).incident_key(), Event(&d).incident_key());
        let mut next = d.clone();
        next["since"] = "2026-12-08T00:00:00.000Z".into();
        assert_ne!(Event(&next).incident_key(), Event(&d).incident_key());
        let mut long = d.clone();
        long["site"] = "x".repeat(400).into();
        assert!(Event(&long).incident_key().len() <= 255);
    }

    #[test]
    fn pagerduty_triggers_and_resolves_by_dedup_key() {
        let d = pagerduty("R0UTING", &Event(&down()));
        assert_eq!(d["event_action"], "trigger");
        assert_eq!(d["payload"]["severity"], "critical");
        assert_eq!(d["payload"]["summary"], "api is down <!channel> *now*");
        let r = pagerduty("R0UTING", &Event(&resolved()));
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], d["dedup_key"]);
        assert!(r.get("payload").is_none());
    }

    #[test]
    fn chat_messages_escape_markup_and_mentions() {
        let p = down();
        let e = Event(&p);
        let teams = teams(&e).to_string();
        assert!(!teams.contains("[click](https"), "{teams}");
        assert!(teams.contains(r"\\[click\\]\\(https"), "{teams}");
        let chat = google_chat(&e).to_string();
        assert!(chat.contains("&lt;b&gt;x&lt;/b&gt;"), "{chat}");
        assert!(!chat.contains("<b>x</b>"), "{chat}");
    }

    #[test]
    fn ntfy_publishes_to_the_server_with_the_topic_of_the_url() {
        let p = down();
        let r = ntfy("https://ntfy.example/base/alerts?auth=tok", &Event(&p)).unwrap();
        assert_eq!(r.url, "https://ntfy.example/base/?auth=tok");
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["topic"], "alerts");
        assert_eq!(body["priority"], 5);
        assert!(ntfy("https://ntfy.example/", &Event(&p)).is_err());
    }

    #[test]
    fn a_json_template_escapes_every_value_as_json() {
        let body = render(
            r#"{"text": {{ summary }}, "site": {{ site }}}"#,
            "application/json",
            &down(),
        )
        .unwrap();
        let parsed: Value = serde_json::from_str(&body).expect(&body);
        assert_eq!(parsed["text"], "api is down <!channel> *now*");
        let html = render("<p>{{ summary }}</p>", "text/html", &down()).unwrap();
        assert_eq!(html, "<p>api is down &lt;!channel&gt; *now*</p>");
    }
}
