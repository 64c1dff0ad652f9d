//! The sites file (TOML) and inline sites (JSON): parsed and validated into
//! [`Site`] values before anything is checked.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};
use crate::matcher::BodyRegex;
use crate::secret::Secret;

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

/// The largest `max_redirects`: browsers give up after 20, curl after 50.
pub const MAX_REDIRECTS: u32 = 50;

/// Where the sites come from.
#[derive(Debug, Clone)]
pub enum SitesSource {
    /// `SITEWATCH_SITES`: a JSON list of sites, and the sites file when
    /// there is one too: its `[settings]` and `[defaults]` still apply,
    /// its sites do not.
    Inline(String, Option<(PathBuf, SitesDoc)>),
    /// The sites file, already parsed (its `[settings]` are merged above).
    File(PathBuf, SitesDoc),
    /// The default sites file does not exist.
    Missing(PathBuf),
    /// `SITEWATCH_SITES_SOURCE=database`: the `sites` table, with the sites
    /// file's `[defaults]` when there is one.
    Database(Option<(PathBuf, SitesDoc)>),
}

impl SitesSource {
    /// The sites file, when there is one.
    pub fn doc(&self) -> Option<&SitesDoc> {
        match self {
            SitesSource::Inline(_, Some((_, doc)))
            | SitesSource::Database(Some((_, doc)))
            | SitesSource::File(_, doc) => Some(doc),
            _ => None,
        }
    }

    /// The `[defaults]` that apply, and the folder relative paths start
    /// from.
    pub fn defaults(&self) -> (Defaults, PathBuf) {
        match self {
            SitesSource::Inline(_, Some((path, doc)))
            | SitesSource::Database(Some((path, doc)))
            | SitesSource::File(path, doc) => (
                doc.defaults.clone(),
                path.parent().unwrap_or(Path::new(".")).to_owned(),
            ),
            _ => (Defaults::default(), PathBuf::from(".")),
        }
    }
}

/// The sites file as written, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitesDoc {
    /// Settings below flags and environment: same names as the
    /// `SITEWATCH_*` variables, lowercase, without the prefix.
    #[serde(default, deserialize_with = "settings_table")]
    pub settings: BTreeMap<String, String>,
    /// Values every site inherits unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// The sites.
    #[serde(default)]
    pub site: Vec<RawSite>,
    /// `alert`'s rules for every site (each can override them).
    #[serde(default)]
    pub alerts: Option<AlertsRaw>,
    /// Where `alert` sends events.
    #[serde(default)]
    pub notifier: Vec<NotifierRaw>,
    /// When `alert` keeps quiet.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceRaw>,
    /// The `[[site]]`s that are not sites at all (a key of the wrong type,
    /// an unknown key), one line each naming the site, its line and the
    /// key: `validate` lists them beside the other sites' problems; a job
    /// stops at the first.
    #[serde(skip)]
    pub invalid: Vec<String>,
}

/// `[alerts]`, or a site's `[site.alerts]`, as written: each key unset
/// falls back to `[alerts]`, then to the default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsRaw {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
    /// A number of locations, or `"majority"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_expiry_days: Option<Vec<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remind_every: Option<String>,
    /// Notifier names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notify: Option<Vec<String>>,
}

/// `quorum` as written: `2` or `"majority"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "expected a number of locations such as 2, or \"majority\""
)]
pub enum Quorum {
    Count(u32),
    Word(String),
}

/// One `[[notifier]]`; its URL is a secret, from the environment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierRaw {
    pub name: String,
    /// `webhook`, `slack` or `alertmanager`.
    pub kind: String,
}

/// One `[[maintenance]]`: a single window (`start`, `duration`) or a
/// weekly one (`every = "sun 02:00-03:00"`, UTC).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRaw {
    /// Site names, or `["*"]` for all.
    pub sites: Vec<String>,
    pub start: Option<String>,
    pub duration: Option<String>,
    pub every: Option<String>,
}

/// `[defaults]` of the sites file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub timeout: Option<String>,
    pub expect_status: Option<StatusText>,
    pub method: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub max_body_bytes: Option<u64>,
    pub interval: Option<String>,
    pub degraded_after: Option<String>,
    pub max_redirects: Option<u32>,
}

/// One `[[site]]` (or one element of `SITEWATCH_SITES`, or one row of the
/// `sites` table) as written. Serialized, it is a `[[site]]` again: what
/// `sites export` writes, keys left out where they are not set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSite {
    pub name: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<StatusText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// How often to check it, under a scheduler that ticks more often.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// An up check slower than this is `degraded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded_after: Option<String>,
    /// JSON paths and the values the body must hold there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<BTreeMap<String, serde_json::Value>>,
    /// Redirects followed at most; 0: a 3xx is the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
    /// `alert`'s rules for this site, over `[alerts]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertsRaw>,
}

