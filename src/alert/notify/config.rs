//! A `[[notifier]]`, validated: its kind, its secret (a URL, or a key for
//! the services addressed by key), the keys its kind needs, and which
//! events it takes.

use std::collections::HashMap;

use crate::secret::Secret;
use crate::sites::NotifierRaw;

/// Where events go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Webhook,
    Slack,
    Alertmanager,
    Email,
    PagerDuty,
    Opsgenie,
    Teams,
    Discord,
    Telegram,
    GoogleChat,
    Ntfy,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Webhook,
        Kind::Slack,
        Kind::Alertmanager,
        Kind::Email,
        Kind::PagerDuty,
        Kind::Opsgenie,
        Kind::Teams,
        Kind::Discord,
        Kind::Telegram,
        Kind::GoogleChat,
        Kind::Ntfy,
    ];

    /// As the sites file writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Slack => "slack",
            Kind::Alertmanager => "alertmanager",
            Kind::Email => "email",
            Kind::PagerDuty => "pagerduty",
            Kind::Opsgenie => "opsgenie",
            Kind::Teams => "teams",
            Kind::Discord => "discord",
            Kind::Telegram => "telegram",
            Kind::GoogleChat => "google_chat",
            Kind::Ntfy => "ntfy",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// What its secret is: `Url` (`SITEWATCH_NOTIFIER_<NAME>_URL`) or `Key`
    /// (`..._KEY`: PagerDuty's routing key, Opsgenie's API key, Telegram's
    /// bot token).
    pub fn secret(self) -> SecretKind {
        match self {
            Kind::PagerDuty | Kind::Opsgenie | Kind::Telegram => SecretKind::Key,
            _ => SecretKind::Url,
        }
    }

    /// The service's own API, for the kinds addressed by key.
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Kind::PagerDuty => Some("https://events.pagerduty.com"),
            Kind::Opsgenie => Some("https://api.opsgenie.com"),
            Kind::Telegram => Some("https://api.telegram.org"),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Url,
    Key,
}

/// The event kinds a notifier can choose in `events` (`resolved` follows
/// the kind it resolves).
pub const EVENT_KINDS: &[&str] = &[
    "down",
    "reminder",
    "stale",
    "degraded",
    "tls_expiring",
    "prober_down",
];

#[derive(Debug, Clone)]
pub struct Notifier {
    pub name: String,
    pub kind: Kind,
    /// Its URL, or its key ([`Kind::secret`]).
    pub secret: Secret,
    /// The API's base URL, for the kinds addressed by key.
    pub endpoint: String,
    /// email: recipients and sender; telegram: the chat.
    pub to: Vec<String>,
    pub from: Option<String>,
    pub chat_id: Option<String>,
    /// webhook: the body template and its content type.
    pub template: Option<String>,
    pub content_type: String,
    pub routes: Routes,
}

/// Which events a notifier takes; `None`: every one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routes {
    pub events: Option<Vec<String>>,
    pub sites: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
}

impl Routes {
    /// Whether an event of `kind` (for `resolved`, the kind it resolves)
    /// about `site` (of `group`) goes to this notifier. An event of no
    /// site (a prober's) goes wherever its kind does: it concerns every
    /// site.
    pub fn take(&self, kind: &str, site: Option<&str>, group: Option<&str>) -> bool {
        let kind = if kind == "reminder" && self.events.is_some() {
            // A reminder is of a `down`: taken with it unless listed alone.
            if self.lists("reminder") {
                "reminder"
            } else {
                "down"
            }
        } else {
            kind
        };
        if self.events.is_some() && !self.lists(kind) {
            return false;
        }
        let Some(site) = site else { return true };
        if self.sites.is_none() && self.groups.is_none() {
            return true;
        }
        let by_site = self
            .sites
            .as_ref()
            .is_some_and(|s| s.iter().any(|n| n == site || n == "*"));
        let by_group = group.is_some_and(|g| {
            self.groups
                .as_ref()
                .is_some_and(|gs| gs.iter().any(|n| n == g))
        });
        by_site || by_group
    }

    fn lists(&self, kind: &str) -> bool {
        self.events
            .as_ref()
            .is_some_and(|e| e.iter().any(|k| k == kind))
    }
}

/// The variable that holds a notifier's URL: `SITEWATCH_NOTIFIER_OPS_URL`.
pub fn url_variable(name: &str) -> String {
    variable(name, SecretKind::Url)
}

/// The variable of a notifier's secret: `SITEWATCH_NOTIFIER_OPS_URL` or
/// `..._KEY`.
pub fn variable(name: &str, secret: SecretKind) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let what = match secret {
        SecretKind::Url => "URL",
        SecretKind::Key => "KEY",
    };
    format!("SITEWATCH_NOTIFIER_{upper}_{what}")
}

