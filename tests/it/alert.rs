//! `alert` end to end: crafted checks published to the real broker, stored
//! by `drain` in the real PostgreSQL, evaluated by `alert`, and what real
//! receivers got: a recording HTTP server of the test's own (webhook and
//! Slack shapes) and Debian's Alertmanager. Each test has its own topic
//! and database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use sitewatch::message::{Check, ErrorKind, SCHEMA};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::drain::{env as drain_env, record};
use crate::support::kafka::{publish, unique_topic};
use crate::support::receiver::Receiver;
use crate::support::{Exited, create_topic, db, sitewatch};

/// One test's broker topic, database, receiver and clock.
pub(crate) struct Rig {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) topic: String,
    pub(crate) url: String,
    pub(crate) hook: Receiver,
    pub(crate) base: OffsetDateTime,
}

impl Rig {
    /// `alerts` is the sites file's alert configuration; the `hook`
    /// webhook notifier is added to it and to `[alerts] notify`.
    pub(crate) async fn new(name: &str, alerts: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let topic = unique_topic(name);
        create_topic(dir.path(), &topic, 1).await;
        let url = db::fresh(dir.path()).await;
        let hook = Receiver::start().await;
        let alerts = if alerts.contains("[alerts]") {
            alerts.to_owned()
        } else {
            format!("[alerts]\nnotify = [\"hook\"]\n{alerts}")
        };
        std::fs::write(
            dir.path().join("sites.toml"),
            format!("{alerts}\n[[notifier]]\nname = \"hook\"\nkind = \"webhook\"\n"),
        )
        .unwrap();
        // Whole minutes, two hours ago: the checks and runs happen "now".
        let now = OffsetDateTime::now_utc();
        let base = now
            .replace_second(0)
            .unwrap()
            .replace_nanosecond(0)
            .unwrap()
            - time::Duration::hours(2);
        Rig {
            dir,
            topic,
            url,
            hook,
            base,
        }
    }

    pub(crate) fn at(&self, minutes: f64) -> OffsetDateTime {
        self.base + time::Duration::seconds_f64(minutes * 60.0)
    }

    /// A check of `site` from `location` at `minute`.
    pub(crate) fn check(&self, site: &str, location: &str, minute: f64, up: bool) -> Check {
        Check {
            schema: SCHEMA,
            check_id: Uuid::now_v7(),
            site: site.into(),
            url: format!("https://{site}.example/"),
            method: "GET".into(),
            location: location.into(),
            started_at: self.at(minute),
            up,
            degraded: None,
            status_code: up.then_some(200),
            reason: up.then(|| "OK".to_owned()),
            response_time_ms: 12.0,
            dns_ms: Some(1.0),
            connect_ms: Some(1.0),
            tls_ms: None,
            ttfb_ms: up.then_some(5.0),
            ip: Some("127.0.0.1".parse().unwrap()),
            regex: None,
            regex_matched: None,
            json_matched: None,
            body_bytes: up.then_some(100),
            redirects: Some(0),
            final_url: None,
            tls_expires_at: None,
            error_kind: (!up).then_some(ErrorKind::Connect),
            error: (!up).then(|| "Connection refused (os error 111)".to_owned()),
            condition: None,
            run_id: None,
            attempts: None,
            dns_rcode: None,
            dns_answers: None,
            packet_loss: None,
            tls_names: None,
            conditions: None,
        }
    }