impl RawSite {
    /// The site with every key it leaves out taken from `defaults` (its
    /// headers over theirs), and a relative `ca_file` made absolute from
    /// `base`: the same site, standing alone.
    pub fn standalone(mut self, defaults: &Defaults, base: &Path) -> RawSite {
        let d = defaults.clone();
        self.method = self.method.or(d.method);
        self.timeout = self.timeout.or(d.timeout);
        self.expect_status = self.expect_status.or(d.expect_status);
        self.max_body_bytes = self.max_body_bytes.or(d.max_body_bytes);
        self.interval = self.interval.or(d.interval);
        self.degraded_after = self.degraded_after.or(d.degraded_after);
        self.max_redirects = self.max_redirects.or(d.max_redirects);
        if let Some(mut headers) = d.headers {
            headers.extend(self.headers.unwrap_or_default());
            self.headers = Some(headers);
        }
        self.ca_file = self.ca_file.map(|p| {
            let joined = base.join(p);
            std::path::absolute(&joined).unwrap_or(joined)
        });
        self
    }
}

/// `expect_status` as written: `200` or `"200-399"` or `"200,301-302"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "expected a status code such as 200, or a string such as \"200-399\" or \"200,301-302\""
)]
pub enum StatusText {
    Code(u16),
    Text(String),
}

fn settings_table<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Text(s) => s,
                Scalar::Int(i) => i.to_string(),
            };
            (k, v)
        })
        .collect())
}

impl SitesDoc {
    /// Reads and parses a sites file; a syntax error names the file and
    /// line, a value of the wrong type its key. Each `[[site]]` is read on
    /// its own: one that is not a site is kept in [`SitesDoc::invalid`]
    /// and does not hide the others.
    pub fn read(path: &Path) -> Result<SitesDoc> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(format!("sites file {}: {e}", path.display())))?;
        let label = format!("sites file {}", path.display());
        // Where each line starts: a line is found by binary search, not by
        // counting from the top (40,000 keys in a 10,000-site file).
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let line_of = |offset: usize| starts.partition_point(|&s| s <= offset);
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|span| format!(" (line {})", line_of(span.start)))
                .unwrap_or_default();
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_owned();
            Error::config(format!("{label}{at}: {message}"))
        })?;
        let sites = table.remove("site");
        let mut doc: SitesDoc =
            keyed(toml::Value::Table(table)).map_err(|e| Error::config(format!("{label}: {e}")))?;
        let Some(sites) = sites else {
            return Ok(doc);
        };
        let toml::Value::Array(sites) = sites else {
            return Err(Error::config(format!(
                "{label}: site: expected [[site]] tables"
            )));
        };
        // Where each [[site]] and each of its keys is, for their lines.
        #[derive(Deserialize)]
        struct Spans {
            #[serde(default)]
            site: Vec<toml::Spanned<BTreeMap<String, toml::Spanned<toml::Value>>>>,
        }
        let spans: Vec<(usize, BTreeMap<String, usize>)> = toml::from_str::<Spans>(&text)
            .map(|s| {
                s.site
                    .iter()
                    .map(|t| {
                        let keys = t
                            .get_ref()
                            .iter()
                            .map(|(k, v)| (k.clone(), line_of(v.span().start)))
                            .collect();
                        (line_of(t.span().start), keys)
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (i, value) in sites.into_iter().enumerate() {
            let name = value
                .get("name")
                .and_then(toml::Value::as_str)
                .map_or_else(|| format!("#{}", i + 1), |n| format!("`{n}`"));
            match keyed::<RawSite, _>(value) {
                Ok(site) => doc.site.push(site),
                Err(e) => {
                    // The key's own line where it has one, else the site's.
                    let line = spans.get(i).and_then(|(site, keys)| {
                        e.key().and_then(|k| keys.get(k)).or(Some(site)).copied()
                    });
                    let line = line.map(|l| format!(" (line {l})")).unwrap_or_default();
                    doc.invalid
                        .push(format!("{}: site {name}{line}: {e}", path.display()));
                }
            }
        }
        Ok(doc)
    }
}

/// A value of the wrong shape, and the key it is about.
#[derive(Debug)]
struct Keyed {
    /// `timeout`, `alerts.quorum`; empty for the table itself.
    path: String,
    message: String,
}

impl Keyed {
    /// The first key of the path, or the unknown key the message names.
    fn key(&self) -> Option<&str> {
        let first = self.path.split(['.', '[']).next().filter(|k| !k.is_empty());
        first.or_else(|| {
            let rest = self.message.strip_prefix("unknown field `")?;
            rest.split('`').next()
        })
    }
}

impl std::fmt::Display for Keyed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unknown = format!("unknown field `{}`", self.path);
        if self.path.is_empty() || self.message.starts_with(&unknown) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Deserializes `value`, an error naming the key it is about:
/// `timeout: invalid type: integer `5`, expected a string`.
fn keyed<'de, T: serde::de::DeserializeOwned, D: serde::Deserializer<'de>>(
    value: D,
) -> std::result::Result<T, Keyed>
where
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        Keyed {
            path: if path == "." { String::new() } else { path },
            message: message.lines().next().unwrap_or_default().trim().to_owned(),
        }
    })
}

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
}

