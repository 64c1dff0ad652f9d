//! PostgreSQL over verified TLS: the local stack's server runs with
//! `ssl = on` and a certificate for localhost and 127.0.0.1 signed by the
//! stack's own CA (`STACK_TLS_CA`).

use crate::support::certs::Ca;
use crate::support::{Run, db, sitewatch};

fn stack_ca() -> String {
    std::env::var("STACK_TLS_CA").expect("STACK_TLS_CA is not set: eval \"$(scripts/stack env)\"")
}

/// The stack's database URL for `host` (connecting to 127.0.0.1 whatever
/// the name, so the certificate's name check is what is tested).
fn url(host: &str, sslmode: &str) -> String {
    let base = db::stack_url();
    let port = base
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    format!("postgres://postgres@{host}:{port}/sitewatch?hostaddr=127.0.0.1&sslmode={sslmode}")
}

async fn migrate(url: String, ca: Option<String>) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("SITEWATCH_DATABASE_URL", url)];
    if let Some(ca) = ca {
        env.push(("SITEWATCH_DATABASE_CA", ca));
    }
    sitewatch(dir.path(), &["migrate", "--only", "database"], &env).await
}

fn last_line(run: &Run) -> &str {
    run.stderr.lines().last().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_connects_with_the_right_ca_and_host_name() {
    let run = migrate(url("localhost", "verify-full"), Some(stack_ca())).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_refuses_a_certificate_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, Ca::new().pem()).unwrap();
    let run = migrate(
        url("localhost", "verify-full"),
        Some(other.display().to_string()),
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        last_line(&run).starts_with("error: cannot connect to PostgreSQL at localhost:")
            && last_line(&run).contains("TLS: the server's certificate is not signed by a trusted CA: set SITEWATCH_DATABASE_CA"),
        "{}",
        run.stderr
    );
    // With no CA at all the system's roots do not know the stack's CA either.
    let run = migrate(url("localhost", "verify-ca"), None).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_refuses_a_certificate_for_another_host_and_verify_ca_accepts_it() {
    let run = migrate(url("db.wrong.example", "verify-full"), Some(stack_ca())).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        last_line(&run)
            .contains("TLS: the server's certificate is not valid for host db.wrong.example"),
        "{}",
        run.stderr
    );
    let run = migrate(url("db.wrong.example", "verify-ca"), Some(stack_ca())).await;
    assert_eq!(
        run.code, 0,
        "verify-ca checks the chain, not the name: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn require_encrypts_without_verifying() {
    let run = migrate(url("db.wrong.example", "require"), None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}
