//! The sites file (TOML) and inline sites (JSON): parsed and validated into
//! [`Site`] values before anything is checked.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use url::Url;

use crate::error::{Error, Result};
use crate::matcher::BodyRegex;

mod credentials;
mod file;
pub mod keys;

pub use credentials::*;
pub use file::*;

/// Whole check, DNS to last body byte, when neither the site nor
/// `[defaults]` says otherwise: long enough for a slow page, short enough
/// for a minutely job.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Body bytes read at most per check; the regex sees only these, and a huge
/// body cannot exhaust memory.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// The largest `max_body_bytes`: a regex over more is not a health check,
/// and every check's body must fit in the shared body budget.
pub const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Redirects followed when neither the site nor `[defaults]` says: as Go's
/// HTTP client (so Gatus) and reqwest do.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// The wait before each retry when a site sets `retries` and not
/// `retry_delay`.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// Retries a site may ask for.
pub const MAX_RETRIES: u32 = 10;

/// What a site's URL says to check, by its scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `http://` and `https://`.
    Http,
    /// `tcp://host:port`: connect (and send, and read the answer).
    Tcp { host: String, port: u16 },
    /// `tls://host:port`: connect and complete a TLS handshake, after
    /// asking for it in the protocol's own words with `?starttls=postgres`
    /// or `?starttls=smtp`.
    Tls {
        host: String,
        port: u16,
        starttls: Option<Starttls>,
    },
    /// `dns://name?type=A&server=host:port`: one query.
    Dns {
        name: String,
        record: DnsType,
        /// `host:port`; the system's resolver (`/etc/resolv.conf`) when
        /// absent.
        server: Option<String>,
    },
    /// `icmp://host`: echo requests.
    Icmp { host: String },
}

impl Target {
    /// As the message's `method` says it: the HTTP method, or `TCP`,
    /// `TLS`, `DNS A`, `ICMP`.
    pub fn method(&self, http: &Method) -> String {
        match self {
            Target::Http => http.to_string(),
            Target::Tcp { .. } => "TCP".to_owned(),
            Target::Tls { .. } => "TLS".to_owned(),
            Target::Dns { record, .. } => format!("DNS {}", record.as_str()),
            Target::Icmp { .. } => "ICMP".to_owned(),
        }
    }
}

/// The protocols whose own request for TLS a `tls://` check can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starttls {
    /// PostgreSQL's SSLRequest.
    Postgres,
    /// SMTP's `EHLO` and `STARTTLS`.
    Smtp,
}

/// The record types a `dns://` check asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
}

impl DnsType {
    pub const ALL: [DnsType; 6] = [
        DnsType::A,
        DnsType::Aaaa,
        DnsType::Cname,
        DnsType::Mx,
        DnsType::Txt,
        DnsType::Ns,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DnsType::A => "A",
            DnsType::Aaaa => "AAAA",
            DnsType::Cname => "CNAME",
            DnsType::Mx => "MX",
            DnsType::Txt => "TXT",
            DnsType::Ns => "NS",
        }
    }
}

