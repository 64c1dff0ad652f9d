//! `migrate` records each migration's checksum and refuses a database whose
//! applied migrations are not this binary's.

use sitewatch::store::{MIGRATIONS, checksum};

use crate::support::{db, sitewatch};

/// Each applied migration's version and recorded checksum.
async fn checksums(client: &tokio_postgres::Client) -> Vec<(i32, String)> {
    client
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_migration_is_refused_and_older_databases_get_their_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::fresh(dir.path()).await;
    let client = db::connect(&url).await;
    let recorded = checksums(&client).await;
    let expected: Vec<(i32, String)> = MIGRATIONS
        .iter()
        .map(|(version, _, sql)| (*version, checksum(sql)))
        .collect();
    assert_eq!(recorded, expected);

    // A database whose migration 5 was applied from another text (as if
    // the file had been edited since): refused, naming it, nothing applied.
    client
        .execute(
            "UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 5",
            &[],
        )
        .await
        .unwrap();
    client
        .execute(
            "DELETE FROM schema_migrations WHERE version = $1",
            &[&(MIGRATIONS.len() as i32)],
        )
        .await
        .unwrap();
    let env = [("SITEWATCH_DATABASE_URL", url.clone())];
    let run = sitewatch(dir.path(), &["migrate", "--only", "database"], &env).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    let name = MIGRATIONS[4].1;
    assert!(
        last.starts_with(&format!(
            "error: migration {name} changed after this database applied it (checksum {} here, 000000000000 recorded)",
            &checksum(MIGRATIONS[4].2)[..12]
        )),
        "{last}"
    );
    assert_eq!(
        db::count(&client, "SELECT count(*) FROM schema_migrations").await,
        MIGRATIONS.len() as i64 - 1,
        "nothing was applied"
    );

    // A database migrated before checksums were recorded: they are filled
    // in, and the missing migration applied.
    client
        .execute("UPDATE schema_migrations SET checksum = NULL", &[])
        .await
        .unwrap();
    let run = sitewatch(dir.path(), &["migrate", "--only", "database"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let recorded = checksums(&client).await;
    assert_eq!(recorded, expected);
}
