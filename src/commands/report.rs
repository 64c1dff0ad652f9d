//! `report`: builds the per-site report from PostgreSQL and writes it in
//! the chosen format, to stdout or `--output`.

use std::io::{IsTerminal, Write};

use anyhow::Context as _;
use time::OffsetDateTime;

use super::flags::{parse_duration, parse_time};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::report::{self, Options, html, render};
use crate::store;
use clap::Args;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The window of the checks count, latency percentiles and incidents
    /// (uptime is always given for 24h, 7d and 30d); whole UTC hours
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration, conflicts_with_all = ["period", "from"])]
    pub window: std::time::Duration,
    /// A calendar month, such as 2026-11, in --time-zone: the window is
    /// that month, uptime over it is `window_uptime_pct` (for SLAs)
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
    pub period: Option<String>,
    /// The window's start: a date (midnight in --time-zone) or an RFC 3339
    /// time; with --to
    #[arg(long, value_name = "DATE", requires = "to")]
    pub from: Option<String>,
    /// The window's end (not included); with --from
    #[arg(long, value_name = "DATE", requires = "from")]
    pub to: Option<String>,
    /// The IANA time zone of --period, --from and --to (default UTC)
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub time_zone: String,
    /// Only this site (repeat for more); all sites checked in the last 30
    /// days otherwise
    #[arg(long = "site", id = "site", value_name = "NAME")]
    pub sites: Vec<String>,
    /// `table` (a terminal), `markdown` (for $GITHUB_STEP_SUMMARY), `json`,
    /// `openmetrics` (for Prometheus: node_exporter's textfile collector,
    /// a Pushgateway), or `html`: a static status page written into the
    /// --output directory (index.html, status.json, badges/<site>.svg)
    /// `csv`: one row per site with the window's uptime, for SLA records.
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "markdown", "json", "openmetrics", "csv", "html"])]
    pub format: String,
    /// Write the report to this file instead of stdout (with `html`: this
    /// directory, made if missing)
    #[arg(long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// The report's clock, RFC 3339 (for tests)
    #[arg(long, hide = true, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
}

pub async fn run(settings: &Settings, args: &ReportArgs) -> Result<()> {
    let html = args.format == "html";
    if html && args.output.is_none() {
        return Err(Error::config(
            "--format html writes a directory (index.html, status.json, badges/): give it --output DIR",
        ));
    }
    // Three connections: the report's big reads run side by side.
    let connector = store::Connector::new(&settings.database, &store::Session::default())?;
    let (a, b, c) = tokio::try_join!(
        connector.connect(),
        connector.connect(),
        connector.connect(),
    )?;
    // A site's state by the rule `alert` uses: the same sites file, each
    // site's own [site.alerts], the maintenance windows.
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let config = crate::alert::config(settings, Some(&a), &env, crate::alert::policy::Urls::IfSet)
        .await
        .map_err(|problems| Error::config(&problems[0]))?;
    // The page's settings, checked before anything is read.
    let (_, base) = settings.sites.defaults();
    let look = report::look::Look::new(
        settings.sites.doc().and_then(|d| d.page.as_ref()),
        &base,
        &config,
    )
    .map_err(Error::config)?;
    let period = match (&args.period, &args.from, &args.to) {
        (Some(month), _, _) => Some(report::period::Period::month(month, &args.time_zone)),
        (None, Some(from), Some(to)) => {
            Some(report::period::Period::between(from, to, &args.time_zone))
        }
        _ => None,
    }
    .transpose()
    .map_err(Error::config)?;
    let now = args.at.unwrap_or_else(OffsetDateTime::now_utc);
    let (now, window) = match &period {
        Some(p) if p.from > now => {
            return Err(Error::config(format!(
                "the period starts in the future ({})",
                crate::message::rfc3339_ms::format(&p.from)
            )));
        }
        Some(p) => p.clock_and_window(),
        None => (now, args.window),
    };
    let options = Options {
        window,
        sites: args.sites.clone(),
        now,
        config,
        page: html,
    };
    let mut db = [a, b, c];
    // The hint only where it is the cause: a table that is not there.
    let failed = |e: anyhow::Error| {
        if store::is_missing_table(&e) {
            Error::Job(
                e.context("cannot build the report: a table is missing (run `sitewatch migrate`)"),
            )
        } else {
            Error::Job(e.context("cannot build the report"))
        }
    };
    let window = render::window_label(options.window);
    if let (true, Some(dir)) = (html, &args.output) {
        // A part of the sites at a time: each part's reports are built,
        // written and dropped before the next (each part in a snapshot of
        // its own).
        let sites = report::sites(&db[0], &options).await.map_err(failed)?;
        let mut writer = html::Writer::new(dir, &window, options.now, &look).map_err(Error::Job)?;
        for part in sites.chunks(html::SITES_PER_PART) {
            let options = Options {
                sites: part.to_vec(),
                ..options.clone()
            };
            let reports = report::build(&mut db, &options).await.map_err(failed)?;
            writer.add(&reports).map_err(Error::Job)?;
        }
        writer.finish().map_err(Error::Job)?;
        return Ok(());
    }
    let reports = report::build(&mut db, &options).await.map_err(failed)?;
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let colours = to_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let text = match args.format.as_str() {
        "json" => {
            let mut text = serde_json::to_string_pretty(&reports).expect("a report serializes");
            text.push('\n');
            text
        }
        "markdown" => render::markdown(&reports, &window),
        "openmetrics" => report::openmetrics::render(&reports, options.now),
        "csv" => {
            let (from, to) = match &period {
                Some(p) => (p.from, p.to),
                None => (options.now - options.window, options.now),
            };
            render::csv(&reports, from, to)
        }
        _ => render::table(
            &reports,
            &window,
            colours,
            to_terminal.then(width).flatten(),
        ),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Error::Job)?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`| head`) is not the report's failure.
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(())
}

/// The terminal's width: `COLUMNS` when set, else what the terminal says.
fn width() -> Option<usize> {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
}
