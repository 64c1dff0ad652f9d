//! Every notifier kind end to end: an outage stored through the real broker
//! and PostgreSQL, evaluated by `alert`, delivered to real receivers on
//! loopback that check each service's documented payload (PagerDuty
//! Events v2, Opsgenie's Alert API, a Teams Adaptive Card, Discord,
//! Telegram's Bot API, Google Chat, ntfy, a webhook template), a real SMTP
//! server (Python's aiosmtpd, STARTTLS and implicit TLS, AUTH) and
//! Debian's Pushgateway; `degraded` from a real server that slows down;
//! `alert test`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::alert::Rig;
use crate::support::receiver::{Received, Receiver};
use crate::support::{db, sitewatch};

/// One receiver per kind, and the sites file's notifiers pointing at them.
struct Services {
    by_kind: BTreeMap<&'static str, Receiver>,
}

impl Services {
    async fn start() -> Services {
        let mut by_kind = BTreeMap::new();
        for kind in [
            "pagerduty",
            "opsgenie",
            "teams",
            "discord",
            "telegram",
            "google_chat",
            "ntfy",
            "template",
        ] {
            by_kind.insert(kind, Receiver::start().await);
        }
        Services { by_kind }
    }

    fn get(&self, kind: &str) -> &Receiver {
        &self.by_kind[kind]
    }

    /// `[alerts]` (every notifier) and one `[[notifier]]` per kind.
    fn sites_file(&self) -> String {
        format!(
            r#"[alerts]

[[notifier]]
name = "pd"
kind = "pagerduty"
endpoint = "{pd}"

[[notifier]]
name = "og"
kind = "opsgenie"
endpoint = "{og}"

[[notifier]]
name = "teams"
kind = "teams"

[[notifier]]
name = "discord"
kind = "discord"

[[notifier]]
name = "tg"
kind = "telegram"
chat_id = "-100123"
endpoint = "{tg}"

[[notifier]]
name = "gchat"
kind = "google_chat"

[[notifier]]
name = "ntfy"
kind = "ntfy"

[[notifier]]
name = "custom"
kind = "webhook"
template = '{{"text": {{{{ summary }}}}, "kind": {{{{ kind }}}}, "site": {{{{ site }}}}}}'
"#,
            pd = self.get("pagerduty").url("/pd"),
            og = self.get("opsgenie").url("/og/"),
            tg = self.get("telegram").url("/tg"),
        )
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SITEWATCH_NOTIFIER_PD_KEY", "R0UTINGKEY".to_owned()),
            ("SITEWATCH_NOTIFIER_OG_KEY", "0PSGENIE-KEY".to_owned()),
            (
                "SITEWATCH_NOTIFIER_TEAMS_URL",
                self.get("teams").url("/workflows/abc"),
            ),
            (
                "SITEWATCH_NOTIFIER_DISCORD_URL",
                self.get("discord").url("/api/webhooks/1/t"),
            ),
            ("SITEWATCH_NOTIFIER_TG_KEY", "123456:S3CRET".to_owned()),
            (
                "SITEWATCH_NOTIFIER_GCHAT_URL",
                self.get("google_chat")
                    .url("/v1/spaces/X/messages?key=k&token=t"),
            ),
            (
                "SITEWATCH_NOTIFIER_NTFY_URL",
                self.get("ntfy").url("/ntfy/alerts"),
            ),
            (
                "SITEWATCH_NOTIFIER_CUSTOM_URL",
                self.get("template").url("/custom"),
            ),
        ]
    }
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn text_len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// PagerDuty Events API v2: a trigger with its payload, then a resolve
/// with the same dedup_key.
fn pagerduty_shape(got: &[Received]) {
    assert_eq!(got.len(), 2, "{got:?}");
    for r in got {
        assert_eq!(r.path, "/pd/v2/enqueue");
        assert_eq!(r.body["routing_key"], "R0UTINGKEY");
        let key = text_len(&r.body["dedup_key"]);
        assert!((1..=255).contains(&key), "{}", r.body);
    }
    let (trigger, resolve) = (&got[0].body, &got[1].body);
    assert_eq!(trigger["event_action"], "trigger");
    let payload = &trigger["payload"];
    assert!((1..=1024).contains(&text_len(&payload["summary"])));
    assert!(text_len(&payload["source"]) > 0);
    assert_eq!(payload["severity"], "critical");
    assert!(payload["timestamp"].is_string());
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
}

