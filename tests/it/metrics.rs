//! Job metrics end to end: Debian's Pushgateway on loopback, fed by real
//! `drain` and `alert` runs, scraped by the test.

use std::time::Duration;

use crate::alert::Rig;
use crate::support::sitewatch;

struct Pushgateway {
    _process: tokio::process::Child,
    url: String,
}

impl Pushgateway {
    async fn start() -> Pushgateway {
        let port = crate::support::http::closed_port().await;
        let process = tokio::process::Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("prometheus-pushgateway is not installed: run scripts/stack install");
        let url = format!("http://127.0.0.1:{port}");
        let client = sitewatch::outbound::client(Duration::from_secs(2)).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client.get(format!("{url}/-/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the Pushgateway did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Pushgateway {
            _process: process,
            url,
        }
    }

    /// What it exposes.
    async fn scrape(&self) -> String {
        let client = sitewatch::outbound::client(Duration::from_secs(5)).unwrap();
        client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of `name` for `job` in what it exposes, if any.
    async fn value(&self, name: &str, job: &str) -> Option<f64> {
        let text = self.scrape().await;
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| l.contains(&format!("job=\"{job}\"")) && l.contains("location=\"eu/west 1\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_job_pushes_its_figures_and_a_failure_keeps_the_last_success() {
    let gateway = Pushgateway::start().await;
    let rig = Rig::new("metrics", "").await;
    let mut env = rig.env();
    env.push(("SITEWATCH_PUSHGATEWAY_URL", gateway.url.clone()));
    env.push(("SITEWATCH_LOCATION", "eu/west 1".to_owned()));
    let checks: Vec<_> = (0..3)
        .map(|m| rig.check("api", "eu", m as f64, false))
        .collect();
    let records: Vec<_> = checks.iter().map(crate::drain::record).collect();
    crate::support::kafka::publish(&rig.topic, &records).await;
    let run = sitewatch(rig.path(), &["drain"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        gateway.value("sitewatch_drain_stored", "drain").await,
        Some(3.0)
    );
    assert_eq!(
        gateway.value("sitewatch_drain_lag", "drain").await,
        Some(3.0)
    );
    assert_eq!(
        gateway.value("sitewatch_drain_dead_letters", "drain").await,
        Some(0.0)
    );
    assert_eq!(
        gateway.value("sitewatch_job_exit_code", "drain").await,
        Some(0.0)
    );
    assert!(
        gateway
            .value("sitewatch_job_duration_seconds", "drain")
            .await
            .unwrap()
            > 0.0
    );

    promtool_accepts(&gateway.scrape().await).await;

    // alert: the webhook refuses, the run fails (exit 1).
    rig.hook.answer(&[500]);
    let at = sitewatch::message::rfc3339_ms::format(&rig.at(2.5));
    let run = sitewatch(rig.path(), &["alert", "--at", &at], &env).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        gateway.value("sitewatch_job_exit_code", "alert").await,
        Some(1.0)
    );
    assert_eq!(
        gateway.value("sitewatch_alert_failed", "alert").await,
        Some(1.0)
    );
    assert_eq!(
        gateway
            .value("sitewatch_job_last_success_timestamp_seconds", "alert")
            .await,
        None,
        "never succeeded"
    );
    // The next run delivers: a success, with its time.
    let run = sitewatch(rig.path(), &["alert", "--at", &at], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let success = gateway
        .value("sitewatch_job_last_success_timestamp_seconds", "alert")
        .await
        .expect("a success is pushed with its time");
    assert!((success - time::OffsetDateTime::now_utc().unix_timestamp() as f64).abs() < 600.0);
    assert_eq!(
        gateway.value("sitewatch_alert_delivered", "alert").await,
        Some(1.0)
    );
    // A failure after it keeps the last success.
    let later = rig.at(3.0);
    let checks = [
        rig.check("api", "eu", 3.0, true),
        rig.check("api", "eu", 4.0, true),
    ];
    let records: Vec<_> = checks.iter().map(crate::drain::record).collect();
    crate::support::kafka::publish(&rig.topic, &records).await;
    let run = sitewatch(rig.path(), &["drain"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    rig.hook.answer(&[500]);
    let at = sitewatch::message::rfc3339_ms::format(&(later + time::Duration::minutes(2)));
    let run = sitewatch(rig.path(), &["alert", "--at", &at], &env).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        gateway.value("sitewatch_job_exit_code", "alert").await,
        Some(1.0)
    );
    assert_eq!(
        gateway
            .value("sitewatch_job_last_success_timestamp_seconds", "alert")
            .await,
        Some(success),
        "a failed run keeps the last success"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pushgateway_that_is_down_never_fails_the_job() {
    let rig = Rig::new("metrics-down", "").await;
    let mut env = rig.env();
    let port = crate::support::http::closed_port().await;
    env.push((
        "SITEWATCH_PUSHGATEWAY_URL",
        format!("http://127.0.0.1:{port}"),
    ));
    let run = sitewatch(rig.path(), &["drain"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot push the job's metrics"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&port.to_string()),
        "the URL is never shown: {}",
        run.stderr
    );
}

/// `promtool check metrics` (Debian's `prometheus`) on our families of a
/// scrape: Prometheus' own linter of names, help and types.
async fn promtool_accepts(scrape: &str) {
    use tokio::io::AsyncWriteExt;
    let ours: String = scrape
        .split_inclusive('\n')
        .filter(|l| l.contains("sitewatch_"))
        .collect();
    assert!(
        ours.contains("# TYPE sitewatch_drain_stored gauge"),
        "{ours}"
    );
    let mut child = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is not installed: run scripts/stack install");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ours.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
