//! The `sites` table: the sites kept in PostgreSQL, one row per site, one
//! column per key of a `[[site]]` (migrations 8 and 9). Read by `probe-once` with
//! `SITEWATCH_SITES_SOURCE=database`, written by the `sites` commands.

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sites::RawSite;
use crate::sites::keys::columns;

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
}

/// A missing table means a database that was never migrated: say so.
fn missing_table(e: tokio_postgres::Error, doing: &'static str) -> Error {
    let e = anyhow::Error::new(e);
    if crate::store::is_missing_table(&e) {
        Error::Job(anyhow::anyhow!(
            "{doing}: the database has no sites table: run `sitewatch migrate` first"
        ))
    } else {
        Error::Job(e.context(doing))
    }
}

/// Every row by name: its site as written, or why the row is not one (a
/// column of the wrong shape, such as `headers` that is not an object of
/// strings).
pub async fn read(client: &Client) -> Result<Vec<(String, std::result::Result<RawSite, String>)>> {
    let keys = columns();
    let rows = client
        .query(
            &format!(
                "SELECT name, (SELECT jsonb_strip_nulls(to_jsonb(k)) FROM (SELECT {keys}) k)::text
                 FROM sites ORDER BY name"
            ),
            &[],
        )
        .await
        .map_err(|e| missing_table(e, "cannot read the sites table"))?;
    Ok(rows
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let json: String = row.get(1);
            let site = serde_json::from_str::<RawSite>(&json).map_err(|e| e.to_string());
            (name, site)
        })
        .collect())
}

/// Inserts the sites that are new and updates those that differ, in one
/// statement; with `prune`, removes every other site, in the same
/// transaction.
pub async fn upsert(client: &mut Client, sites: &[RawSite], prune: bool) -> Result<Changes> {
    let json = serde_json::to_string(sites).expect("sites always serialize");
    let keys = columns();
    let update: Vec<String> = keys
        .split(", ")
        .skip(1)
        .map(|k| format!("{k} = EXCLUDED.{k}"))
        .collect();
    let compared: Vec<String> = keys.split(", ").skip(1).map(str::to_owned).collect();
    let sql = format!(
        "WITH upserted AS (
             INSERT INTO sites ({keys})
             SELECT {keys} FROM jsonb_populate_recordset(NULL::sites, $1::text::jsonb)
             ON CONFLICT (name) DO UPDATE SET {}, updated_at = now()
             WHERE ({}) IS DISTINCT FROM ({})
             RETURNING xmax = 0 AS added
         )
         SELECT count(*) FILTER (WHERE added), count(*) FILTER (WHERE NOT added) FROM upserted",
        update.join(", "),
        compared
            .iter()
            .map(|k| format!("sites.{k}"))
            .collect::<Vec<_>>()
            .join(", "),
        compared
            .iter()
            .map(|k| format!("EXCLUDED.{k}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let tx = client
        .transaction()
        .await
        .map_err(|e| missing_table(e, "cannot write the sites table"))?;
    let row = tx
        .query_one(&sql, &[&json])
        .await
        .map_err(|e| missing_table(e, "cannot write the sites table"))?;
    let (added, updated): (i64, i64) = (row.get(0), row.get(1));
    let removed = if prune {
        let names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
        tx.execute("DELETE FROM sites WHERE NOT (name = ANY($1))", &[&names])
            .await
            .context("cannot prune the sites table")?
    } else {
        0
    };
    tx.commit().await.context("cannot write the sites table")?;
    Ok(Changes {
        added: added as u64,
        updated: updated as u64,
        unchanged: sites.len() as u64 - added as u64 - updated as u64,
        removed,
    })
}

/// Adds one site; `false` when a site of that name exists (and `replace`
/// is not set: then it is replaced).
pub async fn add(client: &mut Client, site: &RawSite, replace: bool) -> Result<bool> {
    if replace {
        upsert(client, std::slice::from_ref(site), false).await?;
        return Ok(true);
    }
    let json = serde_json::to_string(site).expect("a site always serializes");
    let keys = columns();
    let n = client
        .execute(
            &format!(
                "INSERT INTO sites ({keys})
                 SELECT {keys} FROM jsonb_populate_record(NULL::sites, $1::text::jsonb)
                 ON CONFLICT (name) DO NOTHING"
            ),
            &[&json],
        )
        .await
        .map_err(|e| missing_table(e, "cannot write the sites table"))?;
    Ok(n == 1)
}

/// Removes one site; `false` when there was none of that name.
pub async fn remove(client: &Client, name: &str) -> Result<bool> {
    let n = client
        .execute("DELETE FROM sites WHERE name = $1", &[&name])
        .await
        .map_err(|e| missing_table(e, "cannot write the sites table"))?;
    Ok(n > 0)
}

/// The sites `probe-once` checks with `SITEWATCH_SITES_SOURCE=database`:
/// the table's rows validated as a file's sites are (with `source`'s
/// `[defaults]`), and a line naming each row that is not valid, which is
/// skipped: a table is edited live, and one bad row must not stop the
/// checks of the others. Connecting and reading end within `timeout`.
pub async fn load(
    db: &crate::config::DatabaseSettings,
    source: &crate::sites::SitesSource,
    timeout: std::time::Duration,
) -> Result<(Vec<crate::sites::Site>, Vec<String>)> {
    let session = crate::store::Session {
        application_name: "sitewatch probe-once".to_owned(),
        connect_timeout: timeout,
        limits: None,
    };
    let client = crate::store::connect_as(db, &session).await?;
    let rows = tokio::time::timeout(timeout, read(&client))
        .await
        .map_err(|_| {
            Error::Job(anyhow::anyhow!(
                "cannot read the sites table: no answer within {}",
                humantime::format_duration(timeout)
            ))
        })??;
    let mut sites = Vec::with_capacity(rows.len());
    let mut skipped = Vec::new();
    for (_, site) in crate::sites::validate_rows(rows, source) {
        match site {
            Ok(site) => sites.push(site),
            Err(why) => skipped.push(why),
        }
    }
    Ok((sites, skipped))
}
