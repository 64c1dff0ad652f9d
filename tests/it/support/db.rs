//! The real PostgreSQL of the local stack: a fresh database per test.

use std::path::Path;

use tokio_postgres::{Client, NoTls};

/// The stack's database URL (its `sitewatch` database).
pub fn stack_url() -> String {
    std::env::var("SITEWATCH_DATABASE_URL").expect(
        "SITEWATCH_DATABASE_URL is not set: start the stack with `scripts/stack up` and `eval \"$(scripts/stack env)\"`, or run scripts/test",
    )
}

/// Connects to `url` without TLS.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Creates a database no other test uses, with no table; returns its URL.
pub async fn empty() -> String {
    let name = format!("sw_{}", uuid::Uuid::new_v4().simple());
    let admin = connect(&stack_url()).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = stack_url();
    format!("{}/{name}", &base[..base.rfind('/').unwrap()])
}

/// Creates a database no other test uses and migrates it with
/// `sitewatch migrate --only database`; returns its URL.
pub async fn fresh(dir: &Path) -> String {
    let url = empty().await;
    migrate(dir, &url).await;
    url
}

/// `sitewatch migrate --only database` on `url`, which must succeed.
pub async fn migrate(dir: &Path, url: &str) {
    let run = super::sitewatch(
        dir,
        &["migrate", "--only", "database"],
        &[("SITEWATCH_DATABASE_URL", url.to_owned())],
    )
    .await;
    assert_eq!(run.code, 0, "migrate failed: {}", run.stderr);
}

/// `SELECT count(*)` of a query's rows.
pub async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}