/// What `url` (of scheme tcp, tls, dns or icmp) checks, validated; `Http`
/// for http(s).
fn target(url: &Url, shown: &str) -> std::result::Result<Target, String> {
    let host = url
        .host_str()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        .filter(|h| !h.is_empty());
    let only_host = |example: &str| {
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "url `{shown}`: a {} URL carries no credentials",
                url.scheme()
            ));
        }
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err(format!(
                "url `{shown}`: a {} URL is a host and a port, such as {example}",
                url.scheme()
            ));
        }
        host.clone()
            .ok_or_else(|| format!("url `{shown}`: no host: write it as {example}"))
    };
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(Target::Http),
        "tcp" => {
            let host = only_host("tcp://db.example.com:5432")?;
            let port = url.port().ok_or_else(|| {
                format!(
                    "url `{shown}`: a tcp:// URL needs a port, such as tcp://db.example.com:5432"
                )
            })?;
            if url.query().is_some() {
                return Err(format!("url `{shown}`: a tcp:// URL takes no query"));
            }
            Ok(Target::Tcp { host, port })
        }
        "tls" => {
            let host = only_host("tls://kafka.example.com:9093")?;
            let mut starttls = None;
            for (key, value) in url.query_pairs() {
                starttls = match (key.as_ref(), value.as_ref()) {
                    ("starttls", "postgres") => Some(Starttls::Postgres),
                    ("starttls", "smtp") => Some(Starttls::Smtp),
                    _ => {
                        return Err(format!(
                            "url `{shown}`: a tls:// URL takes only starttls=postgres or starttls=smtp"
                        ));
                    }
                };
            }
            Ok(Target::Tls {
                host,
                port: url.port().unwrap_or(443),
                starttls,
            })
        }
        "icmp" => {
            let host = only_host("icmp://gateway.example.com")?;
            if url.port().is_some() || url.query().is_some() {
                return Err(format!(
                    "url `{shown}`: an icmp:// URL is a host alone, such as icmp://192.0.2.1"
                ));
            }
            Ok(Target::Icmp { host })
        }
        "dns" => {
            let name = only_host("dns://example.com?type=A")?;
            if url.port().is_some() {
                return Err(format!(
                    "url `{shown}`: the server goes in the query: dns://example.com?type=A&server=192.0.2.53:53"
                ));
            }
            let mut record = DnsType::A;
            let mut server = None;
            for (key, value) in url.query_pairs() {
                match key.as_ref() {
                    "type" => {
                        record = DnsType::ALL
                            .into_iter()
                            .find(|t| t.as_str().eq_ignore_ascii_case(&value))
                            .ok_or_else(|| {
                                format!(
                                    "url `{shown}`: type `{value}`: expected one of A, AAAA, CNAME, MX, TXT, NS"
                                )
                            })?;
                    }
                    "server" => {
                        let with_port =
                            if value.parse::<std::net::IpAddr>().is_ok() || !value.contains(':') {
                                if value.contains(':') {
                                    format!("[{value}]:53")
                                } else {
                                    format!("{value}:53")
                                }
                            } else {
                                value.into_owned()
                            };
                        server = Some(with_port);
                    }
                    other => {
                        return Err(format!(
                            "url `{shown}`: `{other}` is no dns:// parameter: expected type and server"
                        ));
                    }
                }
            }
            Ok(Target::Dns {
                name,
                record,
                server,
            })
        }
        _ => Err(format!(
            "url `{shown}`: expected an http://, https://, tcp://, tls://, dns:// or icmp:// URL with a host"
        )),
    }
}

/// The largest `max_redirects`: browsers give up after 20, curl after 50.
pub const MAX_REDIRECTS: u32 = 50;