/// Opsgenie: create with an alias, then close that alias.
fn opsgenie_shape(got: &[Received]) {
    let create = &got[0];
    assert_eq!(create.path, "/og/v2/alerts");
    assert_eq!(
        header(create, "authorization"),
        Some("GenieKey 0PSGENIE-KEY")
    );
    assert!((1..=130).contains(&text_len(&create.body["message"])));
    assert_eq!(create.body["priority"], "P1");
    let alias = create.body["alias"].as_str().unwrap();
    assert!(alias.len() <= 512);
    let close = got.last().unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(alias.as_bytes()).collect();
    assert_eq!(
        close.path,
        format!("/og/v2/alerts/{encoded}/close?identifierType=alias")
    );
    assert_eq!(
        header(close, "authorization"),
        Some("GenieKey 0PSGENIE-KEY")
    );
}

/// Teams: a message with one Adaptive Card attachment.
fn teams_shape(r: &Received) {
    assert_eq!(r.path, "/workflows/abc");
    assert_eq!(r.body["type"], "message");
    let attachment = &r.body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert!(card["version"].is_string());
    let body = card["body"].as_array().unwrap();
    assert!(body.iter().all(|e| e["type"].is_string()));
    assert!(body.iter().any(|e| e["type"] == "FactSet"));
}

fn discord_shape(r: &Received) {
    assert_eq!(r.path, "/api/webhooks/1/t");
    assert!((1..=2000).contains(&text_len(&r.body["content"])));
    assert_eq!(r.body["allowed_mentions"]["parse"], Value::Array(vec![]));
}

fn telegram_shape(r: &Received) {
    assert_eq!(r.path, "/tg/bot123456:S3CRET/sendMessage");
    assert_eq!(r.body["chat_id"], "-100123");
    assert!((1..=4096).contains(&text_len(&r.body["text"])));
    assert!(
        r.body.get("parse_mode").is_none(),
        "plain text: no markup at all"
    );
}

fn google_chat_shape(r: &Received) {
    assert_eq!(r.path, "/v1/spaces/X/messages?key=k&token=t");
    let card = &r.body["cardsV2"][0];
    assert!(card["cardId"].is_string());
    let widgets = card["card"]["sections"][0]["widgets"].as_array().unwrap();
    assert!(
        widgets
            .iter()
            .all(|w| w["textParagraph"]["text"].is_string())
    );
}

fn ntfy_shape(r: &Received) {
    assert_eq!(r.path, "/ntfy/");
    assert_eq!(r.body["topic"], "alerts");
    assert!(text_len(&r.body["message"]) > 0);
    assert!((1..=5).contains(&r.body["priority"].as_i64().unwrap()));
}

/// A site name with every channel's markup: a mention, a link, HTML.
const HOSTILE: &str = "api <!channel> @everyone [x](https://evil.example) <b>b</b> *bold*";

