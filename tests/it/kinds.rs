//! The check kinds beside HTTP, against real servers on loopback: a TCP
//! echo server and a closed port; TLS on the stack's PostgreSQL
//! (`starttls=postgres`) and on servers with an expired, a self-signed and
//! a wrong-name certificate; a DNS server of the test's own (answers,
//! NXDOMAIN, SERVFAIL, silence); ICMP to 127.0.0.1 (and the error when
//! ping sockets are not allowed); retries that confirm; `check --site`
//! agreeing with `probe-once --dry-run` for every kind.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::support::certs::{self, Ca};
use crate::support::http::{Server, closed_port};
use crate::support::sitewatch;

/// A TCP server: a greeting (`220 ready`), then `PONG` to each `PING`.
async fn echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let _ = write.write_all(b"220 ready\r\n").await;
                let mut lines = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer = if line.trim() == "PING" {
                        "PONG\r\n"
                    } else {
                        "ERR\r\n"
                    };
                    if write.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A DNS server over UDP: `ok.test.` has an A and an MX record,
/// `missing.test.` is NXDOMAIN, `broken.test.` SERVFAIL, `silent.test.`
/// gets no answer at all.
async fn dns_server() -> SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(q) = query.queries.first().cloned() else {
                continue;
            };
            let name = q.name().to_ascii();
            let mut answer = Message::response(query.metadata.id, query.metadata.op_code);
            answer.metadata.message_type = MessageType::Response;
            answer.add_query(q.clone());
            match name.as_str() {
                "ok.test." => match q.query_type() {
                    RecordType::A => {
                        answer.answers.push(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::A(A::new(192, 0, 2, 1)),
                        ));
                    }
                    RecordType::MX => {
                        answer.answers.push(Record::from_rdata(
                            q.name().clone(),
                            60,
                            RData::MX(MX::new(10, Name::from_ascii("mail.ok.test.").unwrap())),
                        ));
                    }
                    _ => {}
                },
                "missing.test." => answer.metadata.response_code = ResponseCode::NXDomain,
                "broken.test." => answer.metadata.response_code = ResponseCode::ServFail,
                _ => continue,
            }
            let _ = socket.send_to(&answer.to_vec().unwrap(), from).await;
        }
    });
    addr
}

