//! `probe-once` and `check` against real local servers; published messages
//! read back from the real broker and compared field by field.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::certs::{self, Ca};
use crate::support::http::{self, Server};
use crate::support::kafka::{self, read_all, unique_topic};
use crate::support::{create_topic, sitewatch};

const FIELDS: [&str; 34] = [
    "schema",
    "check_id",
    "site",
    "url",
    "method",
    "location",
    "started_at",
    "up",
    "degraded",
    "status_code",
    "reason",
    "response_time_ms",
    "dns_ms",
    "connect_ms",
    "tls_ms",
    "ttfb_ms",
    "ip",
    "regex",
    "regex_matched",
    "json_matched",
    "body_bytes",
    "redirects",
    "final_url",
    "tls_expires_at",
    "error_kind",
    "error",
    "condition",
    "run_id",
    "attempts",
    "dns_rcode",
    "dns_answers",
    "packet_loss",
    "tls_names",
    "conditions",
];

fn ms(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// Checks what every message has, whatever its site did.
fn assert_common(v: &Value, before: OffsetDateTime, after: OffsetDateTime) {
    let object = v.as_object().unwrap();
    for field in FIELDS {
        assert!(object.contains_key(field), "{field} missing from {v}");
    }
    assert_eq!(object.len(), FIELDS.len(), "unexpected fields in {v}");
    assert_eq!(v["schema"], 1);
    uuid::Uuid::parse_str(v["check_id"].as_str().unwrap()).unwrap();
    assert_eq!(v["location"], "test-bench");
    let started = v["started_at"].as_str().unwrap();
    assert_eq!(started.len(), 24, "not millisecond RFC 3339 UTC: {started}");
    assert!(started.ends_with('Z'));
    let started = OffsetDateTime::parse(started, &Rfc3339).unwrap();
    assert!(started >= before - time::Duration::milliseconds(1) && started <= after);
    let total = ms(v, "response_time_ms");
    let phases: f64 = ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms"]
        .iter()
        .filter_map(|f| v[f].as_f64())
        .sum();
    assert!(
        phases <= total + 0.01,
        "phases {phases} exceed total {total} in {v}"
    );
    assert!(
        !v["up"].as_bool().unwrap() || v["error_kind"].is_null(),
        "an up check has no error: {v}"
    );
    if v["redirects"] == 0 {
        assert_eq!(v["final_url"], v["url"], "no redirect, same URL: {v}");
    }
}

fn site_toml(name: &str, url: &str, extra: &str) -> String {
    format!("[[site]]\nname = \"{name}\"\nurl = \"{url}\"\n{extra}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_once_publishes_one_message_per_site_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let untrusted = Server::start_tls(certs::self_signed(certs::VALID_UNTIL).server_config()).await;
    let ca = Ca::new();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let trusted = Server::start_tls(ca.leaf(certs::VALID_UNTIL).server_config()).await;
    let expired = Server::start_tls(ca.leaf(certs::EXPIRED_AT).server_config()).await;
    let closed = http::closed_port().await;
    let port = web.addr.port();

    let mut sites = String::from("[defaults]\ntimeout = \"3s\"\n");
    sites += &site_toml(
        "ok",
        &format!("http://localhost:{port}/ok"),
        "regex = 'hello\\s+sitewatch'",
    );
    sites += &site_toml("no-match", &web.url("/ok"), "regex = 'goodbye'");
    sites += &site_toml("not-found", &web.url("/notfound"), "");
    sites += &site_toml("server-error", &web.url("/error"), "");
    sites += &site_toml("redirect", &web.url("/redirect"), "");
    sites += &site_toml("head", &web.url("/ok"), "method = \"HEAD\"");
    sites += &site_toml("slow", &web.url("/slow"), "timeout = \"1s\"");
    sites += &site_toml("closed", &format!("http://127.0.0.1:{closed}/"), "");
    sites += &site_toml("self-signed", &untrusted.url("/ok"), "");
    sites += &site_toml(
        "trusted",
        &trusted.url("/ok"),
        "ca_file = \"ca.pem\"\nregex = \"sitewatch\"",
    );
    sites += &site_toml("expired", &expired.url("/ok"), "ca_file = \"ca.pem\"");
    std::fs::write(dir.path().join("sites.toml"), &sites).unwrap();

    let topic = unique_topic("fields");
    create_topic(dir.path(), &topic, 3).await;
    let before = OffsetDateTime::now_utc();
    let run = sitewatch(
        dir.path(),
        &["probe-once"],
        &[
            ("SITEWATCH_KAFKA_BROKERS", kafka::brokers()),
            ("SITEWATCH_KAFKA_TOPIC", topic.clone()),
            ("SITEWATCH_LOCATION", "test-bench".into()),
        ],
    )
    .await;
    let after = OffsetDateTime::now_utc();
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("probe-once:"))
        .unwrap();
    assert!(
        summary.starts_with("probe-once: 11 sites checked, 4 up, 7 down, 11 published in "),
        "{summary}"
    );

    let records = read_all(&topic);
    assert_eq!(records.len(), 11, "{records:#?}");
    let ids: HashSet<_> = records
        .iter()
        .map(|r| r.value["check_id"].clone())
        .collect();
    assert_eq!(ids.len(), 11, "check ids are unique");
    let mut by_site = HashMap::new();
    let mut partition_of = HashMap::new();
    for r in records {
        assert_eq!(r.key, r.value["site"].as_str().unwrap(), "key = site name");
        assert_common(&r.value, before, after);
        partition_of.insert(r.key.clone(), r.partition);
        by_site.insert(r.key, r.value);
    }

    let ok = &by_site["ok"];
    assert_eq!(ok["url"], format!("http://localhost:{port}/ok"));
    assert_eq!(ok["method"], "GET");
    assert_eq!(ok["up"], true);
    assert_eq!(ok["status_code"], 200);
    assert_eq!(ok["reason"], "OK");
    assert!(ms(ok, "dns_ms") >= 0.0, "localhost needs a lookup: {ok}");
    assert!(ms(ok, "connect_ms") >= 0.0);
    assert!(ok["tls_ms"].is_null());
    assert!(ms(ok, "ttfb_ms") >= 0.0);
    assert_eq!(ok["ip"], "127.0.0.1");
    assert_eq!(ok["regex"], "hello\\s+sitewatch");
    assert_eq!(ok["regex_matched"], true);
    assert_eq!(ok["body_bytes"], http::OK_BODY.len());
    assert!(ok["tls_expires_at"].is_null());
    assert!(ok["error_kind"].is_null() && ok["error"].is_null());

    let no_match = &by_site["no-match"];
    assert_eq!(no_match["up"], false);
    assert_eq!(no_match["status_code"], 200);
    assert_eq!(no_match["regex_matched"], false);
    assert!(
        no_match["dns_ms"].is_null(),
        "an IP literal needs no lookup"
    );
    assert!(no_match["error_kind"].is_null(), "the request completed");
    // Why it is down travels with it: the condition, in `error` too.
    let why = no_match["condition"].as_str().unwrap_or_default();
    assert!(
        why == format!(
            "regex `goodbye` not found in the body ({} bytes read)",
            http::OK_BODY.len()
        ),
        "{no_match}"
    );
    assert_eq!(no_match["error"], no_match["condition"]);
    assert!(ok["condition"].is_null(), "{ok}");

    for (site, code, reason) in [
        ("not-found", 404, "Not Found"),
        ("server-error", 500, "Internal Server Error"),
    ] {
        let v = &by_site[site];
        assert_eq!(
            (
                v["up"].clone(),
                v["status_code"].clone(),
                v["reason"].clone()
            ),
            (false.into(), code.into(), reason.into()),
            "{v}"
        );
        assert!(v["error_kind"].is_null() && v["regex"].is_null() && v["regex_matched"].is_null());
        assert_eq!(
            v["error"],
            format!("status {code}, expected 200-399"),
            "{v}"
        );
    }

    let redirect = &by_site["redirect"];
    assert_eq!(redirect["status_code"], 200, "the redirect is followed");
    assert_eq!(redirect["redirects"], 1);
    assert_eq!(redirect["final_url"], web.url("/ok"));
    assert_eq!(redirect["url"], web.url("/redirect"));
    assert_eq!(redirect["body_bytes"], http::OK_BODY.len());

    let head = &by_site["head"];
    assert_eq!(
        (
            head["method"].as_str(),
            head["up"].as_bool(),
            head["body_bytes"].as_u64()
        ),
        (Some("HEAD"), Some(true), Some(0))
    );

    let slow = &by_site["slow"];
    assert_eq!(slow["up"], false);
    assert_eq!(slow["error_kind"], "timeout");
    assert!(slow["status_code"].is_null() && slow["body_bytes"].is_null());
    let total = ms(slow, "response_time_ms");
    assert!(
        (1000.0..1500.0).contains(&total),
        "timeout 1s took {total} ms"
    );
    assert!(
        slow["error"]
            .as_str()
            .unwrap()
            .starts_with("timed out after 1s waiting for the response"),
        "{slow}"
    );

    let closed = &by_site["closed"];
    assert_eq!(closed["error_kind"], "connect");
    assert_eq!(closed["ip"], "127.0.0.1");
    assert!(closed["connect_ms"].is_null() && closed["status_code"].is_null());
    assert!(
        closed["error"].as_str().unwrap().contains("refused"),
        "{closed}"
    );

    let untrusted = &by_site["self-signed"];
    assert_eq!(untrusted["up"], false);
    assert_eq!(untrusted["error_kind"], "tls");
    assert_eq!(
        untrusted["tls_expires_at"],
        certs::VALID_UNTIL_TEXT,
        "expiry of a rejected certificate is reported"
    );
    assert!(untrusted["connect_ms"].as_f64().is_some() && untrusted["tls_ms"].is_null());
    assert!(
        untrusted["error"]
            .as_str()
            .unwrap()
            .contains("give the site that CA as ca_file (UnknownIssuer)"),
        "in words, with the fix: {untrusted}"
    );

    let trusted = &by_site["trusted"];
    assert_eq!(trusted["up"], true, "{trusted}");
    assert_eq!(trusted["tls_expires_at"], certs::VALID_UNTIL_TEXT);
    assert!(ms(trusted, "tls_ms") > 0.0 && ms(trusted, "connect_ms") >= 0.0);
    assert_eq!(trusted["regex_matched"], true);

    let expired = &by_site["expired"];
    assert_eq!(expired["up"], false);
    assert_eq!(expired["error_kind"], "tls");
    assert_eq!(expired["tls_expires_at"], certs::EXPIRED_AT_TEXT);
    assert!(
        expired["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("expired"),
        "{expired}"
    );

    // The key decides the partition: the same site always lands together.
    assert!(partition_of.values().all(|p| (0..3).contains(p)));
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_json_lines_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"a","url":"{}"}},{{"name":"b","url":"{}"}}]"#,
        web.url("/ok"),
        web.url("/error")
    );
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[
            ("SITEWATCH_SITES", sites),
            ("SITEWATCH_LOCATION", "test-bench".into()),
            // Nothing listens here: a dry run must not need a broker.
            (
                "SITEWATCH_KAFKA_BROKERS",
                format!("127.0.0.1:{}", http::closed_port().await),
            ),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut lines = run.json_lines();
    lines.sort_by_key(|v| v["site"].as_str().unwrap().to_owned());
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (lines[0]["site"].as_str(), lines[0]["up"].as_bool()),
        (Some("a"), Some(true))
    );
    assert_eq!(
        (lines[1]["site"].as_str(), lines[1]["status_code"].as_u64()),
        (Some("b"), Some(500))
    );
    assert!(
        run.stderr
            .contains("2 sites checked, 1 up, 1 down, 2 printed"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_once_exits_1_and_counts_lost_messages_when_no_broker_acknowledges() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"a","url":"{0}"}},{{"name":"b","url":"{0}"}}]"#,
        web.url("/ok")
    );
    let broker = format!("127.0.0.1:{}", http::closed_port().await);
    let run = sitewatch(
        dir.path(),
        &["probe-once"],
        &[
            ("SITEWATCH_SITES", sites),
            ("SITEWATCH_KAFKA_BROKERS", broker.clone()),
            ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "2s".into()),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(web.hits(), 2, "the checks ran");
    let expected = format!("error: 2 of 2 messages were not acknowledged by {broker} within 2s");
    assert!(
        run.stderr.lines().any(|l| l.starts_with(&expected)),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("2 sites checked, 2 up, 0 down, 0 published"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_never_outlives_its_timeout_whatever_the_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"hang","url":"{}","timeout":"1s"}},{{"name":"drip","url":"{}","timeout":"1s"}}]"#,
        web.url("/hang"),
        web.url("/drip")
    );
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[("SITEWATCH_SITES", sites)],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for v in run.json_lines() {
        assert_eq!(v["error_kind"], "timeout", "{v}");
        let total = ms(&v, "response_time_ms");
        assert!((1000.0..1300.0).contains(&total), "{v}");
    }
    let drip = run
        .json_lines()
        .into_iter()
        .find(|v| v["site"] == "drip")
        .unwrap();
    assert_eq!(drip["status_code"], 200, "the headers came");
    assert!(drip["body_bytes"].as_u64().unwrap() > 0);
    assert!(
        drip["error"].as_str().unwrap().contains("reading the body"),
        "{drip}"
    );
    assert!(
        run.elapsed.as_secs_f64() < 5.0,
        "the job took {:?}",
        run.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_body_is_read_up_to_the_cap_and_the_regex_sees_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites = format!(
        r#"[{{"name":"capped","url":"{0}","max_body_bytes":1000,"regex":"needle"}},
            {{"name":"default-cap","url":"{0}"}},
            {{"name":"whole","url":"{0}","max_body_bytes":{1},"regex":"needle"}}]"#,
        web.url("/big"),
        http::BIG_BYTES
    );
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[("SITEWATCH_SITES", sites)],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let by: HashMap<String, Value> = run
        .json_lines()
        .into_iter()
        .map(|v| (v["site"].as_str().unwrap().to_owned(), v))
        .collect();
    assert_eq!(by["capped"]["body_bytes"], 1000);
    assert_eq!(by["capped"]["regex_matched"], false);
    assert_eq!(by["default-cap"]["body_bytes"], 1024 * 1024);
    assert_eq!(by["whole"]["body_bytes"], http::BIG_BYTES);
    assert_eq!(by["whole"]["regex_matched"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_prints_phases_for_a_person_and_the_message_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let server = Server::start_tls(ca.leaf(certs::VALID_UNTIL).server_config()).await;
    let url = server.url("/ok");
    let run = sitewatch(
        dir.path(),
        &["check", &url, "--ca-file", "ca.pem", "--regex", "hello"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!("GET {url} UP 200 OK\n")),
        "{}",
        run.stdout
    );
    for label in [
        "dns",
        "connect",
        "tls",
        "first byte",
        "total",
        "body",
        "regex",
        "certificate",
    ] {
        assert!(
            run.stdout.contains(&format!("\n  {label:<12} ")),
            "no {label} in {}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("expires 2031-05-17T12:00:00.000Z"),
        "{}",
        run.stdout
    );

    let run = sitewatch(dir.path(), &["check", &url, "--json"], &[]).await;
    assert_eq!(run.code, 0, "a down site is data, not a failure");
    let v = &run.json_lines()[0];
    assert_eq!(
        (v["up"].as_bool(), v["error_kind"].as_str()),
        (Some(false), Some("tls"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_creates_the_topic_once_with_the_configured_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique_topic("migrate");
    create_topic(dir.path(), &topic, 4).await;
    // A second run finds it and succeeds.
    create_topic(dir.path(), &topic, 4).await;
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", kafka::brokers())
        .create()
        .unwrap();
    let metadata = rdkafka::consumer::Consumer::fetch_metadata(
        &consumer,
        Some(&topic),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 4);
}

/// probe-once's peak memory (the JSON summary's `peak_rss_bytes`) with
/// `n` sites each serving a 1.5 MiB page to `regex`.
async fn peak_with_large_pages(n: usize, regex: &str) -> (u64, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let sites: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"name":"p{i}","url":"{}","regex":"{regex}"}}"#,
                web.url("/huge-page")
            )
        })
        .collect();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[
            ("SITEWATCH_SITES", format!("[{}]", sites.join(","))),
            ("SITEWATCH_LOG_FORMAT", "json".to_owned()),
            ("SITEWATCH_LOCATION", "test-bench".to_owned()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: Value = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["job"] == "probe-once")
        .expect("a JSON summary");
    (
        summary["peak_rss_bytes"].as_u64().unwrap(),
        run.json_lines(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_does_not_grow_with_the_bodies_a_regex_reads() {
    // 200 checks that each read 1 MiB: holding the bodies took over 200 MB.
    const MB: u64 = 1024 * 1024;
    let (streamed, checks) = peak_with_large_pages(200, "needle\\\\s+word").await;
    assert!(
        checks
            .iter()
            .all(|c| c["up"] == true && c["regex_matched"] == true)
    );
    assert!(streamed < 120 * MB, "peak RSS {} MB", streamed / MB);
    // A pattern that needs the whole body (a Unicode word boundary) is
    // buffered, within the shared budget of 96 MiB.
    let (buffered, checks) = peak_with_large_pages(200, "\\\\bneedle\\\\b").await;
    assert!(
        checks
            .iter()
            .all(|c| c["up"] == true && c["regex_matched"] == true)
    );
    assert!(buffered < 200 * MB, "peak RSS {} MB", buffered / MB);
    eprintln!(
        "peak RSS: streamed {} MB, buffered {} MB",
        streamed / MB,
        buffered / MB
    );
}

/// A self-signed certificate with `CA:TRUE` (what `openssl req -x509`
/// makes) given as the site's `ca_file` is trusted as the server's own, as
/// curl does; another certificate, a wrong name or an expired pinned one
/// are not.
#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_self_signed_ca_certificate_is_the_servers_own_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (pinned, pinned_pem) =
        certs::self_signed_ca_true(&["127.0.0.1", "localhost"], certs::VALID_UNTIL);
    let (other, _) = certs::self_signed_ca_true(&["127.0.0.1", "localhost"], certs::VALID_UNTIL);
    let (elsewhere, elsewhere_pem) =
        certs::self_signed_ca_true(&["example.invalid"], certs::VALID_UNTIL);
    let (expired, expired_pem) = certs::self_signed_ca_true(&["127.0.0.1"], certs::EXPIRED_AT);
    std::fs::write(dir.path().join("pinned.pem"), &pinned_pem).unwrap();
    std::fs::write(dir.path().join("elsewhere.pem"), &elsewhere_pem).unwrap();
    std::fs::write(dir.path().join("expired.pem"), &expired_pem).unwrap();
    let servers = [
        (
            "pinned",
            Server::start_tls(pinned.server_config()).await,
            "pinned.pem",
        ),
        (
            "other",
            Server::start_tls(other.server_config()).await,
            "pinned.pem",
        ),
        (
            "wrong-name",
            Server::start_tls(elsewhere.server_config()).await,
            "elsewhere.pem",
        ),
        (
            "expired",
            Server::start_tls(expired.server_config()).await,
            "expired.pem",
        ),
    ];
    let mut sites = String::from("[defaults]\ntimeout = \"3s\"\n");
    for (name, server, ca) in &servers {
        sites += &site_toml(name, &server.url("/ok"), &format!("ca_file = \"{ca}\""));
    }
    std::fs::write(dir.path().join("sites.toml"), &sites).unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let by_site: HashMap<String, serde_json::Value> = run
        .json_lines()
        .into_iter()
        .map(|v| (v["site"].as_str().unwrap().to_owned(), v))
        .collect();
    let pinned = &by_site["pinned"];
    assert_eq!(pinned["up"], true, "{pinned}");
    assert_eq!(pinned["status_code"], 200);
    assert_eq!(pinned["tls_expires_at"], certs::VALID_UNTIL_TEXT);
    for site in ["other", "wrong-name", "expired"] {
        let v = &by_site[site];
        assert_eq!(
            (v["up"].clone(), v["error_kind"].clone()),
            (false.into(), "tls".into()),
            "{site}: {v}"
        );
    }
    assert!(
        by_site["wrong-name"]["error"]
            .as_str()
            .unwrap()
            .contains("certificate not valid for"),
        "{}",
        by_site["wrong-name"]
    );
    assert!(
        by_site["expired"]["error"]
            .as_str()
            .unwrap()
            .contains("certificate expired"),
        "{}",
        by_site["expired"]
    );
}

/// `degraded_after`: an up check slower than it is `degraded`; without it,
/// `degraded` is null; a down check is not degraded.
#[tokio::test(flavor = "multi_thread")]
async fn an_up_check_slower_than_degraded_after_is_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let mut sites = String::from("[defaults]\ntimeout = \"3s\"\n");
    sites += &site_toml("slow-for-it", &web.url("/ok"), "degraded_after = \"1ns\"");
    sites += &site_toml("fast-enough", &web.url("/ok"), "degraded_after = \"1h\"");
    sites += &site_toml("no-limit", &web.url("/ok"), "");
    sites += &site_toml("down", &web.url("/error"), "degraded_after = \"1ns\"");
    std::fs::write(dir.path().join("sites.toml"), &sites).unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: HashMap<String, (serde_json::Value, serde_json::Value)> = run
        .json_lines()
        .into_iter()
        .map(|v| {
            (
                v["site"].as_str().unwrap().to_owned(),
                (v["up"].clone(), v["degraded"].clone()),
            )
        })
        .collect();
    assert_eq!(got["slow-for-it"], (true.into(), true.into()));
    assert_eq!(got["fast-enough"], (true.into(), false.into()));
    assert_eq!(got["no-limit"], (true.into(), serde_json::Value::Null));
    assert_eq!(got["down"], (false.into(), false.into()));
    let conditions: HashMap<String, serde_json::Value> = run
        .json_lines()
        .into_iter()
        .map(|v| {
            (
                v["site"].as_str().unwrap().to_owned(),
                v["condition"].clone(),
            )
        })
        .collect();
    let slow = conditions["slow-for-it"].as_str().unwrap_or_default();
    assert!(
        slow.starts_with("response time ") && slow.ends_with("over degraded_after 0 ms"),
        "{slow}"
    );
    assert!(conditions["fast-enough"].is_null());
    assert_eq!(conditions["down"], "status 500, expected 200-399");

    std::fs::write(
        dir.path().join("sites.toml"),
        site_toml("bad", &web.url("/ok"), "degraded_after = \"soon\""),
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("degraded_after `soon`: expected a non-zero duration such as 800ms"),
        "{}",
        run.stderr
    );
}

/// `json` conditions: the body must be JSON holding each value at its
/// path; a mismatch, a body that is not JSON, or one cut at the cap is
/// down with `json_matched = false`; a bad path is exit 2.
#[tokio::test(flavor = "multi_thread")]
async fn json_conditions_decide_up_and_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let health = web.url("/health");
    let mut sites = String::from("[defaults]\ntimeout = \"3s\"\n");
    sites += &site_toml(
        "match",
        &health,
        "json = { \"$.status\" = \"UP\", \"$.checks.db\" = \"ok\", \"$.replicas[0].lag_ms\" = 3 }",
    );
    sites += &site_toml("mismatch", &health, "json = { \"$.status\" = \"DOWN\" }");
    sites += &site_toml("missing", &health, "json = { \"$.checks.cache\" = \"ok\" }");
    sites += &site_toml(
        "not-json",
        &web.url("/ok"),
        "json = { \"$.status\" = \"UP\" }",
    );
    sites += &site_toml(
        "too-large",
        &health,
        "json = { \"$.status\" = \"UP\" }\nmax_body_bytes = 20",
    );
    sites += &site_toml(
        "with-regex",
        &health,
        "json = { \"$.status\" = \"UP\" }\nregex = '\"db\":\"ok\"'",
    );
    sites += &site_toml("none", &health, "");
    std::fs::write(dir.path().join("sites.toml"), &sites).unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: HashMap<String, Value> = run
        .json_lines()
        .into_iter()
        .map(|v| (v["site"].as_str().unwrap().to_owned(), v))
        .collect();
    let seen = |site: &str| {
        let v = &got[site];
        (
            v["up"].clone(),
            v["json_matched"].clone(),
            v["status_code"].clone(),
        )
    };
    assert_eq!(seen("match"), (true.into(), true.into(), 200.into()));
    for site in ["mismatch", "missing", "not-json", "too-large"] {
        assert_eq!(
            seen(site),
            (false.into(), false.into(), 200.into()),
            "{site}"
        );
        assert!(got[site]["error_kind"].is_null(), "the request completed");
    }
    assert_eq!(got["too-large"]["body_bytes"], 20);
    // Each says which condition failed, what was expected and what came.
    assert_eq!(
        got["mismatch"]["error"],
        r#"json $.status: expected "DOWN", got "UP""#
    );
    assert_eq!(
        got["missing"]["condition"],
        r#"json $.checks.cache: expected "ok", not found"#
    );
    assert_eq!(
        got["too-large"]["condition"],
        "json: the body (20 bytes) is not JSON"
    );
    assert!(got["match"]["condition"].is_null());
    assert_eq!(seen("with-regex"), (true.into(), true.into(), 200.into()));
    assert_eq!(got["with-regex"]["regex_matched"], true);
    assert_eq!(seen("none"), (true.into(), Value::Null, 200.into()));

    std::fs::write(
        dir.path().join("sites.toml"),
        site_toml("bad", &health, "json = { \"status\" = \"UP\" }"),
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("json path `status`: expected a path such as $.status"),
        "{}",
        run.stderr
    );
}

/// Redirects are followed up to `max_redirects`, each hop on the same
/// clock; the phases and status describe the last request; a loop, too
/// many hops or a dead target is down; credentials stay on their host.
#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_followed_within_their_limit_and_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let untrusted = Server::start_tls(certs::self_signed(certs::VALID_UNTIL).server_config()).await;
    let closed = http::closed_port().await;
    let port = web.addr.port();
    let to = |target: &str| web.url(&format!("/redirect-to?{target}"));
    let mut sites = String::from("[defaults]\ntimeout = \"3s\"\n");
    sites += &site_toml("followed", &web.url("/hops/3"), "");
    sites += &site_toml("at-the-limit", &web.url("/hops/3"), "max_redirects = 3");
    sites += &site_toml("too-many", &web.url("/hops/3"), "max_redirects = 2");
    sites += &site_toml("not-followed", &web.url("/hops/3"), "max_redirects = 0");
    sites += &site_toml("loop", &web.url("/redirect-loop"), "");
    sites += &site_toml(
        "to-closed-port",
        &to(&format!("http://127.0.0.1:{closed}/")),
        "",
    );
    sites += &site_toml("to-bad-certificate", &to(&untrusted.url("/ok")), "");
    sites += &site_toml("to-ftp", &to("ftp://127.0.0.1/file"), "");
    sites += &site_toml(
        "credentials-same-host",
        &format!("http://user:s3cret@127.0.0.1:{port}/redirect-to?/auth"),
        "",
    );
    sites += &site_toml(
        "credentials-other-host",
        &format!("http://user:s3cret@127.0.0.1:{port}/redirect-to?http://localhost:{port}/auth"),
        "",
    );
    sites += &site_toml(
        "endless-slow",
        &web.url("/slow-hops"),
        "timeout = \"1s\"\nmax_redirects = 50",
    );
    std::fs::write(dir.path().join("sites.toml"), &sites).unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: HashMap<String, Value> = run
        .json_lines()
        .into_iter()
        .map(|v| (v["site"].as_str().unwrap().to_owned(), v))
        .collect();
    let seen = |site: &str| {
        let v = &got[site];
        (
            v["up"].clone(),
            v["status_code"].clone(),
            v["redirects"].clone(),
            v["error_kind"].clone(),
        )
    };
    let null = Value::Null;
    assert_eq!(
        seen("followed"),
        (true.into(), 200.into(), 3.into(), null.clone())
    );
    assert_eq!(got["followed"]["final_url"], web.url("/hops/0"));
    assert_eq!(got["followed"]["body_bytes"], http::OK_BODY.len());
    assert!(got["followed"]["ttfb_ms"].as_f64().is_some());
    assert!(
        got["followed"]["dns_ms"].is_null(),
        "an IP literal: no lookup"
    );
    assert_eq!(
        seen("at-the-limit"),
        (true.into(), 200.into(), 3.into(), null.clone())
    );
    assert_eq!(
        seen("too-many"),
        (false.into(), 307.into(), 2.into(), "redirect".into())
    );
    let error = |site: &str| got[site]["error"].as_str().unwrap().to_owned();
    assert!(
        error("too-many").starts_with("more than 2 redirects"),
        "{}",
        error("too-many")
    );
    assert_eq!(
        seen("not-followed"),
        (true.into(), 307.into(), 0.into(), null.clone()),
        "a 3xx is the result, in the default 200-399"
    );
    assert_eq!(got["not-followed"]["final_url"], web.url("/hops/3"));
    assert_eq!(
        seen("loop"),
        (false.into(), 302.into(), 1.into(), "redirect".into())
    );
    assert!(
        error("loop").starts_with("redirect loop:"),
        "{}",
        error("loop")
    );
    assert_eq!(
        seen("to-closed-port"),
        (false.into(), null.clone(), 1.into(), "connect".into())
    );
    assert_eq!(
        got["to-closed-port"]["final_url"],
        format!("http://127.0.0.1:{closed}/")
    );
    assert!(
        error("to-closed-port").ends_with("(after 1 redirect)"),
        "{}",
        error("to-closed-port")
    );
    assert_eq!(
        seen("to-bad-certificate"),
        (false.into(), null.clone(), 1.into(), "tls".into())
    );
    assert!(got["to-bad-certificate"]["tls_ms"].is_null());
    assert_eq!(
        seen("to-ftp"),
        (false.into(), 302.into(), 0.into(), "redirect".into())
    );
    assert_eq!(
        seen("credentials-same-host"),
        (true.into(), 200.into(), 1.into(), null.clone())
    );
    assert_eq!(
        got["credentials-same-host"]["final_url"],
        web.url("/auth"),
        "no credentials published"
    );
    assert_eq!(
        seen("credentials-other-host"),
        (false.into(), 401.into(), 1.into(), null.clone()),
        "credentials do not follow a redirect to another host"
    );
    let endless = &got["endless-slow"];
    assert_eq!(endless["error_kind"], "timeout", "{endless}");
    assert!(endless["redirects"].as_u64().unwrap() >= 2, "{endless}");
    assert!(
        endless["response_time_ms"].as_f64().unwrap() < 1500.0,
        "the chain ran past the timeout: {endless}"
    );
    assert!(!run.stdout.contains("s3cret") && !run.stderr.contains("s3cret"));

    std::fs::write(
        dir.path().join("sites.toml"),
        site_toml("bad", &web.url("/ok"), "max_redirects = 500"),
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("site `bad`: max_redirects 500 is more than 50"),
        "{}",
        run.stderr
    );
}