/// Basic auth taken from a site's URL; the password never prints.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<Secret>,
}

/// `url` as it may be shown: any `user:password@` replaced by `***@`. Works
/// on text that does not parse as a URL too, since that text lands in
/// errors.
pub fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..scheme_end + 3], &rest[at..]),
        None => text.to_owned(),
    }
}

/// Removes `user:password@` from an http(s) URL: what may be published.
pub fn strip_credentials(url: &mut Url) {
    // Neither can fail on an http(s) URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
}

/// Takes the credentials out of a URL (percent-decoded, as curl does).
fn take_credentials(url: &mut Url) -> Option<BasicAuth> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let auth = BasicAuth {
        username: decode(url.username()),
        password: url.password().map(|p| Secret::new(decode(p))),
    };
    strip_credentials(url);
    Some(auth)
}

/// Names and locations are labels in every row, message key and report:
/// control characters (a NUL, which PostgreSQL cannot store, a newline that
/// forges log lines) have no place in them.
pub fn check_label(what: &str, value: &str) -> std::result::Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{what} `{}` contains the control character {c:?}: use printable characters",
            value.escape_debug()
        )),
        None => Ok(()),
    }
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
    let mut shared = Shared::default();
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
    let mut url = Url::parse(&raw.url).map_err(|e| bad(format!("url `{shown_url}`: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(format!(
            "url `{shown_url}`: only http:// and https:// URLs with a host can be checked"
        )));
    }
    let auth = take_credentials(&mut url);
    let method_text = raw
        .method
        .or_else(|| defaults.method.clone())
        .unwrap_or_else(|| "GET".to_owned());
    let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
        .map_err(|_| bad(format!("method `{method_text}` is not an HTTP method")))?;
    let mut headers = HeaderMap::new();
    for (k, v) in defaults
        .headers
        .iter()
        .flatten()
        .chain(raw.headers.iter().flatten())
    {
        let header = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| bad(format!("header name `{k}` is not valid")))?;
        let value = HeaderValue::from_str(v)
            .map_err(|_| bad(format!("header `{k}` has a value that is not valid")))?;
        headers.insert(header, value);
    }
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
    let regex = match raw.regex.as_deref() {
        None => None,
        Some(re) if re.contains('\0') => {
            return Err(bad(
                "regex contains a NUL character, which cannot be stored: write it as \\x00".into(),
            ));
        }
        Some(re) => match shared.regexes.get(re) {
            Some(compiled) => Some(compiled.clone()),
            None => {
                let compiled = Arc::new(BodyRegex::new(re).map_err(|e| {
                    let reason = e.to_string();
                    let reason = reason.lines().last().unwrap_or("invalid").trim().to_owned();
                    bad(format!("regex `{re}` does not compile: {reason}"))
                })?);
                shared.regexes.insert(re.to_owned(), compiled.clone());
                Some(compiled)
            }
        },
    };
    let ca_file = raw.ca_file.map(|p| base.join(p));
    let ca_certs = match &ca_file {
        None => Arc::from([]),
        Some(path) if shared.ca_files.contains_key(path) => Arc::clone(&shared.ca_files[path]),
        Some(path) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(format!("ca_file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(bad(format!(
                    "ca_file {}: no PEM certificate in it",
                    path.display()
                )));
            }
            let certs: Arc<[_]> = certs.into();
            shared.ca_files.insert(path.clone(), Arc::clone(&certs));
            certs
        }
    };
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
    let max_body_bytes = raw
        .max_body_bytes
        .or(defaults.max_body_bytes)
        .unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_body_bytes > MAX_BODY_BYTES {
        return Err(bad(format!(
            "max_body_bytes {max_body_bytes} is larger than {MAX_BODY_BYTES} (64 MiB)"
        )));
    }
    let max_redirects = raw
        .max_redirects
        .or(defaults.max_redirects)
        .unwrap_or(DEFAULT_MAX_REDIRECTS);
    if max_redirects > MAX_REDIRECTS {
        return Err(bad(format!(
            "max_redirects {max_redirects} is more than {MAX_REDIRECTS}: a chain that long is a loop"
        )));
    }
    Ok(Site {
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