/// What a person would see as a mention, a link or markup is escaped in
/// each channel's own way.
fn no_markup_of_the_site_gets_through(services: &Services) {
    let texts = |kind: &str| -> Vec<String> {
        services
            .get(kind)
            .received()
            .iter()
            .map(|r| r.body.to_string())
            .collect()
    };
    for text in texts("teams").iter().chain(&texts("discord")) {
        assert!(!text.contains("[x](https"), "a link: {text}");
        assert!(!text.contains(" @everyone"), "a mention: {text}");
        assert!(
            !text.contains("<b>b</b>") && !text.contains(" *bold*"),
            "{text}"
        );
    }
    for text in texts("google_chat") {
        assert!(!text.contains("<b>b</b>"), "HTML: {text}");
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("&lt;b&gt;b&lt;/b&gt;"), "{text}");
    }
    for r in services.get("telegram").received() {
        // Plain text (no parse_mode): shown as it is, nothing interpreted.
        assert!(r.body["text"].as_str().unwrap().contains(HOSTILE));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_gets_its_documented_payload_once_even_after_a_failure() {
    let services = Services::start().await;
    let rig = Rig::new("notifiers-kinds", &services.sites_file()).await;
    let env = services.env();
    // Opsgenie fails once, Discord answers a redirect once: both are failed
    // deliveries, retried by the next run.
    services.get("opsgenie").answer(&[500]);
    services
        .get("discord")
        .redirect(302, "https://discord.example/elsewhere");
    services
        .get("telegram")
        .answer_with(200, r#"{"ok":true,"result":{"message_id":1}}"#);
    let down: Vec<_> = (0..3)
        .map(|m| rig.check(HOSTILE, "eu", m as f64, false))
        .collect();
    rig.store(&down).await;
    let run = rig.alert_with(2.5, &env).await;
    assert_eq!(run.code, 1, "two deliveries failed: {}", run.stderr);
    assert!(run.stderr.contains("answered 500"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("redirect to https://discord.example/elsewhere"),
        "{}",
        run.stderr
    );
    let run = rig.alert_with(2.6, &env).await;
    assert_eq!(run.code, 0, "the retries: {}", run.stderr);
    let up: Vec<_> = (3..5)
        .map(|m| rig.check(HOSTILE, "eu", m as f64, true))
        .collect();
    rig.store(&up).await;
    let run = rig.alert_with(4.5, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(rig.kinds(), ["down", "resolved"], "the rig's own webhook");
    no_markup_of_the_site_gets_through(&services);

    pagerduty_shape(&services.get("pagerduty").received());
    let og = services.get("opsgenie").received();
    assert_eq!(og.len(), 3, "the failed create, its retry, the close");
    assert_eq!(og[0].body, og[1].body, "the retry is the same request");
    opsgenie_shape(&og);
    let discord = services.get("discord").received();
    assert_eq!(
        discord.len(),
        3,
        "the redirected one, its retry, the resolved"
    );
    for (kind, check) in [
        ("teams", teams_shape as fn(&Received)),
        ("discord", discord_shape),
        ("telegram", telegram_shape),
        ("google_chat", google_chat_shape),
        ("ntfy", ntfy_shape),
    ] {
        let got = services.get(kind).received();
        assert!(got.len() >= 2, "{kind}: {got:?}");
        for r in &got {
            check(r);
        }
    }
    assert_eq!(services.get("teams").received().len(), 2);
    let custom = services.get("template").received();
    assert_eq!(custom.len(), 2);
    assert_eq!(custom[0].body["kind"], "down");
    assert_eq!(custom[0].body["site"], HOSTILE, "JSON-escaped, as it is");
    assert!(
        custom[0].body["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{HOSTILE} is down"))
    );
    // Each delivery recorded once, none left.
    let client = db::connect(&rig.url).await;
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM alert_deliveries").await,
        2 * 9,
        "two events, nine notifiers"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn notifiers_take_only_their_kinds_and_groups() {
    let pager = Receiver::start().await;
    let rig = Rig::new(
        "notifiers-routes",
        &format!(
            r#"[alerts]

[[notifier]]
name = "payments-pager"
kind = "pagerduty"
endpoint = "{}"
events = ["down"]
groups = ["payments"]

[[site]]
name = "checkout"
url = "https://checkout.example/"
group = "payments"

[[site]]
name = "blog"
url = "https://blog.example/"
"#,
            pager.url("")
        ),
    )
    .await;
    let env = [("SITEWATCH_NOTIFIER_PAYMENTS_PAGER_KEY", "K".to_owned())];
    let mut checks = Vec::new();
    for m in 0..3 {
        checks.push(rig.answered_down("checkout", "eu", m as f64));
        checks.push(rig.answered_down("blog", "eu", m as f64));
    }
    rig.store(&checks).await;
    let run = rig.alert_with(2.5, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = pager.received();
    assert_eq!(got.len(), 1, "{got:?} {} {}", run.stdout, run.stderr);
    assert_eq!(got[0].body["payload"]["component"], "checkout");
    assert_eq!(
        rig.kinds(),
        ["down", "down"],
        "the rig's webhook takes both"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_test_says_what_the_service_answered() {
    let services = Services::start().await;
    let rig = Rig::new("notifiers-test", &services.sites_file()).await;
    let mut env = rig.env();
    env.extend(services.env());
    services
        .get("pagerduty")
        .answer_with(202, r#"{"status":"success","message":"Event processed"}"#);
    let run = sitewatch(rig.path(), &["alert", "test", "pd"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            r#"notifier `pd` (pagerduty): test event: answered 202 Accepted: {"status":"success","message":"Event processed"}"#
        ),
        "{}",
        run.stdout
    );
    let got = services.get("pagerduty").received();
    assert_eq!(got.len(), 2, "the test and its resolve");
    assert_eq!(got[0].body["event_action"], "trigger");
    assert_eq!(got[1].body["event_action"], "resolve");
    assert_eq!(got[0].body["dedup_key"], got[1].body["dedup_key"]);
    assert_eq!(got[0].body["payload"]["severity"], "info");
    // Nothing recorded.
    let client = db::connect(&rig.url).await;
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM alert_events").await,
        0
    );
    // A refusal is exit 1 with the service's answer.
    services.get("telegram").answer_with(
        400,
        r#"{"ok":false,"description":"Bad Request: chat not found"}"#,
    );
    let run = sitewatch(rig.path(), &["alert", "test", "tg"], &env).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("chat not found") && !run.stderr.contains("S3CRET"),
        "{}",
        run.stderr
    );
    let run = sitewatch(rig.path(), &["alert", "test", "nobody"], &env).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("no [[notifier]] named `nobody`: the sites file declares pd, og"),
        "{}",
        run.stderr
    );
}

/// Python's aiosmtpd (tests/it/servers/smtp.py): STARTTLS and implicit TLS
/// listeners, AUTH required; each message it accepts as JSON in `out`.
struct SmtpServer {
    process: tokio::process::Child,
    starttls: u16,
    tls: u16,
    out: std::path::PathBuf,
}

impl SmtpServer {
    async fn start(dir: &std::path::Path, ca: &crate::support::certs::Ca) -> SmtpServer {
        use tokio::io::AsyncBufReadExt;
        let (cert, key) = ca.issue_pem(&["127.0.0.1"]);
        std::fs::write(dir.join("smtp.crt"), cert).unwrap();
        std::fs::write(dir.join("smtp.key"), key).unwrap();
        let out = dir.join("mail");
        std::fs::create_dir_all(&out).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/servers/smtp.py");
        let mut process = tokio::process::Command::new("python")
            .args(["-W", "ignore"])
            .arg(script)
            .arg(dir.join("smtp.crt"))
            .arg(dir.join("smtp.key"))
            .arg(&out)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python (the stack's, with aiosmtpd: scripts/stack install) is not on PATH");
        let mut lines = tokio::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP server did not start in 20 s")
            .unwrap()
            .expect("the SMTP server exited: is aiosmtpd installed (scripts/stack install)?");
        let ports: Value = serde_json::from_str(&line).unwrap();
        SmtpServer {
            process,
            starttls: ports["starttls"].as_u64().unwrap() as u16,
            tls: ports["tls"].as_u64().unwrap() as u16,
            out,
        }
    }

    /// The messages accepted, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<_> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort_by_key(|n| n.trim_end_matches(".json").parse::<u32>().unwrap());
        names
            .iter()
            .map(|n| serde_json::from_slice(&std::fs::read(self.out.join(n)).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn email_over_starttls_and_tls_with_auth_one_message_per_event() {
    let rig = Rig::new(
        "notifiers-email",
        r#"[alerts]

[[notifier]]
name = "mail"
kind = "email"
from = "sitewatch <sitewatch@example.com>"
to = ["On Call <oncall@example.com>", "sre@example.com"]

[[notifier]]
name = "mails"
kind = "email"
from = "sitewatch@example.com"
to = ["oncall@example.com"]
events = ["down"]
"#,
    )
    .await;
    let ca = crate::support::certs::Ca::new();
    std::fs::write(rig.path().join("ca.pem"), ca.pem()).unwrap();
    let smtp = SmtpServer::start(rig.path(), &ca).await;
    let env = vec![
        (
            "SITEWATCH_NOTIFIER_MAIL_URL",
            format!("smtp://sitewatch:pa55@127.0.0.1:{}", smtp.starttls),
        ),
        (
            "SITEWATCH_NOTIFIER_MAILS_URL",
            format!("smtps://sitewatch:pa55@127.0.0.1:{}", smtp.tls),
        ),
        // The test's own CA, as a relay with an internal CA is trusted.
        (
            "SSL_CERT_FILE",
            rig.path().join("ca.pem").display().to_string(),
        ),
    ];
    let hostile = "api <b>x</b> [click](https://evil.example)";
    let down: Vec<_> = (0..3)
        .map(|m| rig.check(hostile, "eu", m as f64, false))
        .collect();
    rig.store(&down).await;
    let run = rig.alert_with(2.5, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let up: Vec<_> = (3..5)
        .map(|m| rig.check(hostile, "eu", m as f64, true))
        .collect();
    rig.store(&up).await;
    let run = rig.alert_with(4.5, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    let messages = smtp.messages();
    assert_eq!(
        messages.len(),
        4,
        "down and resolved to both (`events = [\"down\"]` takes its resolved): {messages:?}"
    );
    let event_ids: Vec<String> = rig
        .events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    for m in &messages {
        assert_eq!(m["tls"], true, "{m}");
        assert_eq!(m["login"], "sitewatch", "{m}");
        assert_eq!(m["content_type"], "multipart/alternative");
        let text = m["text"].as_str().unwrap();
        let html = m["html"].as_str().unwrap();
        assert!(text.contains(hostile), "the text part as it is: {text}");
        assert!(html.contains("api &lt;b&gt;x&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>x</b>"), "{html}");
        let id = m["headers"]["Message-ID"].as_str().unwrap();
        assert!(
            event_ids.iter().any(|e| id.starts_with(&format!("<{e}."))),
            "{id} names its event"
        );
    }
    let by_subject: Vec<&str> = messages
        .iter()
        .map(|m| m["headers"]["Subject"].as_str().unwrap())
        .collect();
    assert!(
        by_subject.iter().filter(|s| s.ends_with("is down")).count() == 2,
        "{by_subject:?}"
    );
    assert_eq!(
        by_subject
            .iter()
            .filter(|s| s.ends_with("is up again"))
            .count(),
        2,
        "{by_subject:?}"
    );
    let first_to_mail = messages
        .iter()
        .find(|m| m["rcpt_tos"].as_array().unwrap().len() == 2)
        .expect("`mail` has two recipients");
    assert_eq!(
        first_to_mail["rcpt_tos"],
        serde_json::json!(["oncall@example.com", "sre@example.com"])
    );
    assert_eq!(first_to_mail["mail_from"], "sitewatch@example.com");

    // A wrong password: a failed delivery, kept, and the error says why
    // without the password.
    let wrong = vec![
        (
            "SITEWATCH_NOTIFIER_MAIL_URL",
            format!("smtp://sitewatch:wr0ng@127.0.0.1:{}", smtp.starttls),
        ),
        ("SITEWATCH_NOTIFIER_MAILS_URL", env[1].1.clone()),
        ("SSL_CERT_FILE", env[2].1.clone()),
    ];
    let run = sitewatch(rig.path(), &["alert", "test", "mail"], &{
        let mut all = rig.env();
        all.extend(wrong);
        all
    })
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("535"),
        "the server's refusal: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("wr0ng"), "{}", run.stderr);
    // And without the CA, TLS is refused: nothing sent in clear.
    let run = sitewatch(rig.path(), &["alert", "test", "mail"], &{
        let mut all = rig.env();
        all.push(("SITEWATCH_NOTIFIER_MAIL_URL", env[0].1.clone()));
        all.push(("SITEWATCH_NOTIFIER_MAILS_URL", env[1].1.clone()));
        all
    })
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(smtp.messages().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_that_slows_down_is_degraded_once_and_fast_again_once() {
    let server = crate::support::http::Server::start().await;
    let rig = Rig::new("notifiers-degraded", "[alerts]\nfailure_threshold = 2\n").await;
    let sites = |path: &str| {
        let file = rig.path().join("sites.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let kept: String = text.split("\n[[site]]").next().unwrap().to_owned();
        std::fs::write(
            &file,
            format!(
                "{kept}\n[[site]]\nname = \"api\"\nurl = \"{}\"\ndegraded_after = \"1s\"\n",
                server.url(path)
            ),
        )
        .unwrap();
    };
    let mut env = rig.env();
    env.push(("SITEWATCH_LOCATION", "eu".to_owned()));
    let step = async |path: &str| {
        sites(path);
        for args in [&["probe-once"][..], &["drain"], &["alert"]] {
            let run = sitewatch(rig.path(), args, &env).await;
            assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        }
        rig.kinds()
    };
    assert!(step("/ok").await.is_empty());
    assert!(
        step("/sleep/1500").await.is_empty(),
        "one slow check: not yet"
    );
    assert_eq!(step("/sleep/1500").await, ["degraded"]);
    assert_eq!(step("/sleep/1500").await, ["degraded"], "once");
    assert_eq!(step("/ok").await, ["degraded", "resolved"]);
    let events = rig.events();
    let degraded = &events[0];
    assert_eq!(degraded["degraded_after_ms"], 1000.0);
    assert!(
        degraded["response_time_ms"].as_f64().unwrap() >= 1500.0,
        "{degraded}"
    );
    assert_eq!(events[1]["resolves"], "degraded");
    assert!(events[1]["response_time_ms"].as_f64().unwrap() < 1000.0);
}
