//! `check URL`: one manual check, printed for a person (or as JSON).

use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::message::{Check, rfc3339_ms};
use crate::probe::Prober;
use crate::sites::{self, Defaults, RawSite, StatusText};
use clap::Args;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The http:// or https:// URL to check
    pub url: String,
    /// The body must match this regular expression for the site to be up
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// HTTP method
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The whole check, DNS to last body byte
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,
    /// Status codes that count as up
    #[arg(long, default_value = "200-399", value_name = "CODES")]
    pub expect_status: String,
    /// Also trust the CA certificates in this PEM file
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Redirects followed at most (0: a 3xx is the result); the phase
    /// timings describe the last request
    #[arg(long, default_value_t = crate::sites::DEFAULT_MAX_REDIRECTS, value_name = "N")]
    pub max_redirects: u32,
    /// Print the message as JSON, as probe-once would publish it
    #[arg(long)]
    pub json: bool,
}

/// Checks the URL and prints the result; a down site still exits 0.
pub async fn run(settings: &Settings, args: &CheckArgs) -> Result<()> {
    let raw = RawSite {
        name: "check".to_owned(),
        url: args.url.clone(),
        method: Some(args.method.clone()),
        timeout: Some(args.timeout.clone()),
        expect_status: Some(StatusText::Text(args.expect_status.clone())),
        regex: args.regex.clone(),
        ca_file: args.ca_file.clone(),
        max_redirects: Some(args.max_redirects),
        ..RawSite::default()
    };
    let site = sites::validate(
        raw,
        &Defaults::default(),
        Path::new("."),
        &mut sites::Shared::default(),
    )
    .map_err(|e| Error::config(e.one_line().replacen("site `check`: ", "", 1)))?;
    let prober =
        Prober::new(std::slice::from_ref(&site), &settings.location).map_err(Error::config)?;
    let check = prober.check(&site).await;
    let text = if args.json {
        String::from_utf8(check.to_json()).expect("JSON is UTF-8") + "\n"
    } else {
        human(&check, OffsetDateTime::now_utc())
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Error::Job(e.into()))
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
    line("dns", ms(c.dns_ms));
    line("connect", ms(c.connect_ms));
    line("tls", ms(c.tls_ms));
    line("first byte", ms(c.ttfb_ms));
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
    if let (Some(kind), Some(error)) = (c.error_kind, &c.error) {
        line("error", format!("{}: {error}", kind.as_str()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches as _;

    /// `check`'s flags state a site's defaults as text; they must be the
    /// ones a site of the sites file gets (src/sites/keys.rs).
    #[test]
    fn the_flags_defaults_are_a_sites() {
        let matches = CheckArgs::augment_args(clap::Command::new("check"))
            .try_get_matches_from(["check", "http://127.0.0.1/"])
            .unwrap();
        let args = CheckArgs::from_arg_matches(&matches).unwrap();
        let default = |name: &str| sites::keys::named(name).unwrap().default.trim_matches('`');
        assert_eq!(args.method, default("method"));
        assert_eq!(args.timeout, default("timeout"));
        assert_eq!(args.expect_status, default("expect_status"));
        assert_eq!(args.max_redirects.to_string(), default("max_redirects"));
    }
}