/// Whether a notifier's secret must be set: `alert` needs it; `validate`
/// (run where there are no secrets, such as a pull request) checks it
/// only when set, unless told `--notifier-urls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urls {
    Required,
    IfSet,
}

/// A `[[notifier]]`, validated; the error names it and says what to do.
pub fn notifier(
    raw: &NotifierRaw,
    env: &HashMap<String, String>,
    urls: Urls,
) -> Result<Notifier, String> {
    let name = &raw.name;
    let kind = Kind::parse(&raw.kind).ok_or_else(|| {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!(
            "notifier `{name}`: kind `{}`: expected one of {}",
            raw.kind,
            all.join(", ")
        )
    })?;
    let only = |key: &str, set: bool, kinds: &[Kind]| -> Result<(), String> {
        if set && !kinds.contains(&kind) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Err(format!(
                "notifier `{name}`: `{key}` is for {} notifiers only: remove it",
                names.join(" and ")
            ));
        }
        Ok(())
    };
    only("to", !raw.to.is_empty(), &[Kind::Email])?;
    only("from", raw.from.is_some(), &[Kind::Email])?;
    only("chat_id", raw.chat_id.is_some(), &[Kind::Telegram])?;
    only(
        "endpoint",
        raw.endpoint.is_some(),
        &[Kind::PagerDuty, Kind::Opsgenie, Kind::Telegram],
    )?;
    only("template", raw.template.is_some(), &[Kind::Webhook])?;
    only("content_type", raw.content_type.is_some(), &[Kind::Webhook])?;
    if kind == Kind::Email {
        if raw.to.is_empty() {
            return Err(format!(
                "notifier `{name}`: an email notifier needs `to` (such as [\"oncall@example.com\"])"
            ));
        }
        for address in raw.to.iter().chain(&raw.from) {
            address.parse::<lettre::message::Mailbox>().map_err(|_| {
                format!("notifier `{name}`: `{address}` is not an email address such as \"SRE <sre@example.com>\"")
            })?;
        }
        if raw.from.is_none() {
            return Err(format!(
                "notifier `{name}`: an email notifier needs `from` (such as \"sitewatch <sitewatch@example.com>\")"
            ));
        }
    }
    if kind == Kind::Telegram && raw.chat_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(format!(
            "notifier `{name}`: a telegram notifier needs `chat_id` (the chat's number, or \"@channel\")"
        ));
    }
    let endpoint = match (&raw.endpoint, kind.default_endpoint()) {
        (Some(e), _) => {
            match url::Url::parse(e) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => {
                    return Err(format!(
                        "notifier `{name}`: endpoint `{e}`: not an http:// or https:// URL"
                    ));
                }
            }
            e.trim_end_matches('/').to_owned()
        }
        (None, Some(e)) => e.to_owned(),
        (None, None) => String::new(),
    };
    if let Some(template) = &raw.template {
        super::channels::check_template(template)
            .map_err(|why| format!("notifier `{name}`: template: {why}"))?;
    }
    if let Some(events) = &raw.events {
        for e in events {
            if !EVENT_KINDS.contains(&e.as_str()) {
                return Err(format!(
                    "notifier `{name}`: events: `{e}` is no event kind: expected some of {} (a `resolved` goes with what it resolves)",
                    EVENT_KINDS.join(", ")
                ));
            }
        }
    }
    let secret = secret(name, kind, env, urls)?;
    Ok(Notifier {
        name: name.clone(),
        kind,
        secret,
        endpoint,
        to: raw.to.clone(),
        from: raw.from.clone(),
        chat_id: raw.chat_id.clone(),
        template: raw.template.clone(),
        content_type: raw
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json".to_owned()),
        routes: Routes {
            events: raw.events.clone(),
            sites: raw.sites.clone(),
            groups: raw.groups.clone(),
        },
    })
}

