//! The flags of a site's keys, shared by `sites add` and `check`: one flag
//! per key of a `[[site]]` (src/sites/keys.rs names each), made a
//! [`RawSite`] and validated as a sites file's site is.

use clap::Args;

use crate::error::{Error, Result};
use crate::sites::{RawSite, StatusText};

/// A site's keys as flags; each left out is the key left out.
#[derive(Debug, Args, Default)]
pub struct SiteFlags {
    /// The body must match this regular expression
    #[arg(long, value_name = "RE")]
    pub regex: Option<String>,
    /// Check it once per this long (such as 5m), under a scheduler that
    /// ticks more often
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// The whole check, DNS to last body byte (default 10s)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// HTTP method (default GET)
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// Status codes that count as up (default 200-399)
    #[arg(long, value_name = "CODES")]
    pub expect_status: Option<String>,
    /// A request header, `Name: value` (repeat for more)
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// Also trust the CA certificates in this PEM file (made absolute)
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Body bytes read at most (default 1048576)
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<u64>,
    /// An up check slower than this is `degraded` (such as 800ms)
    #[arg(long, value_name = "DURATION")]
    pub degraded_after: Option<String>,
    /// A JSON condition, `$.path=value` (the value as JSON, or else as a
    /// string; repeat for more)
    #[arg(long = "json-path", value_name = "PATH=VALUE", value_parser = parse_json_condition)]
    pub json_path: Vec<(String, serde_json::Value)>,
    /// Redirects followed at most (default 10; 0: a 3xx is the result)
    #[arg(long, value_name = "N")]
    pub max_redirects: Option<u32>,
    /// tcp:// and tls://: what to send once connected
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// A failed check is tried this many times more in its run (default 0)
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// How long to wait before each retry (default 1s)
    #[arg(long, value_name = "DURATION")]
    pub retry_delay: Option<String>,
    /// A condition with an operator, such as '[STATUS] == 200' (repeat for
    /// more; all must hold)
    #[arg(long = "condition", value_name = "CONDITION")]
    pub conditions: Vec<String>,
    /// http(s): the request's body
    #[arg(long, value_name = "TEXT")]
    pub body: Option<String>,
    /// The group it belongs to (notifiers can take a group's events; the
    /// status page shows it as a section)
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// `false`: left out of the status page, its badges and status.json
    #[arg(long, value_name = "BOOL")]
    pub public: Option<bool>,
    /// `true`: the status page does not show its URL
    #[arg(long, value_name = "BOOL")]
    pub hide_url: Option<bool>,
}

impl SiteFlags {
    /// The site these flags describe, as a `[[site]]` would write it.
    pub fn raw(&self, name: &str, url: &str) -> Result<RawSite> {
        let a = self;
        let ca_file = a
            .ca_file
            .as_ref()
            .map(|p| std::path::absolute(p).map_err(|e| Error::config(format!("--ca-file: {e}"))))
            .transpose()?;
        Ok(RawSite {
            name: name.to_owned(),
            url: url.to_owned(),
            method: a.method.clone(),
            headers: (!a.headers.is_empty()).then(|| a.headers.iter().cloned().collect()),
            timeout: a.timeout.clone(),
            expect_status: a.expect_status.clone().map(StatusText::Text),
            regex: a.regex.clone(),
            ca_file,
            max_body_bytes: a.max_body_bytes,
            interval: a.interval.clone(),
            degraded_after: a.degraded_after.clone(),
            json: (!a.json_path.is_empty()).then(|| a.json_path.iter().cloned().collect()),
            max_redirects: a.max_redirects,
            alerts: None,
            group: a.group.clone(),
            send: a.send.clone(),
            retries: a.retries,
            retry_delay: a.retry_delay.clone(),
            conditions: (!a.conditions.is_empty()).then(|| a.conditions.clone()),
            body: a.body.clone(),
            public: a.public,
            hide_url: a.hide_url,
        })
    }

    /// Whether any flag is given.
    pub fn any(&self) -> bool {
        self.raw("x", "x").is_ok_and(|r| {
            r != RawSite {
                name: "x".to_owned(),
                url: "x".to_owned(),
                ..RawSite::default()
            }
        })
    }
}

/// `Name: value`.
fn parse_header(text: &str) -> Result<(String, String), String> {
    text.split_once(':')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}` is not a header such as `User-Agent: sitewatch`"))
}

/// `$.path=value`: the value is JSON when it parses as JSON (`3`, `true`,
/// `"x"`), else a string (`UP`).
fn parse_json_condition(text: &str) -> Result<(String, serde_json::Value), String> {
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not a condition such as `$.status=UP`"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    Ok((path.to_owned(), value))
}