/// `check URL --json` with `args`: the message.
async fn check(dir: &std::path::Path, url: &str, args: &[&str]) -> Value {
    let mut all = vec!["check", url, "--json"];
    all.extend_from_slice(args);
    let run = sitewatch(dir, &all, &[]).await;
    assert_eq!(run.code, 0, "{url}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_connects_sends_and_reads_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let echo = echo_server().await;
    let url = format!("tcp://{echo}");
    let c = check(dir.path(), &url, &[]).await;
    assert_eq!(
        (c["up"].clone(), c["method"].clone()),
        (true.into(), "TCP".into())
    );
    assert!(c["connect_ms"].as_f64().is_some() && c["status_code"].is_null());
    let c = check(dir.path(), &url, &["--send", "PING\r\n", "--regex", "PONG"]).await;
    assert_eq!(c["up"], true, "{c}");
    assert_eq!(c["regex_matched"], true);
    assert!(c["ttfb_ms"].as_f64().is_some());
    // A banner alone, no send.
    let c = check(dir.path(), &url, &["--regex", "^220 "]).await;
    assert_eq!(c["up"], true, "{c}");
    // The wrong answer: down, the condition says what was read.
    let c = check(
        dir.path(),
        &url,
        &["--send", "HELLO\r\n", "--regex", "PONG", "--timeout", "1s"],
    )
    .await;
    assert_eq!(c["up"], false, "{c}");
    assert_eq!(c["error_kind"], "timeout", "{c}");
    // A closed port.
    let closed = format!("tcp://127.0.0.1:{}", closed_port().await);
    let c = check(dir.path(), &closed, &[]).await;
    assert_eq!(
        (c["up"].clone(), c["error_kind"].clone()),
        (false.into(), "connect".into())
    );
    assert!(c["error"].as_str().unwrap().contains("refused"), "{c}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_verifies_the_chain_and_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // The stack's PostgreSQL, asked for TLS its own way.
    let ca = std::env::var("STACK_TLS_CA").expect("STACK_TLS_CA: eval \"$(scripts/stack env)\"");
    let port = std::env::var("SITEWATCH_DATABASE_URL")
        .ok()
        .and_then(|u| url::Url::parse(&u).ok()?.port())
        .unwrap_or(55432);
    let pg = format!("tls://localhost:{port}?starttls=postgres");
    let c = check(dir.path(), &pg, &["--ca-file", &ca]).await;
    assert_eq!(c["up"], true, "{c}");
    assert!(c["tls_ms"].as_f64().is_some());
    assert!(c["tls_expires_at"].is_string());
    let names: Vec<&str> = c["tls_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(names.contains(&"localhost"), "{names:?}");
    // Without its CA: not trusted, with the fix.
    let c = check(dir.path(), &pg, &[]).await;
    assert_eq!(
        (c["up"].clone(), c["error_kind"].clone()),
        (false.into(), "tls".into())
    );
    assert!(c["error"].as_str().unwrap().contains("ca_file"), "{c}");

    let own = Ca::new();
    let expired = Server::start_tls(own.leaf(certs::EXPIRED_AT).server_config()).await;
    let self_signed =
        Server::start_tls(certs::self_signed(certs::VALID_UNTIL).server_config()).await;
    let wrong_name = Server::start_tls(
        own.leaf_for(&["other.example"], certs::VALID_UNTIL)
            .server_config(),
    )
    .await;
    std::fs::write(dir.path().join("own.pem"), own.pem()).unwrap();
    let own_ca = dir.path().join("own.pem").display().to_string();
    for (server, with_ca, says) in [
        (&expired, true, "certificate expired on 2024-01-01"),
        (&self_signed, false, "certificate not trusted"),
        (&wrong_name, true, "other.example"),
    ] {
        let url = format!("tls://127.0.0.1:{}", server.addr.port());
        let args: Vec<&str> = if with_ca {
            vec!["--ca-file", &own_ca]
        } else {
            vec![]
        };
        let c = check(dir.path(), &url, &args).await;
        assert_eq!(c["up"], false, "{url}: {c}");
        assert_eq!(c["error_kind"], "tls");
        assert!(c["error"].as_str().unwrap().contains(says), "{url}: {c}");
    }
    // The expired one's date and names are kept all the same.
    let url = format!("tls://127.0.0.1:{}", expired.addr.port());
    let c = check(dir.path(), &url, &["--ca-file", &own_ca]).await;
    assert_eq!(c["tls_expires_at"], certs::EXPIRED_AT_TEXT);
    assert!(
        c["tls_names"].as_array().is_some_and(|n| !n.is_empty()),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_answers_nxdomain_servfail_and_silence() {
    let dir = tempfile::tempdir().unwrap();
    let server = dns_server().await;
    let url = |name: &str, t: &str| format!("dns://{name}?type={t}&server={server}");
    let c = check(dir.path(), &url("ok.test", "A"), &[]).await;
    assert_eq!(c["up"], true, "{c}");
    assert_eq!(c["method"], "DNS A");
    assert_eq!(c["dns_rcode"], "NOERROR");
    assert_eq!(c["dns_answers"], serde_json::json!(["192.0.2.1"]));
    assert!(c["dns_ms"].as_f64().is_some());
    let c = check(
        dir.path(),
        &url("ok.test", "MX"),
        &["--regex", "mail\\.ok\\.test"],
    )
    .await;
    assert_eq!(c["up"], true, "{c}");
    assert_eq!(c["dns_answers"], serde_json::json!(["10 mail.ok.test."]));
    let c = check(dir.path(), &url("ok.test", "MX"), &["--regex", "^20 "]).await;
    assert_eq!(c["up"], false);
    assert!(
        c["condition"]
            .as_str()
            .unwrap()
            .contains("matches none of the answers"),
        "{c}"
    );
    let c = check(dir.path(), &url("ok.test", "TXT"), &[]).await;
    assert_eq!(c["up"], false);
    assert_eq!(
        c["condition"],
        "no TXT record for ok.test (NOERROR, empty answer)"
    );
    for (name, rcode) in [("missing.test", "NXDOMAIN"), ("broken.test", "SERVFAIL")] {
        let c = check(dir.path(), &url(name, "A"), &[]).await;
        assert_eq!(
            (c["up"].clone(), c["dns_rcode"].clone()),
            (false.into(), rcode.into())
        );
        assert_eq!(c["condition"], format!("rcode {rcode}, expected NOERROR"));
        assert!(c["error_kind"].is_null(), "an answer is not an error: {c}");
    }
    let c = check(
        dir.path(),
        &url("silent.test", "A"),
        &["--timeout", "500ms"],
    )
    .await;
    assert_eq!(
        (c["up"].clone(), c["error_kind"].clone()),
        (false.into(), "timeout".into())
    );
}

/// Sets `net.ipv4.ping_group_range` for as long as it lives, when this
/// process may (root); restores it after.
struct PingRange {
    before: Option<String>,
}

impl PingRange {
    const PATH: &'static str = "/proc/sys/net/ipv4/ping_group_range";

    fn set(range: &str) -> PingRange {
        let before = std::fs::read_to_string(Self::PATH).ok();
        let set = std::fs::write(Self::PATH, range).is_ok();
        PingRange {
            before: before.filter(|_| set),
        }
    }
}

impl Drop for PingRange {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            let _ = std::fs::write(Self::PATH, before);
        }
    }
}

/// The tests that ping hold this: one of them changes the setting.
static PING_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn icmp_pings_loopback_or_says_which_setting_allows_it() {
    let _lock = PING_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let allowed = PingRange::set("0 2147483647");
    let c = check(dir.path(), "icmp://127.0.0.1", &[]).await;
    if is_root() || c["up"] == true {
        // Allowed (root allows it here): three echo replies.
        assert_eq!(c["up"], true, "{c}");
        assert_eq!(c["packet_loss"], 0.0, "{c}");
        assert_eq!(c["method"], "ICMP");
        assert_eq!(c["ip"], "127.0.0.1");
    } else {
        // Not root, and not allowed to this user: the error says so.
        assert!(
            c["error"].as_str().unwrap().contains("ping_group_range"),
            "{c}"
        );
    }
    drop(allowed);
    if is_root() {
        // Not allowed: the error names the setting and its value.
        let _forbidden = PingRange::set("1 0");
        let c = check(dir.path(), "icmp://127.0.0.1", &[]).await;
        assert_eq!(
            (c["up"].clone(), c["error_kind"].clone()),
            (false.into(), "connect".into())
        );
        let error = c["error"].as_str().unwrap();
        assert!(
            error.contains("net.ipv4.ping_group_range is `1 0`") && error.contains("sysctl -w"),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_confirm_a_failure_and_let_a_blip_pass() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start().await;
    // 503 once, then 200: up at the second attempt.
    let flaky = server.url("/flaky/retry-test/1");
    let c = check(
        dir.path(),
        &flaky,
        &["--retries", "2", "--retry-delay", "0s"],
    )
    .await;
    assert_eq!(
        (c["up"].clone(), c["attempts"].clone()),
        (true.into(), 2.into()),
        "{c}"
    );
    // A dead one: down, confirmed by every attempt.
    let dead = format!("tcp://127.0.0.1:{}", closed_port().await);
    let c = check(
        dir.path(),
        &dead,
        &["--retries", "2", "--retry-delay", "0s"],
    )
    .await;
    assert_eq!(
        (c["up"].clone(), c["attempts"].clone()),
        (false.into(), 3.into()),
        "{c}"
    );
    // Without retries: one attempt.
    let c = check(dir.path(), &dead, &[]).await;
    assert_eq!(c["attempts"], 1);
    // probe-once: within the deadline, the dead site's retries stop and its
    // failure is published all the same.
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            "[[site]]\nname = \"dead\"\nurl = \"{dead}\"\nretries = 10\nretry_delay = \"10s\"\n\n[[site]]\nname = \"flaky\"\nurl = \"{}\"\nretries = 1\nretry_delay = \"0s\"\n",
            server.url("/flaky/retry-probe/1")
        ),
    )
    .unwrap();
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run", "--deadline", "2s"],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let checks: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |name: &str| checks.iter().find(|c| c["site"] == name).unwrap().clone();
    assert_eq!(
        (by("flaky")["up"].clone(), by("flaky")["attempts"].clone()),
        (true.into(), 2.into())
    );
    assert_eq!(by("dead")["up"], false);
    assert_eq!(
        by("dead")["attempts"],
        1,
        "its retry waits past the deadline"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_site_does_what_probe_once_does_for_every_kind() {
    let _lock = PING_LOCK.lock().await;
    let _allowed = PingRange::set("0 2147483647");
    let dir = tempfile::tempdir().unwrap();
    let echo = echo_server().await;
    let dns = dns_server().await;
    let http = Server::start().await;
    let ca = std::env::var("STACK_TLS_CA").expect("STACK_TLS_CA: eval \"$(scripts/stack env)\"");
    let pg_port = std::env::var("SITEWATCH_DATABASE_URL")
        .ok()
        .and_then(|u| url::Url::parse(&u).ok()?.port())
        .unwrap_or(55432);
    let closed = closed_port().await;
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            r#"[[site]]
name = "web"
url = "{web}"
regex = "hello"

[[site]]
name = "echo"
url = "tcp://{echo}"
send = "PING\r\n"
regex = "PONG"

[[site]]
name = "closed"
url = "tcp://127.0.0.1:{closed}"
retries = 1
retry_delay = "0s"

[[site]]
name = "pg-tls"
url = "tls://localhost:{pg_port}?starttls=postgres"
ca_file = "{ca}"

[[site]]
name = "mx"
url = "dns://ok.test?type=MX&server={dns}"

[[site]]
name = "nx"
url = "dns://missing.test?server={dns}"

[[site]]
name = "ping"
url = "icmp://127.0.0.1"
"#,
            web = http.url("/ok"),
        ),
    )
    .unwrap();
    let run = sitewatch(dir.path(), &["probe-once", "--dry-run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let probed: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(probed.len(), 7);
    // What must agree: everything but the ids, the times and the run.
    let same = |c: &Value| {
        let mut c = c.clone();
        let o = c.as_object_mut().unwrap();
        for key in [
            "check_id",
            "started_at",
            "response_time_ms",
            "dns_ms",
            "connect_ms",
            "tls_ms",
            "ttfb_ms",
            "run_id",
        ] {
            o.remove(key);
        }
        c
    };
    for p in &probed {
        let name = p["site"].as_str().unwrap();
        let run = sitewatch(dir.path(), &["check", "--site", name, "--json"], &[]).await;
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let checked: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(same(&checked), same(p), "{name}");
    }
    let up: Vec<(&str, bool)> = probed
        .iter()
        .map(|c| (c["site"].as_str().unwrap(), c["up"].as_bool().unwrap()))
        .filter(|(n, _)| *n != "ping")
        .collect();
    assert!(
        up.contains(&("web", true)) && up.contains(&("echo", true)),
        "{up:?}"
    );
    assert!(
        up.contains(&("pg-tls", true)) && up.contains(&("mx", true)),
        "{up:?}"
    );
    assert!(
        up.contains(&("closed", false)) && up.contains(&("nx", false)),
        "{up:?}"
    );
    // --fail: a down site exits 1, naming it; an up one 0.
    let run = sitewatch(dir.path(), &["check", "--site", "closed", "--fail"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: closed is down: "),
        "{}",
        run.stderr
    );
    let run = sitewatch(dir.path(), &["check", "--site", "echo", "--fail"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = sitewatch(dir.path(), &["check", "--site", "nobody"], &[]).await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no site named `nobody` in sites.toml"),
        "{}",
        run.stderr
    );
}

/// HTTP's request body, header assertions, a body that must not match and
/// every operator, each outcome kept with the check and stored by drain,
/// the first failed the reason.
#[tokio::test(flavor = "multi_thread")]
async fn conditions_with_operators_are_kept_and_the_first_failed_is_the_reason() {
    use crate::support::{create_topic, db, kafka};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start().await;
    let echo = server.url("/echo");
    // Every operator, passing.
    let passing = [
        "[STATUS] == 200",
        "[STATUS] != 500",
        "[RESPONSE_TIME] < 10000",
        "[RESPONSE_TIME] <= 10000",
        "[RESPONSE_TIME] > 0",
        "[RESPONSE_TIME] >= 0",
        "[BODY].method == POST",
        "[BODY].body == re(ping)",
        "[BODY].content_type == application/json",
        "len([BODY].items) == 3",
        "has([BODY].status) == true",
        "has([BODY].errors) == false",
        "[BODY].status == any(UP, OK)",
        "[BODY] != re(ERROR|FATAL)",
        "[HEADER].X-Served-By == echo-1",
        "[HEADER].Content-Type == re(json)",
        "[IP] == 127.0.0.1",
    ];
    let mut args = vec!["--body", r#"{"ping": true}"#, "--method", "POST"];
    for c in &passing {
        args.extend(["--condition", c]);
    }
    let c = check(dir.path(), &echo, &args).await;
    assert_eq!(c["up"], true, "{c}");
    let outcomes = c["conditions"].as_array().unwrap();
    assert_eq!(outcomes.len(), passing.len());
    assert!(outcomes.iter().all(|o| o["passed"] == true), "{c}");
    assert_eq!(
        outcomes[0],
        serde_json::json!({"expression": "[STATUS] == 200", "passed": true, "actual": "200"})
    );
    // Each failing, alone: down, and the reason is the condition with what
    // was there.
    for (condition, reason) in [
        ("[STATUS] == 204", "[STATUS] == 204: got 200"),
        ("[RESPONSE_TIME] > 100000", "[RESPONSE_TIME] > 100000: got "),
        ("len([BODY].items) < 2", "len([BODY].items) < 2: got 3"),
        (
            "has([BODY].status) == false",
            "has([BODY].status) == false: got true",
        ),
        (
            "[BODY].status == any(DOWN, ERROR)",
            "[BODY].status == any(DOWN, ERROR): got UP",
        ),
        ("[BODY] != re(ping)", "[BODY] != re(ping): got {"),
        (
            "[HEADER].X-Served-By != echo-1",
            "[HEADER].X-Served-By != echo-1: got echo-1",
        ),
        (
            "[HEADER].X-Missing == 1",
            "[HEADER].X-Missing == 1: no such value",
        ),
        ("[BODY].method <= 3", "[BODY].method <= 3: got POST"),
        ("[BODY].nothing >= 1", "[BODY].nothing >= 1: no such value"),
    ] {
        let c = check(
            dir.path(),
            &echo,
            &[
                "--body",
                "ping",
                "--method",
                "POST",
                "--condition",
                "[STATUS] == 200",
                "--condition",
                condition,
            ],
        )
        .await;
        assert_eq!(c["up"], false, "{condition}: {c}");
        assert!(
            c["condition"].as_str().unwrap().starts_with(reason),
            "{condition}: {c}"
        );
        assert_eq!(c["conditions"][0]["passed"], true);
        assert_eq!(c["conditions"][1]["passed"], false);
    }
    // A text body goes as text.
    let c = check(
        dir.path(),
        &echo,
        &[
            "--body",
            "ping",
            "--method",
            "POST",
            "--condition",
            "[BODY].content_type == re(text/plain)",
        ],
    )
    .await;
    assert_eq!(c["up"], true, "{c}");
    // DNS and TLS conditions.
    let dns = dns_server().await;
    let c = check(
        dir.path(),
        &format!("dns://missing.test?server={dns}"),
        &["--condition", "[DNS_RCODE] == NXDOMAIN"],
    )
    .await;
    assert_eq!(c["conditions"][0]["passed"], true, "{c}");
    assert_eq!(c["up"], false, "NXDOMAIN is still down by default: {c}");
    let c = check(
        dir.path(),
        &format!("dns://ok.test?server={dns}"),
        &[
            "--condition",
            "len([DNS_ANSWERS]) == 1",
            "--condition",
            "[DNS_ANSWERS] == re(192\\.0\\.2\\.)",
        ],
    )
    .await;
    assert_eq!(c["up"], true, "{c}");
    let ca = Ca::new();
    let tls = Server::start_tls(ca.leaf(certs::VALID_UNTIL).server_config()).await;
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    let ca_file = dir.path().join("ca.pem").display().to_string();
    let url = format!("tls://127.0.0.1:{}", tls.addr.port());
    let c = check(
        dir.path(),
        &url,
        &[
            "--ca-file",
            &ca_file,
            "--condition",
            "[CERTIFICATE_DAYS_LEFT] > 100000",
        ],
    )
    .await;
    assert_eq!(c["up"], false);
    assert!(
        c["condition"]
            .as_str()
            .unwrap()
            .starts_with("[CERTIFICATE_DAYS_LEFT] > 100000: got "),
        "{c}"
    );

    // Stored by drain, as published.
    let topic = kafka::unique_topic("conditions");
    create_topic(dir.path(), &topic, 1).await;
    let db_url = db::fresh(dir.path()).await;
    std::fs::write(
        dir.path().join("sites.toml"),
        format!(
            "[[site]]\nname = \"echo\"\nurl = \"{echo}\"\nmethod = \"POST\"\nbody = \"ping\"\nconditions = [\"[STATUS] == 200\", \"[BODY].method == GET\"]\n"
        ),
    )
    .unwrap();
    let env = crate::drain::env(&topic, &db_url);
    for args in [&["migrate"][..], &["probe-once"], &["drain"]] {
        let run = sitewatch(dir.path(), args, &env).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    let client = db::connect(&db_url).await;
    let row = client
        .query_one("SELECT up, condition, conditions::text FROM checks", &[])
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0));
    assert_eq!(row.get::<_, String>(1), "[BODY].method == GET: got POST");
    let stored: Value = serde_json::from_str(&row.get::<_, String>(2)).unwrap();
    assert_eq!(
        stored,
        serde_json::json!([
            {"expression": "[STATUS] == 200", "passed": true, "actual": "200"},
            {"expression": "[BODY].method == GET", "passed": false, "actual": "POST"},
        ])
    );
}
