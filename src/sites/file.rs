//! The sites file's shape, as TOML (and inline JSON) reads it: every
//! table and key, each `[[site]]` read on its own so one bad site does not
//! hide the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

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
    /// Where the sites are, for a person: the file's path,
    /// `SITEWATCH_SITES` or the sites table.
    pub fn label(&self) -> String {
        match self {
            SitesSource::Inline(..) => "SITEWATCH_SITES".to_owned(),
            SitesSource::File(path, _) | SitesSource::Missing(path) => path.display().to_string(),
            SitesSource::Database(_) => "the sites table".to_owned(),
        }
    }

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
    /// The status page's own settings (`report --format html`).
    #[serde(default)]
    pub page: Option<PageRaw>,
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

/// One `[[notifier]]`; its URL (or key) is a secret, from the
/// environment. The other keys are each for some kinds only
/// (`alert::policy` says which).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierRaw {
    pub name: String,
    /// `webhook`, `slack`, `alertmanager`, `email`, `pagerduty`,
    /// `opsgenie`, `teams`, `discord`, `telegram`, `google_chat`, `ntfy`.
    pub kind: String,
    /// email: the recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// email: the sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// telegram: the chat (a number, or `@channel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    /// pagerduty, opsgenie, telegram: the API's base URL (the service's
    /// own by default; another region, or a proxy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// webhook: the body, a template of the event (minijinja).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// webhook with a template: the body's content type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Only these kinds of event (each `resolved` follows what it
    /// resolves); every kind when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Only the events of these sites (or of `groups`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sites: Option<Vec<String>>,
    /// Only the events of the sites of these groups (or of `sites`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// `[page]`: what the status page says of itself.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PageRaw {
    /// The page's title (`Status` by default).
    pub title: Option<String>,
    /// A sentence under the title.
    pub description: Option<String>,
    /// An image file (relative to the sites file), copied beside the page.
    pub logo: Option<PathBuf>,
    /// An icon file (relative to the sites file), copied beside the page.
    pub favicon: Option<PathBuf>,
    /// Links in the page's header.
    #[serde(default)]
    pub links: Vec<LinkRaw>,
    /// The footer's text.
    pub footer: Option<String>,
    /// A Markdown file of announcements (relative to the sites file).
    pub announcements: Option<PathBuf>,
}

/// One link of `[page]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRaw {
    pub name: String,
    pub url: String,
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
    /// The zone of `every`'s day and times, and of a `start` written
    /// without an offset (an IANA name; UTC when absent).
    pub time_zone: Option<String>,
    /// What the status page calls it.
    pub title: Option<String>,
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
    pub retries: Option<u32>,
    pub retry_delay: Option<String>,
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
    /// tcp:// and tls://: what to send once connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// A failed check is tried this many times more in its run before its
    /// result is published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// How long to wait before each retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<String>,
    /// Conditions with operators (`"[STATUS] == 200"`), all of which must
    /// hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<String>>,
    /// http(s): the request's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The group it belongs to (notifiers route by it; the status page
    /// shows it as a section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `false`: left out of the status page, its badges and status.json.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// `true`: the status page does not show its URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hide_url: Option<bool>,
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
        self.retries = self.retries.or(d.retries);
        self.retry_delay = self.retry_delay.or(d.retry_delay);
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

pub(super) fn settings_table<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
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
pub(super) struct Keyed {
    /// `timeout`, `alerts.quorum`; empty for the table itself.
    pub(super) path: String,
    pub(super) message: String,
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
pub(super) fn keyed<'de, T: serde::de::DeserializeOwned, D: serde::Deserializer<'de>>(
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
