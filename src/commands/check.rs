//! `check URL`: one manual check, printed for a person (or as JSON).

use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;

use super::site_flags::SiteFlags;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::message::{Check, rfc3339_ms};
use crate::probe::Prober;
use crate::sites::{self, Defaults};
use clap::Args;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// What to check: an http(s):// URL, tcp://host:port, tls://host:port,
    /// dns://name?type=A&server=host:port or icmp://host
    #[arg(required_unless_present = "site", conflicts_with = "site")]
    pub url: Option<String>,
    /// Check the site of that name of the sites file (or the sites table,
    /// with SITEWATCH_SITES_SOURCE=database) exactly as probe-once does,
    /// retries included
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// Print the message as JSON, as probe-once would publish it
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the site is down (for scripts); without it, a down site
    /// is data and exits 0
    #[arg(long)]
    pub fail: bool,
    #[command(flatten)]
    pub flags: SiteFlags,
}

/// Checks the URL (or the named site) and prints the result.
pub async fn run(settings: &Settings, args: &CheckArgs) -> Result<()> {
    let site = match (&args.site, &args.url) {
        (Some(name), _) => {
            if args.flags.any() {
                return Err(Error::config(
                    "--site checks the site as configured: give its keys in the sites file, or check a URL with flags",
                ));
            }
            let sites = super::probe_once::load_sites(settings, None).await?;
            sites.into_iter().find(|s| &s.name == name).ok_or_else(|| {
                Error::config(format!(
                    "no site named `{}` in {}",
                    crate::escape::terminal(name),
                    settings.sites.label()
                ))
            })?
        }
        (None, Some(url)) => {
            let raw = args.flags.raw("check", url)?;
            sites::validate(
                raw,
                &Defaults::default(),
                Path::new("."),
                &mut sites::Shared::default(),
            )
            .map_err(|e| Error::config(e.one_line().replacen("site `check`: ", "", 1)))?
        }
        (None, None) => return Err(Error::config("give a URL, or --site NAME")),
    };
    let prober =
        Prober::new(std::slice::from_ref(&site), &settings.location).map_err(Error::config)?;
    let never = tokio_util::sync::CancellationToken::new();
    let check = prober
        .check_confirmed(&site, &never)
        .await
        .expect("a check that is never stopped ends with a result");
    let text = if args.json {
        String::from_utf8(check.to_json()).expect("JSON is UTF-8") + "\n"
    } else {
        human(&check, OffsetDateTime::now_utc())
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Job(e.into()))?;
    if args.fail && !check.up {
        let what = if args.site.is_some() {
            &check.site
        } else {
            &check.url
        };
        return Err(Error::Job(anyhow::anyhow!(
            "{} is down{}",
            crate::escape::terminal(what),
            check
                .error
                .as_deref()
                .map(|e| format!(": {}", crate::escape::terminal(e)))
                .unwrap_or_default()
        )));
    }
    Ok(())
}

/// The check as a person reads it: a verdict, then one phase per line.
pub fn human(c: &Check, now: OffsetDateTime) -> String {
    let mut out = String::new();
    let verdict = if c.up { "UP" } else { "DOWN" };
    let status = match (c.status_code, &c.reason) {
        (Some(code), Some(reason)) => format!(" {code} {reason}"),
        (Some(code), None) => format!(" {code}"),
        _ => String::new(),
    };
    out.push_str(&format!("{} {} {verdict}{status}\n", c.method, c.url));
    let mut line = |label: &str, value: String| out.push_str(&format!("  {label:<12} {value}\n"));
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} ms"));
    if let (Some(n @ 1..), Some(to)) = (c.redirects, &c.final_url) {
        let hops = if n == 1 { "redirect" } else { "redirects" };
        line("redirected", format!("{n} {hops} to {to}"));
    }
    if let Some(ip) = c.ip {
        line("ip", ip.to_string());
    }
    // An HTTP check shows every phase (`-` for one it did not go
    // through); the other kinds show theirs.
    let http = c.url.starts_with("http");
    for (label, value) in [
        ("dns", c.dns_ms),
        ("connect", c.connect_ms),
        ("tls", c.tls_ms),
        ("first byte", c.ttfb_ms),
    ] {
        if http || value.is_some() {
            line(label, ms(value));
        }
    }
    line("total", ms(Some(c.response_time_ms)));
    if let Some(bytes) = c.body_bytes {
        line("body", format!("{bytes} bytes"));
    }
    if let Some(re) = &c.regex {
        let verdict = match c.regex_matched {
            Some(true) => "matched",
            Some(false) => "not matched",
            None => "not evaluated",
        };
        line("regex", format!("{re}: {verdict}"));
    }
    if let Some(expires) = c.tls_expires_at {
        let days = (expires - now).whole_days();
        line(
            "certificate",
            format!("expires {} ({days} days)", rfc3339_ms::format(&expires)),
        );
    }
    if let Some(names) = &c.tls_names {
        line("names", names.join(", "));
    }
    if let Some(rcode) = &c.dns_rcode {
        line("rcode", rcode.clone());
    }
    if let Some(answers) = &c.dns_answers {
        for a in answers {
            line("answer", a.clone());
        }
    }
    if let Some(loss) = c.packet_loss {
        line("loss", format!("{:.0}%", loss * 100.0));
    }
    for o in c.conditions.iter().flatten() {
        let verdict = if o.passed { "passed" } else { "FAILED" };
        let got = o.actual.as_deref().unwrap_or("nothing");
        line(
            "condition",
            format!("{verdict} {} (got {got})", o.expression),
        );
    }
    if let Some(n @ 2..) = c.attempts {
        line("attempts", n.to_string());
    }
    match (c.error_kind, &c.error) {
        (Some(kind), Some(error)) => line("error", format!("{}: {error}", kind.as_str())),
        (None, Some(error)) => line("down", error.clone()),
        _ => {}
    }
    out
}