/// The set of HTTP status codes that count as up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    /// Whether `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code))
    }

    fn parse(text: &StatusText) -> Option<StatusSet> {
        let text = match text {
            StatusText::Code(c) => c.to_string(),
            StatusText::Text(t) => t.clone(),
        };
        let code = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let range = match part.split_once('-') {
                Some((lo, hi)) => (code(lo)?, code(hi)?),
                None => (code(part)?, code(part)?),
            };
            if range.0 > range.1 {
                return None;
            }
            ranges.push(range);
        }
        Some(StatusSet(ranges))
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet(vec![(200, 399)])
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// A validated site, ready to check.
#[derive(Debug, Clone)]
pub struct Site {
    /// Unique and stable: the message key.
    pub name: String,
    pub url: Url,
    pub method: Method,
    pub headers: HeaderMap,
    /// The whole check, DNS to last body byte.
    pub timeout: Duration,
    pub expect_status: StatusSet,
    /// Shared by every site with the same pattern: a clone of a `Regex`
    /// would get its own match caches.
    pub regex: Option<Arc<BodyRegex>>,
    /// Extra CA to trust for this site, and its certificates.
    pub ca_file: Option<PathBuf>,
    pub ca_certs: Arc<[CertificateDer<'static>]>,
    pub max_body_bytes: u64,
    /// Checked once per interval when the scheduler ticks more often; `None`
    /// means at every run.
    pub interval: Option<Duration>,
    /// An up check slower than this is marked `degraded`; `None`: never.
    pub degraded_after: Option<Duration>,
    /// The body must be JSON holding these values.
    pub json: Option<Arc<crate::conditions::JsonConditions>>,
    /// Redirects followed at most, all within `timeout`; 0: none.
    pub max_redirects: u32,
    /// Credentials the URL carried (`https://user:pass@host/`): taken out of
    /// `url`, which is published, and sent as Basic auth.
    pub auth: Option<BasicAuth>,
    /// The URL as published in the message: as written, credentials
    /// removed, `${SITEWATCH_SECRET_...}` unexpanded.
    pub published: String,
    /// The secrets' values the URL and headers hold, scrubbed from what a
    /// check publishes.
    pub secrets: Arc<[String]>,
    /// What the URL's scheme says to check.
    pub target: Target,
    /// tcp:// and tls://: sent once connected.
    pub send: Option<Arc<[u8]>>,
    /// Conditions with operators, parsed.
    pub expressions: Arc<[crate::expression::Expression]>,
    /// http(s): the request's body.
    pub body: Option<Arc<[u8]>>,
    /// A failed check is tried this many times more in its run.
    pub retries: u32,
    pub retry_delay: Duration,
}

/// The sites as written, wherever the settings point: with the defaults
/// they inherit, the folder relative paths start from, and the label their
/// errors carry (the file's path, or `SITEWATCH_SITES`).
struct Written {
    label: String,
    raw: Vec<RawSite>,
    /// The entries that are not sites, one line each.
    invalid: Vec<String>,
    defaults: Defaults,
    base: PathBuf,
}

impl Written {
    /// The sites, or the first entry that is not one (a job stops there).
    fn strict(self) -> Result<Written> {
        match self.invalid.first() {
            Some(why) => Err(Error::config(why.clone())),
            None => Ok(self),
        }
    }
}

fn written(source: &SitesSource) -> Result<Written> {
    let (defaults, base) = source.defaults();
    match source {
        SitesSource::Inline(json, _) => {
            let list: Vec<serde_json::Value> = serde_json::from_str(json).map_err(|e| {
                Error::config(format!(
                    "SITEWATCH_SITES: {e} (expected a JSON list of sites)"
                ))
            })?;
            let mut raw = Vec::new();
            let mut invalid = Vec::new();
            for (i, value) in list.into_iter().enumerate() {
                let name = value
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .map_or_else(|| format!("#{}", i + 1), |n| format!("`{n}`"));
                match keyed::<RawSite, _>(value) {
                    Ok(site) => raw.push(site),
                    Err(e) => invalid.push(format!("SITEWATCH_SITES: site {name}: {e}")),
                }
            }
            Ok(Written {
                label: "SITEWATCH_SITES".to_owned(),
                raw,
                invalid,
                defaults,
                base,
            })
        }
        // `validate` checks the sites file whatever the source.
        SitesSource::File(path, doc) | SitesSource::Database(Some((path, doc))) => Ok(Written {
            label: path.display().to_string(),
            raw: doc.site.clone(),
            invalid: doc.invalid.clone(),
            defaults,
            base,
        }),
        SitesSource::Missing(path) => Err(Error::config(format!(
            "sites file {} not found: create it, or set SITEWATCH_SITES_FILE or SITEWATCH_SITES",
            path.display()
        ))),
        SitesSource::Database(None) => Err(Error::config(
            "SITEWATCH_SITES_SOURCE is database and there is no sites file: `sitewatch sites list` shows the table's sites and what is wrong with each",
        )),
    }
}

/// The sites of a file or `SITEWATCH_SITES` as written (none when the
/// default sites file does not exist).
pub fn raw(source: &SitesSource) -> Result<Vec<RawSite>> {
    match source {
        SitesSource::Missing(_) => Ok(Vec::new()),
        source => written(source).and_then(Written::strict).map(|w| w.raw),
    }
}

/// Loads and validates the sites of a file or `SITEWATCH_SITES`.
pub fn load(source: &SitesSource) -> Result<Vec<Site>> {
    let w = written(source)?.strict()?;
    validate_all(w.raw, &w.defaults, &w.base)
        .map_err(|e| Error::config(format!("{}: {}", w.label, e.one_line())))
}

/// Every problem of the sites the settings point at, one line each (empty
/// when they are all valid), and how many sites there are: each site is
/// validated on its own, so one bad site does not hide the next.
pub fn problems(source: &SitesSource) -> (usize, Vec<String>) {
    let Written {
        label,
        raw,
        invalid,
        defaults,
        base,
    } = match written(source) {
        Ok(w) => w,
        Err(e) => return (0, vec![e.one_line()]),
    };
    if raw.is_empty() && invalid.is_empty() {
        return (
            0,
            vec![format!("{label}: no sites to check: add a [[site]]")],
        );
    }
    let count = raw.len() + invalid.len();
    let mut names = HashSet::new();
    // Where `validate` runs (a pull request) there are no secrets.
    let mut shared = Shared {
        lenient_secrets: true,
        ..Shared::default()
    };
    let mut out = invalid;
    for site in raw {
        if !names.insert(site.name.clone()) {
            out.push(format!(
                "{label}: site `{}`: duplicate name: names are message keys and must be unique",
                site.name
            ));
            continue;
        }
        for e in every_problem(&site, &defaults, &base, &mut shared) {
            out.push(format!("{label}: {}", e.one_line()));
        }
    }
    (count, out)
}

/// Every problem of one site, not only the first that [`validate`] stops
/// at: its name and URL, then each other key validated on its own (with a
/// stand-in URL when the site's own is bad), each distinct message once.
fn every_problem(
    raw: &RawSite,
    defaults: &Defaults,
    base: &Path,
    shared: &mut Shared,
) -> Vec<Error> {
    let Err(first) = validate(raw.clone(), defaults, base, shared) else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut note = |result: Result<Site>| {
        if let Err(e) = result
            && seen.insert(e.one_line())
        {
            out.push(e);
        }
    };
    let bare = RawSite {
        name: raw.name.clone(),
        url: raw.url.clone(),
        ..RawSite::default()
    };
    let url_ok = validate(bare.clone(), &Defaults::default(), base, shared)
        .map_err(|e| note(Err(e)))
        .is_ok();
    let base_site = RawSite {
        url: if url_ok {
            raw.url.clone()
        } else {
            "http://stand-in.invalid/".to_owned()
        },
        ..bare
    };
    let alone: [fn(&RawSite, &Defaults, &mut RawSite, &mut Defaults); 11] = [
        |r, d, s, t| (s.method, t.method) = (r.method.clone(), d.method.clone()),
        |r, d, s, t| (s.headers, t.headers) = (r.headers.clone(), d.headers.clone()),
        |r, d, s, t| (s.timeout, t.timeout) = (r.timeout.clone(), d.timeout.clone()),
        |r, d, s, t| {
            (s.expect_status, t.expect_status) = (r.expect_status.clone(), d.expect_status.clone())
        },
        |r, _, s, _| s.regex = r.regex.clone(),
        |r, _, s, _| s.ca_file = r.ca_file.clone(),
        |r, d, s, t| (s.max_body_bytes, t.max_body_bytes) = (r.max_body_bytes, d.max_body_bytes),
        |r, d, s, t| (s.interval, t.interval) = (r.interval.clone(), d.interval.clone()),
        |r, d, s, t| {
            (s.degraded_after, t.degraded_after) =
                (r.degraded_after.clone(), d.degraded_after.clone())
        },
        |r, _, s, _| s.json = r.json.clone(),
        |r, d, s, t| (s.max_redirects, t.max_redirects) = (r.max_redirects, d.max_redirects),
    ];
    for set in alone {
        let (mut site, mut only) = (base_site.clone(), Defaults::default());
        set(raw, defaults, &mut site, &mut only);
        note(validate(site, &only, base, shared));
    }
    if out.is_empty() {
        // Keys fine on their own but not together: say what validate said.
        out.push(first);
    }
    out
}

/// Rows of the `sites` table (each decoded, or why not), validated each
/// on its own exactly as a file's sites are, with the `[defaults]` of
/// `source`: per row, its site or the one line that names what is wrong.
pub fn validate_rows(
    rows: Vec<(String, std::result::Result<RawSite, String>)>,
    source: &SitesSource,
) -> Vec<(String, std::result::Result<Site, String>)> {
    let (defaults, base) = source.defaults();
    let mut shared = Shared::default();
    rows.into_iter()
        .map(|(name, raw)| {
            let site = raw
                .map_err(|why| format!("sites table: site `{name}`: {why}"))
                .and_then(|raw| {
                    validate(raw, &defaults, &base, &mut shared)
                        .map_err(|e| format!("sites table: {}", e.one_line()))
                });
            (name, site)
        })
        .collect()
}

fn validate_all(raw: Vec<RawSite>, defaults: &Defaults, base: &Path) -> Result<Vec<Site>> {
    if raw.is_empty() {
        return Err(Error::config("no sites to check: add a [[site]]"));
    }
    let mut names = HashSet::new();
    let mut shared = Shared::default();
    let mut sites = Vec::with_capacity(raw.len());
    for site in raw {
        if !names.insert(site.name.clone()) {
            return Err(Error::config(format!(
                "site `{}`: duplicate name: names are message keys and must be unique",
                site.name
            )));
        }
        sites.push(validate(site, defaults, base, &mut shared)?);
    }
    Ok(sites)
}

/// A non-zero duration as written for `key` (`"10s"`); the error names the
/// key and shows `example`.
pub fn duration(key: &str, text: &str, example: &str) -> std::result::Result<Duration, String> {
    crate::duration::non_zero(text)
        .map_err(|_| format!("{key} `{text}`: expected a non-zero duration such as {example}"))
}

/// What sites have in common is built once: a regex is compiled once and
/// shared behind an `Arc`, so that all the sites that carry it use one
/// automaton and one pool of match caches (docs/src/decisions.md, Checks),
/// and a CA file is read once.
#[derive(Default)]
pub struct Shared {
    regexes: HashMap<String, Arc<BodyRegex>>,
    ca_files: HashMap<PathBuf, Arc<[CertificateDer<'static>]>>,
    /// `validate` (no secrets there): a `${SITEWATCH_SECRET_...}` that is
    /// not set is no problem.
    pub lenient_secrets: bool,
}

/// Validates one site, filling in `[defaults]`; relative `ca_file` paths are
/// taken from `base` (the sites file's folder).
pub fn validate(
    raw: RawSite,
    defaults: &Defaults,
    base: &Path,
    shared: &mut Shared,
) -> Result<Site> {
    let name = raw.name.trim().to_owned();
    let shown_url = redact_url(&raw.url);
    if name.is_empty() {
        return Err(Error::config(format!(
            "site with url `{shown_url}`: name is empty"
        )));
    }
    check_label("site name", &name).map_err(Error::config)?;
    let bad = |what: String| Error::config(format!("site `{name}`: {what}"));
    let lookup = |name: &str| std::env::var(name).ok();
    let lenient = shared.lenient_secrets;
    let (expanded, mut secrets) =
        crate::secret::expand(&raw.url, &lookup, lenient).map_err(|e| bad(format!("url: {e}")))?;
    let mut url = Url::parse(&expanded).map_err(|e| bad(format!("url `{shown_url}`: {e}")))?;
    let target = target(&url, &shown_url).map_err(bad)?;
    kind_keys(&raw, &target).map_err(bad)?;
    let auth = take_credentials(&mut url);
    // What is published: the URL as written, its secrets' names in place.
    let published = if secrets.is_empty() {
        url.to_string()
    } else {
        shown_url.clone()
    };
    let (method, headers, header_secrets) =
        request(&raw, defaults, &lookup, lenient).map_err(bad)?;
    secrets.extend(header_secrets);
    let timeout = match raw.timeout.as_ref().or(defaults.timeout.as_ref()) {
        None => DEFAULT_TIMEOUT,
        Some(t) => duration("timeout", t, "10s").map_err(bad)?,
    };
    let expect_status = match raw
        .expect_status
        .as_ref()
        .or(defaults.expect_status.as_ref())
    {
        None => StatusSet::default(),
        Some(text) => StatusSet::parse(text).ok_or_else(|| {
            bad(format!(
                "expect_status `{}`: expected codes or ranges such as \"200-399\" or \"200,301\"",
                match text {
                    StatusText::Code(c) => c.to_string(),
                    StatusText::Text(t) => t.clone(),
                }
            ))
        })?,
    };
    let regex = body_regex(raw.regex.as_deref(), shared).map_err(bad)?;
    let ca_file = raw.ca_file.as_ref().map(|p| base.join(p));
    let ca_certs = ca_certs(ca_file.as_deref(), shared).map_err(bad)?;
    let interval = raw
        .interval
        .as_ref()
        .or(defaults.interval.as_ref())
        .map(|t| duration("interval", t, "5m"))
        .transpose()
        .map_err(bad)?;
    let degraded_after = raw
        .degraded_after
        .as_ref()
        .or(defaults.degraded_after.as_ref())
        .map(|t| duration("degraded_after", t, "800ms"))
        .transpose()
        .map_err(bad)?;
    let json = match &raw.json {
        None => None,
        Some(pairs) => Some(Arc::new(
            crate::conditions::JsonConditions::new(pairs).map_err(bad)?,
        )),
    };
    let (max_body_bytes, max_redirects) = limits(&raw, defaults).map_err(bad)?;
    let (retries, retry_delay) = retries(&raw, defaults).map_err(bad)?;
    let send = raw.send.as_ref().map(|t| Arc::from(t.as_bytes()));
    let expressions = crate::expression::parse_all(raw.conditions.as_deref().unwrap_or_default())
        .map_err(bad)?
        .into();
    let body = raw.body.as_ref().map(|t| Arc::from(t.as_bytes()));
    let mut headers = headers;
    if raw.body.is_some() && !headers.contains_key(reqwest::header::CONTENT_TYPE) {
        let json =
            serde_json::from_str::<serde_json::Value>(raw.body.as_deref().unwrap_or_default())
                .is_ok();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static(if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            }),
        );
    }
    Ok(Site {
        published,
        secrets: secrets.into(),
        target,
        send,
        expressions,
        body,
        retries,
        retry_delay,
        name,
        url,
        method,
        headers,
        timeout,
        expect_status,
        regex,
        ca_file,
        ca_certs,
        max_body_bytes,
        interval,
        degraded_after,
        json,
        max_redirects,
        auth,
    })
}

