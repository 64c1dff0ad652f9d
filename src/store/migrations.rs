//! The migrations, compiled in, applied in order under an advisory lock,
//! each recorded with its checksum: a migration whose text changed after a
//! database applied it is refused, naming it.

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::keys::lock_key;

use super::ensure_partitions;

/// The migrations, in order; each file of `migrations/` is listed here (a
/// test checks that none is missing) and compiled into the binary, so a
/// container needs no extra files.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_checks.sql",
        include_str!("../../migrations/0001_checks.sql"),
    ),
    (
        2,
        "0002_site_collate_c.sql",
        include_str!("../../migrations/0002_site_collate_c.sql"),
    ),
    (
        3,
        "0003_partitions_and_rollups.sql",
        include_str!("../../migrations/0003_partitions_and_rollups.sql"),
    ),
    (
        4,
        "0004_views.sql",
        include_str!("../../migrations/0004_views.sql"),
    ),
    (
        5,
        "0005_rebuild_rollups.sql",
        include_str!("../../migrations/0005_rebuild_rollups.sql"),
    ),
    (
        6,
        "0006_degraded.sql",
        include_str!("../../migrations/0006_degraded.sql"),
    ),
    (
        7,
        "0007_redirects.sql",
        include_str!("../../migrations/0007_redirects.sql"),
    ),
    (
        8,
        "0008_sites.sql",
        include_str!("../../migrations/0008_sites.sql"),
    ),
    (
        9,
        "0009_alerts_and_runs.sql",
        include_str!("../../migrations/0009_alerts_and_runs.sql"),
    ),
    (
        10,
        "0010_packed_sketches.sql",
        include_str!("../../migrations/0010_packed_sketches.sql"),
    ),
    (
        11,
        "0011_json_matched.sql",
        include_str!("../../migrations/0011_json_matched.sql"),
    ),
    (
        12,
        "0012_packed_by_writers.sql",
        include_str!("../../migrations/0012_packed_by_writers.sql"),
    ),
    (
        13,
        "0013_state_rule.sql",
        include_str!("../../migrations/0013_state_rule.sql"),
    ),
    (
        14,
        "0014_condition_and_runs.sql",
        include_str!("../../migrations/0014_condition_and_runs.sql"),
    ),
    (
        15,
        "0015_notify.sql",
        include_str!("../../migrations/0015_notify.sql"),
    ),
    (
        16,
        "0016_check_kinds.sql",
        include_str!("../../migrations/0016_check_kinds.sql"),
    ),
    (
        17,
        "0017_page.sql",
        include_str!("../../migrations/0017_page.sql"),
    ),
];

/// Applies the migrations not yet applied, under an advisory lock so that
/// two at once are safe. Returns the names applied by this call.
pub async fn migrate(client: &mut Client) -> anyhow::Result<Vec<&'static str>> {
    let key = lock_key("sitewatch:migrate");
    client
        .execute("SELECT pg_advisory_lock($1)", &[&key])
        .await
        .context("cannot take the migration lock")?;
    let result = apply(client).await;
    // Partitions for yesterday to a week ahead, at every migrate.
    let result = match result {
        Ok(applied) => {
            let today = time::OffsetDateTime::now_utc().date().to_julian_day();
            ensure_partitions(
                client,
                &super::Learned::default(),
                (today - 1..=today + 7).collect(),
                false,
            )
            .await
            .map(|()| applied)
        }
        Err(e) => Err(e),
    };
    // Unlocking fails only with the connection, which releases the lock too.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&key])
        .await;
    result
}

/// A migration's checksum: SHA-256 of its text with CRLF line endings read
/// as LF (a checkout that converts line endings is the same migration), in
/// hex.
pub fn checksum(sql: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(sql.replace("\r\n", "\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the database recorded of a migration it applied.
struct Applied {
    name: String,
    checksum: Option<String>,
}

/// Why `recorded` is not the migration this binary carries, if it is not.
fn mismatch(version: i32, name: &str, sql: &str, recorded: &Applied) -> Option<String> {
    if recorded.name != name {
        return Some(format!(
            "migration {version} is {name} here, but the database applied it as {}: a released migration is never renamed or replaced",
            recorded.name
        ));
    }
    let ours = checksum(sql);
    match &recorded.checksum {
        Some(theirs) if *theirs != ours => Some(format!(
            "migration {name} changed after this database applied it (checksum {} here, {} recorded): restore migrations/{name} as it was released; a schema change goes in a new migration",
            &ours[..12],
            &theirs[..theirs.len().min(12)]
        )),
        _ => None,
    }
}

async fn apply(client: &mut Client) -> anyhow::Result<Vec<&'static str>> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                checksum text);
             ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text",
        )
        .await
        .context("cannot create schema_migrations")?;
    let done: std::collections::BTreeMap<i32, Applied> = client
        .query("SELECT version, name, checksum FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| {
            (
                r.get(0),
                Applied {
                    name: r.get(1),
                    checksum: r.get(2),
                },
            )
        })
        .collect();
    // Every applied migration is this binary's, before anything is applied.
    for (version, name, sql) in MIGRATIONS {
        if let Some(why) = done
            .get(version)
            .and_then(|recorded| mismatch(*version, name, sql, recorded))
        {
            anyhow::bail!(why);
        }
    }
    // Migrations applied before checksums were recorded get theirs now.
    for (version, _, sql) in MIGRATIONS {
        if done.get(version).is_some_and(|r| r.checksum.is_none()) {
            client
                .execute(
                    "UPDATE schema_migrations SET checksum = $2 WHERE version = $1 AND checksum IS NULL",
                    &[version, &checksum(sql)],
                )
                .await
                .context("cannot record the migrations' checksums")?;
        }
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if done.contains_key(version) {
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("migration {name} failed"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[version, name, &checksum(sql)],
        )
        .await?;
        tx.commit().await?;
        applied.push(*name);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_compiled_in_order() {
        let mut files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".sql"))
                .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(_, name, _)| *name).collect();
        assert_eq!(files, listed);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i32 + 1);
            assert!(name.starts_with(&format!("{version:04}_")));
        }
    }

    #[test]
    fn a_migration_is_refused_when_its_text_or_name_changed() {
        let (version, name, sql) = MIGRATIONS[4];
        let recorded = |name: &str, checksum: Option<String>| Applied {
            name: name.to_owned(),
            checksum,
        };
        assert_eq!(
            mismatch(version, name, sql, &recorded(name, Some(checksum(sql)))),
            None
        );
        assert_eq!(mismatch(version, name, sql, &recorded(name, None)), None);
        // Line endings converted by a checkout: the same migration.
        assert_eq!(checksum(sql), checksum(&sql.replace('\n', "\r\n")));
        let edited = format!("{sql}\n-- an edit\n");
        let why = mismatch(version, name, &edited, &recorded(name, Some(checksum(sql)))).unwrap();
        assert!(
            why.starts_with(&format!(
                "migration {name} changed after this database applied it"
            )) && why.contains(&format!("restore migrations/{name}")),
            "{why}"
        );
        let why = mismatch(
            version,
            name,
            sql,
            &recorded("0005_other.sql", Some(checksum(sql))),
        )
        .unwrap();
        assert!(why.contains("applied it as 0005_other.sql"), "{why}");
    }
}