    /// A down check that got an answer (a 503): never a prober's fault.
    pub(crate) fn answered_down(&self, site: &str, location: &str, minute: f64) -> Check {
        Check {
            status_code: Some(503),
            reason: Some("Service Unavailable".into()),
            error_kind: None,
            error: None,
            ..self.check(site, location, minute, false)
        }
    }

    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = drain_env(&self.topic, &self.url);
        env.push(("SITEWATCH_NOTIFIER_HOOK_URL", self.hook.url("/hook")));
        env
    }

    /// Publishes the checks and drains them into the database.
    pub(crate) async fn store(&self, checks: &[Check]) {
        let records: Vec<_> = checks.iter().map(record).collect();
        publish(&self.topic, &records).await;
        // A scenario that runs ahead of the real clock (days of
        // certificates) drains on its own clock: drain refuses checks
        // dated ahead of the one it runs by.
        let newest = checks.iter().map(|c| c.started_at).max();
        let at = newest
            .filter(|t| *t > OffsetDateTime::now_utc())
            .map(|t| sitewatch::message::rfc3339_ms::format(&t));
        let mut args = vec!["drain"];
        if let Some(at) = &at {
            args.extend(["--at", at.as_str()]);
        }
        let run = sitewatch(self.dir.path(), &args, &self.env()).await;
        assert_eq!(run.code, 0, "drain: {}", run.stderr);
    }

    /// `alert` with its clock at `minute`.
    pub(crate) async fn alert_with(&self, minute: f64, env: &[(&'static str, String)]) -> Exited {
        let at = sitewatch::message::rfc3339_ms::format(&self.at(minute));
        let mut all = self.env();
        all.extend_from_slice(env);
        sitewatch(self.dir.path(), &["alert", "--at", &at], &all).await
    }

    pub(crate) async fn alert(&self, minute: f64) -> Exited {
        let run = self.alert_with(minute, &[]).await;
        assert_eq!(run.code, 0, "alert: {}", run.stderr);
        run
    }

    /// The events the webhook got, in order.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.hook
            .received()
            .into_iter()
            .filter(|r| r.path == "/hook")
            .map(|r| r.body)
            .collect()
    }

    pub(crate) fn kinds(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_down_after_the_third_failure_and_one_resolved_after_two_successes() {
    let rig = Rig::new(
        "alert-down",
        "[alerts]\nnotify = [\"hook\", \"chat\"]\n\n[[notifier]]\nname = \"chat\"\nkind = \"slack\"\n",
    )
    .await;
    let chat = [("SITEWATCH_NOTIFIER_CHAT_URL", rig.hook.url("/slack"))];
    let steps: [(bool, &[&str]); 7] = [
        (true, &[]),
        (false, &[]),
        (false, &[]),
        (false, &["down"]),
        (false, &["down"]),
        (true, &["down"]),
        (true, &["down", "resolved"]),
    ];
    for (minute, (up, expected)) in steps.iter().enumerate() {
        rig.store(&[rig.check("api", "eu", minute as f64, *up)])
            .await;
        let run = rig.alert_with(minute as f64 + 0.5, &chat).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            rig.kinds(),
            *expected,
            "after minute {minute}: {}",
            run.stdout
        );
    }
    let events = rig.events();
    let down = &events[0];
    assert_eq!(down["site"], "api");
    assert_eq!(down["url"], "https://api.example/");
    assert_eq!(
        down["since"],
        sitewatch::message::rfc3339_ms::format(&rig.at(1.0)),
        "the outage began with its first failed check"
    );
    assert_eq!(
        (
            down["locations_down"].clone(),
            down["locations_total"].clone()
        ),
        (1.into(), 1.into())
    );
    assert_eq!(down["error_kind"], "connect");
    assert!(down["status_code"].is_null());
    assert!(
        down["summary"]
            .as_str()
            .unwrap()
            .starts_with("api is down from 1 of 1 location"),
        "{down}"
    );
    for key in [
        "event_id",
        "kind",
        "site",
        "url",
        "at",
        "since",
        "locations_down",
        "locations_total",
        "status_code",
        "error_kind",
        "error",
        "tls_expires_at",
        "summary",
    ] {
        assert!(down.get(key).is_some(), "{key} missing from {down}");
    }
    let id: Uuid = down["event_id"].as_str().unwrap().parse().unwrap();
    let header = rig.hook.received()[0]
        .headers
        .iter()
        .find(|(k, _)| k == "idempotency-key")
        .map(|(_, v)| v.clone());
    assert_eq!(header, Some(id.to_string()));
    assert_eq!(events[1]["resolves"], "down");
    assert_ne!(events[1]["event_id"], down["event_id"]);
    // Slack got the same two events, as text.
    let slack: Vec<Value> = rig
        .hook
        .received()
        .into_iter()
        .filter(|r| r.path == "/slack")
        .map(|r| r.body)
        .collect();
    assert_eq!(slack.len(), 2);
    assert_eq!(slack[0]["text"], down["summary"]);
    assert_eq!(slack[0].as_object().unwrap().len(), 1);
    // Recorded, each delivered once to each notifier.
    let client = db::connect(&rig.url).await;
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM alert_events").await,
        2
    );
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NOT NULL AND attempts = 1"
        )
        .await,
        4
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_quorum_2_one_failing_location_of_three_sends_nothing_and_two_do() {
    let rig = Rig::new("alert-quorum", "quorum = 2\n").await;
    for minute in 0..4 {
        let m = minute as f64;
        rig.store(&[
            rig.check("api", "eu", m, false),
            rig.check("api", "us", m, true),
            rig.check("api", "ap", m, true),
        ])
        .await;
        rig.alert(m + 0.5).await;
    }
    assert_eq!(
        rig.kinds(),
        Vec::<String>::new(),
        "one location of three is not a quorum"
    );
    for minute in 4..7 {
        let m = minute as f64;
        rig.store(&[
            rig.check("api", "eu", m, false),
            rig.check("api", "us", m, false),
            rig.check("api", "ap", m, true),
        ])
        .await;
        rig.alert(m + 0.5).await;
    }
    assert_eq!(rig.kinds(), ["down"]);
    let down = &rig.events()[0];
    assert_eq!(
        (
            down["locations_down"].clone(),
            down["locations_total"].clone()
        ),
        (2.into(), 3.into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_when_checks_stop_and_resolved_when_they_resume() {
    let rig = Rig::new("alert-stale", "stale_after = \"10m\"\n").await;
    for minute in 0..3 {
        rig.store(&[rig.check("api", "eu", minute as f64, true)])
            .await;
    }
    rig.alert(3.0).await;
    rig.alert(11.0).await;
    assert!(rig.kinds().is_empty(), "{:?}", rig.kinds());
    rig.alert(12.5).await;
    assert_eq!(rig.kinds(), ["stale"]);
    rig.alert(20.0).await;
    assert_eq!(rig.kinds(), ["stale"], "said once");
    rig.store(&[rig.check("api", "eu", 21.0, true)]).await;
    rig.alert(21.5).await;
    assert_eq!(rig.kinds(), ["stale", "resolved"]);
    assert_eq!(rig.events()[1]["resolves"], "stale");
    assert!(
        rig.events()[0]["summary"]
            .as_str()
            .unwrap()
            .contains("has not been checked for")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tls_expiring_per_threshold_crossed() {
    let rig = Rig::new("alert-tls", "tls_expiry_days = [14, 7, 1]\n").await;
    let expires = rig.at(0.0) + time::Duration::days(20);
    let day = 24.0 * 60.0;
    // Days left at each run: 20, 13, 12, 5 (7 crossed, not 14 again), 0.5.
    let mut sent = Vec::new();
    for (run, days_in) in [0.0, 7.0, 8.0, 15.0, 19.5].into_iter().enumerate() {
        let minute = days_in * day + run as f64;
        let mut check = rig.check("secure", "eu", minute, true);
        check.tls_expires_at = Some(expires);
        rig.store(&[check]).await;
        rig.alert(minute + 0.5).await;
        sent.push(rig.events().len());
    }
    assert_eq!(sent, [0, 1, 1, 2, 3]);
    let thresholds: Vec<Value> = rig
        .events()
        .iter()
        .map(|e| e["threshold_days"].clone())
        .collect();
    assert_eq!(thresholds, [14, 7, 1]);
    assert_eq!(rig.kinds(), ["tls_expiring"; 3]);
    // A renewed certificate starts over.
    let mut check = rig.check("secure", "eu", 19.5 * day + 10.0, true);
    check.tls_expires_at = Some(expires + time::Duration::days(90));
    rig.store(&[check]).await;
    rig.alert(19.5 * day + 10.5).await;
    assert_eq!(rig.events().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_sent_during_a_maintenance_window() {
    let rig = Rig::new("alert-maintenance", "").await;
    let start = sitewatch::message::rfc3339_ms::format(&rig.at(0.0));
    let toml = std::fs::read_to_string(rig.path().join("sites.toml")).unwrap();
    std::fs::write(
        rig.path().join("sites.toml"),
        format!(
            "{toml}\n[[maintenance]]\nsites = [\"api\"]\nstart = \"{start}\"\nduration = \"10m\"\n"
        ),
    )
    .unwrap();
    for minute in 0..9 {
        let m = minute as f64;
        rig.store(&[
            rig.check("api", "eu", m, false),
            rig.check("web", "eu", m, true),
        ])
        .await;
        rig.alert(m + 0.5).await;
    }
    assert!(
        rig.kinds().is_empty(),
        "inside the window: {:?}",
        rig.kinds()
    );
    rig.store(&[
        rig.check("api", "eu", 10.0, false),
        rig.check("web", "eu", 10.0, true),
    ])
    .await;
    rig.alert(10.5).await;
    assert_eq!(rig.kinds(), ["down"], "still down once the window closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prober_that_lost_its_network_sends_one_prober_down_not_a_storm() {
    let rig = Rig::new("alert-prober", "").await;
    let sites = ["a", "b", "c", "d", "e", "f"];
    for minute in 0..4 {
        let m = minute as f64;
        let checks: Vec<Check> = sites.iter().map(|s| rig.check(s, "eu", m, false)).collect();
        rig.store(&checks).await;
        rig.alert(m + 0.5).await;
    }
    assert_eq!(rig.kinds(), ["prober_down"]);
    let event = &rig.events()[0];
    assert_eq!(event["location"], "eu");
    assert!(event["site"].is_null());
    for minute in 4..6 {
        let m = minute as f64;
        let checks: Vec<Check> = sites.iter().map(|s| rig.check(s, "eu", m, true)).collect();
        rig.store(&checks).await;
        rig.alert(m + 0.5).await;
    }
    assert_eq!(rig.kinds(), ["prober_down", "resolved"]);
    // Sites that answer with an error are a real outage: one down each.
    for minute in 6..9 {
        let m = minute as f64;
        let checks: Vec<Check> = sites
            .iter()
            .map(|s| rig.answered_down(s, "eu", m))
            .collect();
        rig.store(&checks).await;
        rig.alert(m + 0.5).await;
    }
    assert_eq!(rig.kinds().iter().filter(|k| *k == "down").count(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_answers_500_gets_the_event_from_the_next_run_once() {
    let rig = Rig::new("alert-retry", "").await;
    rig.hook.answer(&[500]);
    for minute in 0..3 {
        rig.store(&[rig.check("api", "eu", minute as f64, false)])
            .await;
    }
    // The URL from a file this time, as a mounted secret.
    let url_file = rig.path().join("hook-url");
    std::fs::write(&url_file, format!("{}\n", rig.hook.url("/hook"))).unwrap();
    let mut env: Vec<(&'static str, String)> = rig
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "SITEWATCH_NOTIFIER_HOOK_URL")
        .collect();
    env.push((
        "SITEWATCH_NOTIFIER_HOOK_URL_FILE",
        url_file.display().to_string(),
    ));
    let at = sitewatch::message::rfc3339_ms::format(&rig.at(3.0));
    let run = sitewatch(rig.path(), &["alert", "--at", &at], &env).await;
    assert_eq!(
        run.code, 1,
        "a failed delivery fails the run: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&rig.hook.url("/hook")),
        "the URL is a secret: {}",
        run.stderr
    );
    assert!(run.stderr.contains("answered 500"), "{}", run.stderr);
    assert_eq!(rig.events().len(), 1);
    rig.alert(3.5).await;
    rig.alert(4.0).await;
    let events = rig.events();
    assert_eq!(events.len(), 2, "retried once, then done");
    assert_eq!(events[0]["event_id"], events[1]["event_id"]);
    assert_eq!(events[0], events[1], "the same event");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_alert_runs_at_once_send_each_event_once() {
    let rig = Rig::new("alert-twice", "").await;
    rig.hook.delay(Duration::from_millis(100));
    for minute in 0..3 {
        let checks: Vec<Check> = (0..8)
            .map(|i| rig.answered_down(&format!("s{i}"), "eu", minute as f64))
            .collect();
        rig.store(&checks).await;
    }
    let (a, b) = tokio::join!(rig.alert_with(3.0, &[]), rig.alert_with(3.0, &[]));
    assert_eq!((a.code, b.code), (0, 0), "{}\n{}", a.stderr, b.stderr);
    let ids: Vec<String> = rig
        .events()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 8, "{ids:?}");
    assert_eq!(distinct.len(), 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_in_the_middle_of_sending_loses_nothing() {
    let rig = Rig::new("alert-kill", "").await;
    rig.hook.delay(Duration::from_millis(400));
    for minute in 0..3 {
        let checks: Vec<Check> = (0..6)
            .map(|i| rig.answered_down(&format!("s{i}"), "eu", minute as f64))
            .collect();
        rig.store(&checks).await;
    }
    let at = sitewatch::message::rfc3339_ms::format(&rig.at(3.0));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sitewatch"))
        .args(["alert", "--at", &at])
        .current_dir(rig.path())
        .env_clear()
        .envs(rig.env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Kill -9 once a delivery is under way (the receiver holds its answer).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rig.hook.received().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let before = rig.events().len();
    assert!(before < 6, "killed before the end: {before}");
    rig.hook.delay(Duration::ZERO);
    rig.alert(3.5).await;
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in rig.events() {
        by_id
            .entry(e["event_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e);
    }
    assert_eq!(by_id.len(), 6, "every event arrived");
    let sites: BTreeSet<String> = by_id
        .values()
        .map(|v| v[0]["site"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sites.len(),
        6,
        "one event per site, none twice under another id"
    );
    for (id, copies) in &by_id {
        assert!(
            copies.iter().all(|c| c == &copies[0]),
            "{id}: a duplicate differs"
        );
    }
    let client = db::connect(&rig.url).await;
    assert_eq!(
        db::count(
            &client,
            "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NULL"
        )
        .await,
        0
    );
}

/// Debian's Alertmanager on a port of the test's own.
struct Alertmanager {
    _process: tokio::process::Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Alertmanager {
    async fn start() -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("alertmanager.yml"),
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .unwrap();
        let port = crate::support::http::closed_port().await;
        let process = tokio::process::Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus-alertmanager is not installed: run scripts/stack install");
        let url = format!("http://127.0.0.1:{port}");
        let client = sitewatch::outbound::client(Duration::from_secs(2)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client.get(format!("{url}/api/v2/status")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "Alertmanager did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Alertmanager {
            _process: process,
            _dir: dir,
            url,
        }
    }

    /// The alerts its API lists.
    async fn alerts(&self) -> Vec<Value> {
        let client = sitewatch::outbound::client(Duration::from_secs(5)).unwrap();
        let body = client
            .get(format!("{}/api/v2/alerts", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn alertmanager_lists_the_alert_and_then_resolves_it() {
    let am = Alertmanager::start().await;
    let rig = Rig::new(
        "alert-am",
        "[alerts]\nnotify = [\"am\"]\n\n[[notifier]]\nname = \"am\"\nkind = \"alertmanager\"\n",
    )
    .await;
    let env = [("SITEWATCH_NOTIFIER_AM_URL", am.url.clone())];
    for minute in 0..3 {
        rig.store(&[rig.answered_down("api", "eu", minute as f64)])
            .await;
    }
    let run = rig.alert_with(3.0, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = am.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["labels"]["alertname"], "SiteDown");
    assert_eq!(alert["labels"]["site"], "api");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["status"]["state"], "active");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("api is down")
    );
    let event_id = alert["annotations"]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = db::connect(&rig.url).await;
    let recorded: Uuid = client
        .query_one("SELECT event_id FROM alert_events WHERE kind = 'down'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(event_id, recorded.to_string());

    for minute in 3..5 {
        rig.store(&[rig.check("api", "eu", minute as f64, true)])
            .await;
    }
    let run = rig.alert_with(5.0, &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let active: Vec<Value> = am
        .alerts()
        .await
        .into_iter()
        .filter(|a| a["status"]["state"] == "active")
        .filter(|a| {
            a["endsAt"]
                .as_str()
                .and_then(|t| {
                    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                })
                .is_some_and(|t| t > OffsetDateTime::now_utc())
        })
        .collect();
    assert!(
        active.is_empty(),
        "the resolved event ended the alert: {active:?}"
    );
}

/// A run record of the run ledger, as `probe-once` publishes it.
fn run_record(rig: &Rig, location: &str, minute: f64) -> (Option<String>, Option<Vec<u8>>) {
    let run = sitewatch::message::RunRecord {
        schema: SCHEMA,
        record: sitewatch::message::RunRecord::RECORD.to_owned(),
        run_id: Uuid::now_v7(),
        job: "probe-once".into(),
        location: location.into(),
        shard: None,
        tick_s: 60.0,
        started_at: rig.at(minute),
        finished_at: rig.at(minute) + time::Duration::seconds(1),
        sites_due: 1,
        checked: 1,
        published: 1,
        answered: None,
        outcome: "ok".into(),
    };
    (Some(format!("run/{location}")), Some(run.to_json()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_location_whose_runs_stop_is_stale_once_and_resolved_when_they_resume() {
    let rig = Rig::new("alert-ledger", "").await;
    for minute in 0..5 {
        let m = minute as f64;
        publish(&rig.topic, &[run_record(&rig, "gha", m)]).await;
        rig.store(&[
            rig.check("api", "gha", m, true),
            rig.check("web", "gha", m, true),
        ])
        .await;
        rig.alert(m + 0.5).await;
    }
    rig.alert(15.0).await;
    assert!(rig.kinds().is_empty(), "{:?}", rig.kinds());
    rig.alert(20.0).await;
    assert_eq!(
        rig.kinds(),
        ["stale"],
        "one for the location, none per site"
    );
    let stale = &rig.events()[0];
    assert_eq!(stale["location"], "gha");
    assert!(stale["site"].is_null());
    assert!(
        stale["summary"]
            .as_str()
            .unwrap()
            .contains("has made no run since")
    );
    let client = db::connect(&rig.url).await;
    assert_eq!(db::count(&client, "SELECT count(*) FROM runs").await, 5);

    publish(&rig.topic, &[run_record(&rig, "gha", 21.0)]).await;
    rig.store(&[
        rig.check("api", "gha", 21.0, true),
        rig.check("web", "gha", 21.0, true),
    ])
    .await;
    rig.alert(21.5).await;
    assert_eq!(rig.kinds(), ["stale", "resolved"]);
    assert_eq!(rig.events()[1]["location"], "gha");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sites_own_rules_and_reminders_while_it_stays_down() {
    let rig = Rig::new(
        "alert-remind",
        "[[site]]\nname = \"api\"\nurl = \"https://api.example/\"\n\n[site.alerts]\nfailure_threshold = 2\nremind_every = \"5m\"\n",
    )
    .await;
    // The site file's sites come before [[notifier]]: move [alerts] up.
    let toml = std::fs::read_to_string(rig.path().join("sites.toml")).unwrap();
    assert!(toml.starts_with("[alerts]"), "{toml}");
    for minute in 0..2 {
        let m = minute as f64;
        rig.store(&[
            rig.check("api", "eu", m, false),
            rig.check("web", "eu", m, true),
        ])
        .await;
        rig.alert(m + 0.5).await;
    }
    assert_eq!(rig.kinds(), ["down"], "api's own failure_threshold of 2");
    rig.alert(5.0).await;
    assert_eq!(rig.kinds(), ["down"]);
    rig.alert(6.6).await;
    assert_eq!(rig.kinds(), ["down", "reminder"]);
    assert!(
        rig.events()[1]["summary"]
            .as_str()
            .unwrap()
            .contains("is still down, for")
    );
    rig.alert(8.0).await;
    assert_eq!(rig.kinds(), ["down", "reminder"]);
    rig.alert(11.7).await;
    assert_eq!(rig.kinds(), ["down", "reminder", "reminder"]);

    // A notifier without its URL: exit 2 naming the variable, nothing
    // evaluated; `validate` says so too.
    let run = sitewatch(
        rig.path(),
        &["alert"],
        &[("SITEWATCH_DATABASE_URL", rig.url.clone())],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("notifier `hook`: its URL is not set: set SITEWATCH_NOTIFIER_HOOK_URL"),
        "{}",
        run.stderr
    );
    // `validate` where there are no secrets (a pull request): the URL is
    // not asked for; with --notifier-urls it is.
    let run = sitewatch(rig.path(), &["validate"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sitewatch(rig.path(), &["validate", "--notifier-urls"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("SITEWATCH_NOTIFIER_HOOK_URL"),
        "{}",
        run.stderr
    );
}