/// The keys that mean something for this kind of check only.
fn kind_keys(raw: &RawSite, target: &Target) -> std::result::Result<(), String> {
    let http = *target == Target::Http;
    let socket = matches!(target, Target::Tcp { .. } | Target::Tls { .. });
    let misplaced = [
        ("method", raw.method.is_some() && !http),
        ("headers", raw.headers.is_some() && !http),
        ("expect_status", raw.expect_status.is_some() && !http),
        ("json", raw.json.is_some() && !http),
        ("max_redirects", raw.max_redirects.is_some() && !http),
        ("send", raw.send.is_some() && !socket),
        ("body", raw.body.is_some() && !http),
        (
            "regex",
            raw.regex.is_some() && matches!(target, Target::Icmp { .. }),
        ),
        (
            "ca_file",
            raw.ca_file.is_some() && !matches!(target, Target::Http | Target::Tls { .. }),
        ),
    ];
    match misplaced.iter().find(|(_, bad)| *bad) {
        Some((key, _)) => Err(format!(
            "`{key}` does not apply to a {} check: remove it",
            match target {
                Target::Http => "http",
                Target::Tcp { .. } => "tcp",
                Target::Tls { .. } => "tls",
                Target::Dns { .. } => "dns",
                Target::Icmp { .. } => "icmp",
            }
        )),
        None => Ok(()),
    }
}

