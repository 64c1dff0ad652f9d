//! Email: one message per event over SMTP, with STARTTLS (`smtp://`, the
//! default port 587) or implicit TLS (`smtps://`, port 465), AUTH with the
//! URL's user and password, a plain-text and an HTML part. The message's
//! `Message-ID` is made of the event id, so a retry after a crash that
//! sent it already is recognized as the same message by mail clients.
//!
//! One message per event rather than a digest per run: each event is a
//! delivery of the outbox of its own, retried alone; a digest would tie
//! the fate of a run's events together (one refused address, and every
//! event waits), and a `resolved` would arrive in a digest with its `down`.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::channels::{Event, cut};
use super::config::Notifier;

/// The message for `payload`.
pub fn message(notifier: &Notifier, payload: &Value) -> Result<Message, String> {
    let e = Event(payload);
    let mailbox = |text: &str| {
        text.parse::<Mailbox>()
            .map_err(|_| format!("`{text}` is not an email address"))
    };
    let from = mailbox(notifier.from.as_deref().unwrap_or_default())?;
    let host = from.email.domain().to_owned();
    let mut builder = Message::builder()
        .from(from)
        .subject(cut(&format!("[sitewatch] {}", one_line(&e.title())), 200));
    for to in &notifier.to {
        builder = builder.to(mailbox(to)?);
    }
    if let Some(id) = e.str("event_id") {
        builder = builder.message_id(Some(format!("<{id}.{}@{host}>", notifier.name)));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(e.text(), html(&e)))
        .map_err(|err| format!("cannot write the message: {err}"))
}

fn one_line(text: &str) -> String {
    crate::escape::controls(text)
}

/// The HTML part: the title, the summary and the facts, every value
/// escaped.
fn html(e: &Event) -> String {
    let x = crate::escape::xml;
    let mut rows = String::new();
    for (label, value) in e.facts() {
        rows.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            x(label),
            x(&value)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><body>\n<h2>{}</h2>\n<p>{}</p>\n<table>\n{rows}</table>\n</body></html>\n",
        x(&e.title()),
        x(e.summary())
    )
}

/// Sends the message of `payload`; the error says why in one line, never
/// the URL (it holds the password).
pub async fn send(
    notifier: &Notifier,
    payload: &Value,
    timeout: Duration,
) -> Result<String, String> {
    let message = message(notifier, payload)?;
    let transport = transport(notifier.secret.expose(), timeout)?;
    let response = transport
        .send(message)
        .await
        .map_err(|e| format!("failed: {}", crate::escape::controls(&deepest(&e))))?;
    Ok(format!(
        "{} {}",
        response.code(),
        crate::escape::controls(&response.message().collect::<Vec<_>>().join(" "))
    ))
}

fn deepest(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        // lettre's errors repeat their cause in their own text.
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        cause = c.source();
    }
    text
}

/// The SMTP transport of `url`: `smtp://` with STARTTLS required (or
/// `?tls=none` for a relay on the same host or network that speaks no
/// TLS), `smtps://` with TLS from the first byte.
fn transport(url: &str, timeout: Duration) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let url = url::Url::parse(url).map_err(|_| "the SMTP URL is not a URL".to_owned())?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let tls_mode = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let parameters = || {
        TlsParameters::new_rustls(host.clone())
            .map_err(|e| format!("cannot set up TLS: {}", deepest(&e)))
    };
    let (tls, default_port) = match (url.scheme(), tls_mode.as_deref()) {
        ("smtps", None) => (Tls::Wrapper(parameters()?), 465),
        ("smtp", None | Some("starttls")) => (Tls::Required(parameters()?), 587),
        ("smtp", Some("none")) => (Tls::None, 25),
        (_, Some(other)) => {
            return Err(format!(
                "the SMTP URL's tls=`{}`: expected tls=starttls (the default) or tls=none with smtp://",
                crate::escape::controls(other)
            ));
        }
        _ => return Err("the SMTP URL is neither smtp:// nor smtps://".to_owned()),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(url.port().unwrap_or(default_port))
        .tls(tls)
        .timeout(Some(timeout));
    if !url.username().is_empty() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        builder = builder.credentials(Credentials::new(
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        ));
    }
    Ok(builder.build())
}

/// The content type of the HTML part, for tests that read the message.
pub const HTML: &str = "text/html";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notify::config::{Kind, Routes};
    use crate::secret::Secret;

    #[test]
    fn a_message_has_both_parts_escaped_and_the_event_in_its_id() {
        let notifier = Notifier {
            name: "mail".into(),
            kind: Kind::Email,
            secret: Secret::new("smtp://u:p@127.0.0.1:2525"),
            endpoint: String::new(),
            to: vec!["On Call <oncall@example.com>".into()],
            from: Some("sitewatch <sw@example.com>".into()),
            chat_id: None,
            template: None,
            content_type: String::new(),
            routes: Routes::default(),
        };
        let payload = serde_json::json!({
            "event_id": "5f0c1d8e-0000-4000-8000-000000000001", "kind": "down",
            "site": "<script>x</script>", "summary": "down\r\nBcc: evil@example.com",
        });
        let text = String::from_utf8(message(&notifier, &payload).unwrap().formatted()).unwrap();
        assert!(
            text.contains("Message-ID: <5f0c1d8e-0000-4000-8000-000000000001.mail@example.com>")
        );
        assert!(text.contains(HTML));
        assert!(text.contains("&lt;script&gt;"), "{text}");
        let headers = text.split("\r\n\r\n").next().unwrap();
        assert!(!headers.contains("Bcc:"), "{headers}");
        assert!(
            text.contains("Subject: [sitewatch] <script>x</script> is down"),
            "{text}"
        );
    }
}
