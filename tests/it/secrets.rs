//! Secrets never appear in any output, at any log level.

use crate::support::http::{self, Server};
use crate::support::sitewatch;

const KAFKA_PASSWORD: &str = "kafka-Hunter2-secret";
const DB_PASSWORD: &str = "pg-Swordfish-secret";

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_any_output_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let web = Server::start().await;
    let closed = http::closed_port().await;
    let password_file = dir.path().join("kafka-password");
    std::fs::write(&password_file, format!("{KAFKA_PASSWORD}\n")).unwrap();
    let env = vec![
        ("RUST_LOG", "trace".to_owned()),
        (
            "SITEWATCH_SITES",
            format!(r#"[{{"name":"a","url":"{}"}}]"#, web.url("/ok")),
        ),
        ("SITEWATCH_KAFKA_BROKERS", format!("127.0.0.1:{closed}")),
        ("SITEWATCH_KAFKA_PUBLISH_TIMEOUT", "1s".to_owned()),
        (
            "SITEWATCH_KAFKA_SECURITY_PROTOCOL",
            "sasl_plaintext".to_owned(),
        ),
        ("SITEWATCH_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512".to_owned()),
        ("SITEWATCH_KAFKA_SASL_USERNAME", "avnadmin".to_owned()),
        (
            "SITEWATCH_KAFKA_SASL_PASSWORD_FILE",
            password_file.display().to_string(),
        ),
        (
            "SITEWATCH_DATABASE_URL",
            format!(
                "postgres://avnadmin:{DB_PASSWORD}@127.0.0.1:{closed}/defaultdb?sslmode=disable"
            ),
        ),
    ];
    let runs: [&[&str]; 6] = [
        &["probe-once"],
        &["drain"],
        &["migrate", "--only", "database"],
        &["check", "http://127.0.0.1:1/"],
        &["--help"],
        &["drain", "--batch-size", "0"],
    ];
    for args in runs {
        let run = sitewatch(dir.path(), args, &env).await;
        if args[0] == "probe-once" {
            assert!(
                run.stderr.contains("TRACE"),
                "trace logging was not on: {}",
                run.stderr
            );
        }
        for secret in [KAFKA_PASSWORD, DB_PASSWORD] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "`sitewatch {}` printed a secret:\n{}\n{}",
                args.join(" "),
                run.stdout,
                run.stderr
            );
        }
    }
    // A bad secret setting is named, its value is not.
    let mut bad = env.clone();
    bad.push(("SITEWATCH_DATABASE_URL_FILE", "/nonexistent".to_owned()));
    let run = sitewatch(dir.path(), &["drain"], &bad).await;
    assert_eq!(run.code, 2);
    assert!(!run.stderr.contains(DB_PASSWORD), "{}", run.stderr);
}