/// `retries` and `retry_delay` (`[defaults]`' when the site has none).
fn retries(raw: &RawSite, defaults: &Defaults) -> std::result::Result<(u32, Duration), String> {
    let retries = raw.retries.or(defaults.retries).unwrap_or(0);
    if retries > MAX_RETRIES {
        return Err(format!("retries {retries}: at most {MAX_RETRIES}"));
    }
    let delay = match raw.retry_delay.as_ref().or(defaults.retry_delay.as_ref()) {
        None => DEFAULT_RETRY_DELAY,
        Some(t) if t.trim() == "0s" || t.trim() == "0" => Duration::ZERO,
        Some(t) => duration("retry_delay", t, "2s")?,
    };
    Ok((retries, delay))
}

/// The method and the headers (`[defaults]`' first, the site's over them).
fn request(
    raw: &RawSite,
    defaults: &Defaults,
    lookup: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
) -> std::result::Result<(Method, HeaderMap, Vec<String>), String> {
    let mut secrets = Vec::new();
    let method_text = raw
        .method
        .clone()
        .or_else(|| defaults.method.clone())
        .unwrap_or_else(|| "GET".to_owned());
    let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("method `{method_text}` is not an HTTP method"))?;
    let mut headers = HeaderMap::new();
    for (k, v) in defaults
        .headers
        .iter()
        .flatten()
        .chain(raw.headers.iter().flatten())
    {
        let header = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("header name `{k}` is not valid"))?;
        let (v, used) =
            crate::secret::expand(v, lookup, lenient).map_err(|e| format!("header `{k}`: {e}"))?;
        let mut value = HeaderValue::from_str(&v)
            .map_err(|_| format!("header `{k}` has a value that is not valid"))?;
        if !used.is_empty() {
            value.set_sensitive(true);
        }
        secrets.extend(used);
        headers.insert(header, value);
    }
    Ok((method, headers, secrets))
}