/// A notifier's URL or key, from its variable or the file its `_FILE`
/// variable names; an empty secret when `urls` is `IfSet` and neither is.
fn secret(
    name: &str,
    kind: Kind,
    env: &HashMap<String, String>,
    urls: Urls,
) -> Result<Secret, String> {
    let variable = variable(name, kind.secret());
    let file_variable = format!("{variable}_FILE");
    let value = match (env.get(&variable), env.get(&file_variable)) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{variable} and {file_variable} are both set: keep one"
            ));
        }
        (Some(value), None) => value.clone(),
        (None, Some(path)) => crate::secret::read_file(&file_variable, std::path::Path::new(path))?,
        (None, None) if urls == Urls::IfSet => return Ok(Secret::new(String::new())),
        (None, None) => {
            let what = match kind.secret() {
                SecretKind::Url => "URL",
                SecretKind::Key => match kind {
                    Kind::PagerDuty => "routing key",
                    Kind::Telegram => "bot token",
                    _ => "API key",
                },
            };
            return Err(format!(
                "notifier `{name}`: its {what} is not set: set {variable} (or {file_variable})"
            ));
        }
    };
    // The value is a secret (URLs carry tokens): never shown.
    match kind.secret() {
        SecretKind::Url => {
            let schemes: &[&str] = if kind == Kind::Email {
                &["smtp", "smtps"]
            } else {
                &["http", "https"]
            };
            match url::Url::parse(&value) {
                Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => {}
                _ if kind == Kind::Email => {
                    return Err(format!(
                        "{variable}: not an smtp:// (STARTTLS) or smtps:// (TLS) URL such as smtp://user:password@smtp.example.com:587"
                    ));
                }
                _ => return Err(format!("{variable}: not an http:// or https:// URL")),
            }
        }
        SecretKind::Key => {
            if value.trim().is_empty() || value.chars().any(|c| c.is_control() || c == ' ') {
                return Err(format!(
                    "{variable}: empty, or with spaces or control characters: set the key alone"
                ));
            }
        }
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_take_events_by_kind_site_and_group() {
        let every = Routes::default();
        assert!(every.take("down", Some("api"), None));
        let pages = Routes {
            events: Some(vec!["down".into()]),
            groups: Some(vec!["payments".into()]),
            ..Routes::default()
        };
        assert!(pages.take("down", Some("checkout"), Some("payments")));
        assert!(pages.take("reminder", Some("checkout"), Some("payments")));
        assert!(!pages.take("degraded", Some("checkout"), Some("payments")));
        assert!(!pages.take("down", Some("blog"), Some("marketing")));
        assert!(!pages.take("down", Some("blog"), None));
        assert!(!pages.take("prober_down", None, None));
        let named = Routes {
            sites: Some(vec!["blog".into()]),
            ..Routes::default()
        };
        assert!(named.take("stale", Some("blog"), None));
        assert!(!named.take("stale", Some("api"), Some("payments")));
        assert!(
            named.take("prober_down", None, None),
            "a prober's event concerns every site"
        );
    }

    #[test]
    fn each_kind_asks_for_what_it_needs_by_name() {
        let env: HashMap<String, String> = [
            ("SITEWATCH_NOTIFIER_PD_KEY", "R0UTING"),
            ("SITEWATCH_NOTIFIER_MAIL_URL", "https://not-smtp.example"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let raw = |name: &str, kind: &str| NotifierRaw {
            name: name.into(),
            kind: kind.into(),
            ..NotifierRaw::default()
        };
        let pd = notifier(&raw("pd", "pagerduty"), &env, Urls::Required).unwrap();
        assert_eq!(pd.endpoint, "https://events.pagerduty.com");
        assert_eq!(pd.secret.expose(), "R0UTING");
        let error = |raw: NotifierRaw| notifier(&raw, &env, Urls::Required).unwrap_err();
        assert_eq!(
            error(raw("og", "opsgenie")),
            "notifier `og`: its API key is not set: set SITEWATCH_NOTIFIER_OG_KEY (or SITEWATCH_NOTIFIER_OG_KEY_FILE)"
        );
        assert!(error(raw("mail", "email")).contains("needs `to`"));
        let mail = NotifierRaw {
            to: vec!["oncall@example.com".into()],
            from: Some("sitewatch <sw@example.com>".into()),
            ..raw("mail", "email")
        };
        assert!(error(mail).starts_with("SITEWATCH_NOTIFIER_MAIL_URL: not an smtp://"));
        assert!(error(raw("tg", "telegram")).contains("needs `chat_id`"));
        let stray = NotifierRaw {
            chat_id: Some("1".into()),
            ..raw("pd", "pagerduty")
        };
        assert_eq!(
            error(stray),
            "notifier `pd`: `chat_id` is for telegram notifiers only: remove it"
        );
        let bad_event = NotifierRaw {
            events: Some(vec!["resolved".into()]),
            ..raw("pd", "pagerduty")
        };
        assert!(error(bad_event).contains("`resolved` is no event kind"));
        let bad_template = NotifierRaw {
            template: Some("{{ summary ".into()),
            ..raw("hook", "webhook")
        };
        assert!(error(bad_template).starts_with("notifier `hook`: template: "));
    }

    #[test]
    fn the_readme_has_a_valid_example_of_every_kind() {
        let readme = include_str!("../../../README.md");
        let block = readme
            .split("## Notifications")
            .nth(1)
            .and_then(|s| s.split("```toml\n").nth(1))
            .and_then(|s| s.split("```").next())
            .expect("README's Notifications has a toml block");
        let doc: crate::sites::SitesDoc = toml::from_str(block).unwrap();
        let mut kinds: Vec<&str> = doc.notifier.iter().map(|n| n.kind.as_str()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let mut all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        all.sort_unstable();
        assert_eq!(kinds, all, "one example per kind");
        for raw in &doc.notifier {
            notifier(raw, &HashMap::new(), Urls::IfSet).unwrap();
        }
    }
}
