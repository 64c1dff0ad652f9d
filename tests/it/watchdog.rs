//! The jobs' own dead man's switch: a receiver of the test's own, on
//! loopback, sees each job's pings by healthchecks.io's convention.

use crate::support::http::{Server, closed_port};
use crate::support::receiver::Receiver;
use crate::support::sitewatch;

fn paths(receiver: &Receiver) -> Vec<String> {
    receiver.received().into_iter().map(|r| r.path).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_pings_start_then_success_or_its_exit_code_and_never_fails_for_the_watchdog() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let watchdog = Receiver::start().await;
    let url = watchdog.url("/ping/3f1c0d1e-secret");
    let sites = format!(r#"[{{"name":"ok","url":"{}"}}]"#, web.url("/ok"));

    // A job that succeeds: start, then the URL itself.
    let run = sitewatch(
        dir.path(),
        &["probe-once", "--dry-run"],
        &[
            ("SITEWATCH_SITES", sites.clone()),
            ("SITEWATCH_WATCHDOG_URL", url.clone()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        paths(&watchdog),
        ["/ping/3f1c0d1e-secret/start", "/ping/3f1c0d1e-secret"]
    );

    // A job that fails: start, then its exit code, with its last line.
    let closed = closed_port().await;
    let run = sitewatch(
        dir.path(),
        &["drain", "--deadline", "5s"],
        &[
            (
                "SITEWATCH_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{closed}/sitewatch"),
            ),
            ("SITEWATCH_WATCHDOG_URL", url.clone()),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let received = watchdog.received();
    assert_eq!(received[2].path, "/ping/3f1c0d1e-secret/start");
    assert_eq!(received[3].path, "/ping/3f1c0d1e-secret/1");
    let last = run.stderr.lines().last().unwrap();
    assert_eq!(
        format!("error: {}", received[3].text),
        last,
        "the ping carries the job's last line"
    );

    // A configuration error after the settings: exit 2, pinged as such.
    let run = sitewatch(
        dir.path(),
        &["report", "--format", "html"],
        &[("SITEWATCH_WATCHDOG_URL", url.clone())],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(paths(&watchdog)[5], "/ping/3f1c0d1e-secret/2");

    // A watchdog that refuses, or is not there: the job's outcome is its
    // own, and the URL (a secret) is never shown.
    watchdog.answer(&[500, 500]);
    for url in [
        url.clone(),
        format!("http://127.0.0.1:{closed}/ping/3f1c0d1e-secret"),
    ] {
        let run = sitewatch(
            dir.path(),
            &["probe-once", "--dry-run"],
            &[
                ("SITEWATCH_SITES", sites.clone()),
                ("SITEWATCH_WATCHDOG_URL", url),
            ],
        )
        .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("watchdog"), "{}", run.stderr);
        assert!(!run.stderr.contains("3f1c0d1e"), "{}", run.stderr);
    }

    // `validate` connects nowhere: it checks the URL and pings nothing.
    let before = watchdog.received().len();
    let run = sitewatch(
        dir.path(),
        &["validate"],
        &[
            ("SITEWATCH_SITES", sites.clone()),
            ("SITEWATCH_WATCHDOG_URL", url.clone()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(watchdog.received().len(), before);
    let run = sitewatch(
        dir.path(),
        &["validate"],
        &[
            ("SITEWATCH_SITES", sites),
            (
                "SITEWATCH_WATCHDOG_URL",
                "ftp://example/secret-3f1c".to_owned(),
            ),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("SITEWATCH_WATCHDOG_URL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("secret-3f1c"), "{}", run.stderr);
}