/// The body regex, compiled once for every site that carries it.
fn body_regex(
    regex: Option<&str>,
    shared: &mut Shared,
) -> std::result::Result<Option<Arc<BodyRegex>>, String> {
    Ok(match regex {
        None => None,
        Some(re) if re.contains('\0') => {
            return Err(
                "regex contains a NUL character, which cannot be stored: write it as \\x00".into(),
            );
        }
        Some(re) => match shared.regexes.get(re) {
            Some(compiled) => Some(compiled.clone()),
            None => {
                let compiled = Arc::new(BodyRegex::new(re).map_err(|e| {
                    let reason = e.to_string();
                    let reason = reason.lines().last().unwrap_or("invalid").trim().to_owned();
                    format!("regex `{re}` does not compile: {reason}")
                })?);
                shared.regexes.insert(re.to_owned(), compiled.clone());
                Some(compiled)
            }
        },
    })
}

/// The certificates of `ca_file`, read once for every site that names it.
fn ca_certs(
    ca_file: Option<&Path>,
    shared: &mut Shared,
) -> std::result::Result<Arc<[CertificateDer<'static>]>, String> {
    Ok(match ca_file {
        None => Arc::from([]),
        Some(path) if shared.ca_files.contains_key(path) => Arc::clone(&shared.ca_files[path]),
        Some(path) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "ca_file {}: no PEM certificate in it",
                    path.display()
                ));
            }
            let certs: Arc<[_]> = certs.into();
            shared.ca_files.insert(path.to_owned(), Arc::clone(&certs));
            certs
        }
    })
}

