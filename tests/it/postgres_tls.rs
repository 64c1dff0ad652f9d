//! PostgreSQL over verified TLS: the local stack's server runs with
//! `ssl = on` and a certificate for localhost and 127.0.0.1 signed by the
//! stack's own CA (`STACK_TLS_CA`).

use crate::support::certs::Ca;
use crate::support::{Exited, db, sitewatch};

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

async fn migrate(url: String, ca: Option<String>) -> Exited {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![("SITEWATCH_DATABASE_URL", url)];
    if let Some(ca) = ca {
        env.push(("SITEWATCH_DATABASE_CA", ca));
    }
    sitewatch(dir.path(), &["migrate", "--only", "database"], &env).await
}

fn last_line(run: &Exited) -> &str {
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
    // With no CA at all, as libpq: a configuration error, with the fix.
    let run = migrate(url("localhost", "verify-ca"), None).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        last_line(&run).contains("sslrootcert=system"),
        "{}",
        run.stderr
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn the_given_ca_is_the_only_one_trusted_and_sslrootcert_system_uses_the_system_store() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, Ca::new().pem()).unwrap();
    // The stack's CA stands in for the system store: OpenSSL reads its
    // default trust from SSL_CERT_FILE.
    let run_with = |url: String, ca: Option<String>| {
        let dir = dir.path().to_owned();
        async move {
            let mut env = vec![
                ("SITEWATCH_DATABASE_URL", url),
                ("SSL_CERT_FILE", stack_ca()),
            ];
            if let Some(ca) = ca {
                env.push(("SITEWATCH_DATABASE_CA", ca));
            }
            sitewatch(&dir, &["migrate", "--only", "database"], &env).await
        }
    };
    let pinned = run_with(
        url("localhost", "verify-full"),
        Some(other.display().to_string()),
    )
    .await;
    assert_eq!(pinned.code, 1, "a system CA was trusted: {}", pinned.stderr);
    let in_url = run_with(
        format!(
            "{}&sslrootcert={}",
            url("localhost", "verify-full"),
            other.display()
        ),
        None,
    )
    .await;
    assert_eq!(in_url.code, 1, "{}", in_url.stderr);
    let system = run_with(
        url("localhost", "verify-full").replace("sslmode=verify-full", "sslrootcert=system"),
        None,
    )
    .await;
    assert_eq!(system.code, 0, "{}", system.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn url_parameters_with_spaces_reach_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "{}&options=-c%20statement_timeout%3D4321ms&application_name=a+b%20c",
        url("localhost", "verify-full")
    );
    let run = sitewatch(
        dir.path(),
        &["migrate", "--only", "database"],
        &[
            ("SITEWATCH_DATABASE_URL", url),
            ("SITEWATCH_DATABASE_CA", stack_ca()),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}
