//! `validate`: every problem of the settings and of the sites file, one
//! line each, and nothing else done. The settings were loaded before this
//! runs, their problems collected rather than fatal; one that stops the
//! loading itself (a sites file that is not TOML) has already exited 2,
//! naming it.

use crate::config::Settings;
use crate::error::{Error, Result};
use clap::Args;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Also require each notifier's URL (SITEWATCH_NOTIFIER_<NAME>_URL or
    /// its _FILE), as `alert` does; without it a missing URL is no problem
    /// (a pull request has no secrets), a set one must still be http(s)
    #[arg(long)]
    pub notifier_urls: bool,
}

pub fn run(settings: &Settings, args: &ValidateArgs) -> Result<()> {
    let (count, sites) = crate::sites::problems(&settings.sites);
    // `alert`'s configuration: [alerts], [site.alerts], [[notifier]] (with
    // their URLs' variables) and [[maintenance]].
    let raw = crate::sites::raw(&settings.sites).unwrap_or_default();
    let env = std::env::vars().collect();
    let urls = if args.notifier_urls {
        crate::alert::policy::Urls::Required
    } else {
        crate::alert::policy::Urls::IfSet
    };
    let loaded = crate::alert::policy::load(settings.sites.doc(), &raw, &env, urls);
    // The status page's [page]: its files and links.
    let page = match &loaded {
        Ok(config) => {
            let (_, base) = settings.sites.defaults();
            crate::report::look::Look::new(
                settings.sites.doc().and_then(|d| d.page.as_ref()),
                &base,
                config,
            )
            .err()
            .into_iter()
            .collect()
        }
        Err(_) => Vec::new(),
    };
    let alerts = loaded.err().unwrap_or_default();
    let problems: Vec<&String> = settings
        .problems
        .iter()
        .chain(&sites)
        .chain(&alerts)
        .chain(&page)
        .collect();
    if problems.is_empty() {
        match count {
            1 => println!("1 site, no problem found"),
            n => println!("{n} sites, no problem found"),
        }
        return Ok(());
    }
    for line in &problems {
        eprintln!("{line}");
    }
    Err(Error::config(match problems.len() {
        1 => "1 problem found (above)".to_owned(),
        n => format!("{n} problems found (above)"),
    }))
}