/// How much of a body is read, and how many redirects followed.
fn limits(raw: &RawSite, defaults: &Defaults) -> std::result::Result<(u64, u32), String> {
    let max_body_bytes = raw
        .max_body_bytes
        .or(defaults.max_body_bytes)
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes > MAX_BODY_BYTES {
        return Err(format!(
            "max_body_bytes {max_body_bytes} is larger than {MAX_BODY_BYTES} (64 MiB)"
        ));
    }
    let max_redirects = raw
        .max_redirects
        .or(defaults.max_redirects)
        .unwrap_or(DEFAULT_MAX_REDIRECTS);
    if max_redirects > MAX_REDIRECTS {
        return Err(format!(
            "max_redirects {max_redirects} is more than {MAX_REDIRECTS}: a chain that long is a loop"
        ));
    }
    Ok((max_body_bytes, max_redirects))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(url: &str) -> RawSite {
        RawSite {
            name: "s".into(),
            url: url.into(),
            ..RawSite::default()
        }
    }

    #[test]
    fn status_sets_parse_codes_ranges_and_lists() {
        let set = StatusSet::parse(&StatusText::Text("200-299, 301".into())).unwrap();
        assert!(set.contains(204) && set.contains(301) && !set.contains(302));
        assert_eq!(set.to_string(), "200-299,301");
        assert_eq!(
            StatusSet::parse(&StatusText::Code(200))
                .unwrap()
                .to_string(),
            "200"
        );
        assert!(StatusSet::parse(&StatusText::Text("399-200".into())).is_none());
        assert!(StatusSet::parse(&StatusText::Text("ok".into())).is_none());
    }

    #[test]
    fn defaults_fill_what_the_site_leaves_out() {
        let defaults = Defaults {
            timeout: Some("3s".into()),
            method: Some("head".into()),
            ..Defaults::default()
        };
        let s = validate(
            site("https://example.com/"),
            &defaults,
            Path::new("."),
            &mut Shared::default(),
        )
        .unwrap();
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert_eq!(s.method, Method::HEAD);
        assert_eq!(s.expect_status, StatusSet::default());
        assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    }

    #[test]
    fn invalid_sites_are_named_in_one_line() {
        let no = |raw: RawSite| {
            validate(
                raw,
                &Defaults::default(),
                Path::new("."),
                &mut Shared::default(),
            )
            .unwrap_err()
            .one_line()
        };
        assert!(no(site("ftp://example.com/")).starts_with("site `s`: url `ftp://example.com/`"));
        let e = no(RawSite {
            regex: Some("(".into()),
            ..site("http://x/")
        });
        assert!(e.starts_with("site `s`: regex `(` does not compile"), "{e}");
        assert!(!e.contains('\n'));
        let e = no(RawSite {
            timeout: Some("0s".into()),
            ..site("http://x/")
        });
        assert!(e.contains("timeout `0s`"), "{e}");
    }
}
