//! `sites list|add|remove|import|export`: the sites kept in PostgreSQL.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::site_flags::SiteFlags;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::site_table;
use crate::sites::{self, RawSite, SitesDoc, SitesSource};
use crate::store;
use clap::Args;
use clap::Subcommand;

#[derive(Debug, Args)]
pub struct SitesArgs {
    #[command(subcommand)]
    pub command: SitesCommand,
}

#[derive(Debug, Subcommand)]
pub enum SitesCommand {
    /// Every site of the table, each with what is wrong with it, if
    /// anything (such a site is skipped by probe-once)
    List {
        /// `table` or `json`
        #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Add a site, validated as a sites file's (exit 2 if it is not valid,
    /// or if a site of that name exists and --replace is not given)
    Add(Box<SiteAddArgs>),
    /// Remove a site (exit 2 if there is none of that name)
    Remove {
        /// The site's name
        name: String,
    },
    /// Add the sites of a sites file that are new, update those that
    /// differ (each with the file's [defaults] filled in and its ca_file
    /// made absolute); every site must be valid, or nothing is written
    Import {
        /// The sites file (TOML)
        file: std::path::PathBuf,
        /// Also remove the table's sites that the file does not have
        #[arg(long)]
        prune: bool,
    },
    /// The table as a sites file (TOML) on stdout, which `sites import`
    /// reads back unchanged
    Export,
}

#[derive(Debug, Args)]
pub struct SiteAddArgs {
    /// Unique and stable: the message key
    pub name: String,
    /// The http:// or https:// URL to check
    pub url: String,
    #[command(flatten)]
    pub flags: SiteFlags,
    /// Replace the site of that name if there is one
    #[arg(long)]
    pub replace: bool,
}

pub async fn run(settings: &Settings, args: &SitesArgs) -> Result<()> {
    match &args.command {
        SitesCommand::List { format } => list(settings, format == "json").await,
        SitesCommand::Add(add) => {
            let raw = add.flags.raw(&add.name, &add.url)?;
            let (defaults, base) = settings.sites.defaults();
            // The row keeps `${SITEWATCH_SECRET_...}` as written: the
            // secret need not be where the site is added.
            let mut shared = sites::Shared::default();
            shared.lenient_secrets = true;
            sites::validate(raw.clone(), &defaults, &base, &mut shared)?;
            let mut db = store::connect(&settings.database).await?;
            if !site_table::add(&mut db, &raw, add.replace).await? {
                return Err(Error::config(format!(
                    "site `{}` exists: add --replace to replace it, or `sitewatch sites remove {}` first",
                    raw.name, raw.name
                )));
            }
            println!("added site `{}`", raw.name);
            Ok(())
        }
        SitesCommand::Remove { name } => {
            let db = store::connect(&settings.database).await?;
            if !site_table::remove(&db, name).await? {
                return Err(Error::config(format!(
                    "no site named `{name}` in the sites table"
                )));
            }
            println!("removed site `{name}`");
            Ok(())
        }
        SitesCommand::Import { file, prune } => import(settings, file, *prune).await,
        SitesCommand::Export => export(settings).await,
    }
}

/// Upserts a sites file, each site standing alone; nothing is written
/// unless every site is valid.
async fn import(settings: &Settings, file: &Path, prune: bool) -> Result<()> {
    let doc = SitesDoc::read(file)?;
    let base = file.parent().unwrap_or(Path::new(".")).to_owned();
    let (_, problems) = sites::problems(&SitesSource::File(file.to_owned(), doc.clone()));
    if !problems.is_empty() {
        for line in &problems {
            eprintln!("{line}");
        }
        return Err(Error::config(format!(
            "{} problem{} in {}: nothing imported",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            file.display()
        )));
    }
    let raw: Vec<RawSite> = doc
        .site
        .into_iter()
        .map(|s| s.standalone(&doc.defaults, &base))
        .collect();
    let mut db = store::connect(&settings.database).await?;
    let c = site_table::upsert(&mut db, &raw, prune).await?;
    println!(
        "imported {}: {} added, {} updated, {} unchanged, {} removed",
        file.display(),
        c.added,
        c.updated,
        c.unchanged,
        c.removed
    );
    Ok(())
}

/// Every site of the table as one sites file.
async fn export(settings: &Settings) -> Result<()> {
    #[derive(Serialize)]
    struct Doc {
        site: Vec<RawSite>,
    }
    let db = store::connect(&settings.database).await?;
    let mut sites = Vec::new();
    for (name, site) in site_table::read(&db).await? {
        sites.push(site.map_err(|why| {
            Error::config(format!(
                "sites table: site `{name}` cannot be exported: {why}"
            ))
        })?);
    }
    let toml = toml::to_string(&Doc { site: sites })
        .map_err(|e| Error::config(format!("the sites table cannot be written as TOML: {e}")))?;
    let text = format!(
        "# The sites table, as written by `sitewatch sites export`: `sitewatch sites import` reads it back.\n\n{toml}"
    );
    write_out(&text)
}

/// Every site of the table, and what is wrong with each that probe-once
/// would skip.
async fn list(settings: &Settings, json: bool) -> Result<()> {
    let db = store::connect(&settings.database).await?;
    let rows = site_table::read(&db).await?;
    let raw: Vec<Option<RawSite>> = rows.iter().map(|(_, s)| s.clone().ok()).collect();
    let checked = sites::validate_rows(rows, &settings.sites);
    let text = if json {
        let out: Vec<serde_json::Value> = checked
            .iter()
            .zip(&raw)
            .map(|((name, site), raw)| {
                let mut v = match raw {
                    Some(raw) => serde_json::to_value(raw).expect("a site serializes"),
                    None => serde_json::json!({ "name": name }),
                };
                if let Some(url) = v.get("url").and_then(|u| u.as_str()) {
                    v["url"] = sites::redact_url(url).into();
                }
                v["problem"] = site.as_ref().err().cloned().into();
                v
            })
            .collect();
        serde_json::to_string_pretty(&out).expect("JSON always serializes") + "\n"
    } else {
        table(&checked, &raw)
    };
    write_out(&text)
}

fn table(
    checked: &[(String, std::result::Result<sites::Site, String>)],
    raw: &[Option<RawSite>],
) -> String {
    let mut rows = vec![[
        "NAME".to_owned(),
        "URL".to_owned(),
        "INTERVAL".to_owned(),
        "TIMEOUT".to_owned(),
        "STATE".to_owned(),
    ]];
    for ((name, site), raw) in checked.iter().zip(raw) {
        let url = raw
            .as_ref()
            .map_or("?".to_owned(), |r| sites::redact_url(&r.url));
        let (interval, timeout) = match site {
            Ok(s) => (
                s.interval.map_or("every run".to_owned(), |d| {
                    humantime::format_duration(d).to_string()
                }),
                humantime::format_duration(s.timeout).to_string(),
            ),
            Err(_) => ("-".to_owned(), "-".to_owned()),
        };
        let state = match site {
            Ok(_) => "ok".to_owned(),
            Err(why) => {
                let prefix = format!("sites table: site `{name}`: ");
                format!("skipped: {}", why.strip_prefix(&prefix).unwrap_or(why))
            }
        };
        rows.push([name.clone(), url, interval, timeout, state]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (i, width) in widths.iter().enumerate() {
            out += &format!("{:<width$}  ", r[i]);
        }
        out += &r[4];
        out += "\n";
    }
    if checked.is_empty() {
        out += "(no sites: add one with `sitewatch sites add NAME URL`)\n";
    }
    out
}

fn write_out(text: &str) -> Result<()> {
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Job(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_add_has_a_flag_for_each_key_that_declares_one() {
        let add = SiteAddArgs::augment_args(clap::Command::new("add"));
        let mut flags: Vec<String> = add
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "replace")
            .map(|l| format!("--{l}"))
            .collect();
        flags.sort_unstable();
        let mut declared: Vec<String> = crate::sites::keys::SITE_KEYS
            .iter()
            .filter_map(|k| k.flag.map(str::to_owned))
            .collect();
        declared.sort_unstable();
        assert_eq!(flags, declared);
    }
}
