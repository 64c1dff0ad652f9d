//! A site's keys, declared once: [`SITE_KEYS`] names each key of a
//! `[[site]]`, says what it does, whether `[defaults]` gives it and which
//! flag of `sites add` sets it. The sites file's shape (`RawSite`,
//! `Defaults`), the `sites` table's columns, `sites add`'s flags (tested in
//! `commands::sites`) and the book's table of keys
//! (docs/src/configuring.md) are kept equal to it by unit tests.

/// One key of a `[[site]]`.
#[derive(Debug, Clone, Copy)]
pub struct SiteKey {
    pub name: &'static str,
    /// A value as a sites file writes it.
    pub example: &'static str,
    /// Its value when the site and `[defaults]` leave it out.
    pub default: &'static str,
    /// What it does, for the book's table.
    pub meaning: &'static str,
    /// `[defaults]` can give it to every site.
    pub in_defaults: bool,
    /// The flag of `sites add` that sets it, if any.
    pub flag: Option<&'static str>,
}

const fn key(
    name: &'static str,
    example: &'static str,
    default: &'static str,
    meaning: &'static str,
    in_defaults: bool,
    flag: Option<&'static str>,
) -> SiteKey {
    SiteKey {
        name,
        example,
        default,
        meaning,
        in_defaults,
        flag,
    }
}

/// Every key of a `[[site]]`, in the order a sites file and the `sites`
/// table write them.
pub const SITE_KEYS: &[SiteKey] = &[
    key(
        "name",
        r#""api""#,
        "required",
        "unique and stable: the message key, the report's and the alerts' name",
        false,
        None,
    ),
    key(
        "url",
        r#""https://api.example.com/health""#,
        "required",
        "what to check: an http:// or https:// URL (credentials in it are used and never shown), `tcp://host:port`, `tls://host:port`, `dns://name?type=MX&server=host:port` or `icmp://host`",
        false,
        None,
    ),
    key(
        "method",
        r#""HEAD""#,
        "`GET`",
        "the HTTP method",
        true,
        Some("--method"),
    ),
    key(
        "headers",
        r#"{ "User-Agent" = "sitewatch" }"#,
        "none",
        "request headers (`[defaults]`' first, the site's over them)",
        true,
        Some("--header"),
    ),
    key(
        "timeout",
        r#""3s""#,
        "`10s`",
        "the whole check, DNS to the last body byte",
        true,
        Some("--timeout"),
    ),
    key(
        "expect_status",
        r#""200-299,301""#,
        "`200-399`",
        "the status codes and ranges that count as up",
        true,
        Some("--expect-status"),
    ),
    key(
        "regex",
        r#""(?i)healthy""#,
        "none",
        "the body must match this regular expression",
        false,
        Some("--regex"),
    ),
    key(
        "ca_file",
        r#""internal-ca.pem""#,
        "none",
        "also trust the CA certificates in this PEM file (relative to the sites file)",
        false,
        Some("--ca-file"),
    ),
    key(
        "max_body_bytes",
        "65536",
        "`1048576`",
        "body bytes read at most (at most 64 MiB)",
        true,
        Some("--max-body-bytes"),
    ),
    key(
        "interval",
        r#""5m""#,
        "every run",
        "check it once per this long, under a scheduler that ticks more often",
        true,
        Some("--interval"),
    ),
    key(
        "degraded_after",
        r#""800ms""#,
        "none",
        "an up check slower than this is `degraded`",
        true,
        Some("--degraded-after"),
    ),
    key(
        "json",
        r#"{ "$.status" = "UP" }"#,
        "none",
        "JSON paths and the values the body must hold there",
        false,
        Some("--json-path"),
    ),
    key(
        "max_redirects",
        "3",
        "`10`",
        "redirects followed at most; `0`: a 3xx is the result",
        true,
        Some("--max-redirects"),
    ),
    key(
        "alerts",
        "{ failure_threshold = 3 }",
        "`[alerts]`",
        "`alert`'s rules for this site, over `[alerts]`",
        false,
        None,
    ),
    key(
        "send",
        r#""PING\r\n""#,
        "none",
        "tcp:// and tls://: what to send once connected (`regex` then looks for the answer)",
        false,
        Some("--send"),
    ),
    key(
        "retries",
        "2",
        "`0`",
        "a failed check is tried this many times more in its run (within `--deadline`) before its result is published",
        true,
        Some("--retries"),
    ),
    key(
        "retry_delay",
        r#""2s""#,
        "`1s`",
        "how long to wait before each retry",
        true,
        Some("--retry-delay"),
    ),
    key(
        "conditions",
        r#"["[STATUS] == 200", "[BODY].status == UP", "[RESPONSE_TIME] < 500"]"#,
        "none",
        "conditions with operators, each kept with the check; the first that fails is why it is down (the book's Checks lists them)",
        false,
        Some("--condition"),
    ),
    key(
        "body",
        r#""{\"ping\": true}""#,
        "none",
        "http(s): the request's body (its Content-Type from `headers`, else JSON when it parses as JSON, else text)",
        false,
        Some("--body"),
    ),
    key(
        "group",
        r#""payments""#,
        "none",
        "the group it belongs to: notifiers can take the events of a group (`groups`); the status page shows each group as a section",
        false,
        Some("--group"),
    ),
    key(
        "public",
        "false",
        "`true`",
        "`false`: left out of the status page, its badges and status.json (still checked, reported and alerted on)",
        false,
        Some("--public"),
    ),
    key(
        "hide_url",
        "true",
        "`false`",
        "`true`: the status page and status.json do not show its URL",
        false,
        Some("--hide-url"),
    ),
];

/// The key of that name.
pub fn named(name: &str) -> Option<&'static SiteKey> {
    SITE_KEYS.iter().find(|k| k.name == name)
}

/// The names of the keys `[defaults]` gives.
pub fn defaultable() -> impl Iterator<Item = &'static str> {
    SITE_KEYS.iter().filter(|k| k.in_defaults).map(|k| k.name)
}

/// The `sites` table's columns of a site's keys, quoted, in order.
pub fn columns() -> String {
    SITE_KEYS
        .iter()
        .map(|k| format!("\"{}\"", k.name))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SiteKey {
    /// Its row in the book's table of keys.
    pub fn table_row(&self) -> String {
        format!(
            "| `{}` | `{}` | {} | {} | {} |",
            self.name,
            self.example,
            self.meaning,
            self.default,
            if self.in_defaults { "yes" } else { "no" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sites::{Defaults, RawSite};
    use serde::Deserialize;

    /// What a derived `Deserialize` says its fields are: the names it
    /// accepts, as serde passes them to the deserializer.
    fn fields_of<T: Deserialize<'static>>() -> Vec<&'static str> {
        #[derive(Debug)]
        struct Fields(&'static [&'static str]);
        impl std::fmt::Display for Fields {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl std::error::Error for Fields {}
        impl serde::de::Error for Fields {
            fn custom<M: std::fmt::Display>(_: M) -> Self {
                Fields(&[])
            }
        }
        struct Capture;
        impl<'de> serde::Deserializer<'de> for Capture {
            type Error = Fields;
            fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
                Err(Fields(&[]))
            }
            fn deserialize_struct<V: serde::de::Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Fields> {
                Err(Fields(fields))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        match T::deserialize(Capture) {
            Err(Fields(fields)) => fields.to_vec(),
            Ok(_) => unreachable!("nothing deserializes from nothing"),
        }
    }

    #[test]
    fn the_sites_file_reads_exactly_the_declared_keys() {
        let names: Vec<&str> = SITE_KEYS.iter().map(|k| k.name).collect();
        assert_eq!(fields_of::<RawSite>(), names, "[[site]]");
        let mut defaults = fields_of::<Defaults>();
        defaults.sort_unstable();
        let mut declared: Vec<&str> = defaultable().collect();
        declared.sort_unstable();
        assert_eq!(defaults, declared, "[defaults]");
    }

    #[test]
    fn every_example_is_a_site_and_every_default_is_taken() {
        let keys: Vec<String> = SITE_KEYS
            .iter()
            .filter(|k| !matches!(k.name, "ca_file" | "send"))
            .map(|k| format!("{} = {}", k.name, k.example))
            .collect();
        let defaults: Vec<String> = SITE_KEYS
            .iter()
            .filter(|k| k.in_defaults)
            .map(|k| format!("{} = {}", k.name, k.example))
            .collect();
        // `send` is for tcp:// and tls:// sites: a site of its own.
        let send = named("send").unwrap().example;
        let text = format!(
            "[defaults]\n{}\n\n[[site]]\n{}\n\n[[site]]\nname = \"bare\"\nurl = \"http://127.0.0.1/\"\n\n[[site]]\nname = \"tcp\"\nurl = \"tcp://127.0.0.1:6379\"\nsend = {send}\n",
            defaults.join("\n"),
            keys.join("\n")
        );
        let doc: crate::sites::SitesDoc = toml::from_str(&text).expect("the examples parse");
        assert!(doc.invalid.is_empty(), "{:?}", doc.invalid);
        let base = std::path::Path::new(".");
        let mut shared = crate::sites::Shared::default();
        for raw in &doc.site {
            crate::sites::validate(raw.clone(), &doc.defaults, base, &mut shared)
                .unwrap_or_else(|e| panic!("{}: {}", raw.name, e.one_line()));
        }
        // The bare site, standing alone, has every key [defaults] gives.
        let bare = doc.site[1].clone().standalone(&doc.defaults, base);
        let written = serde_json::to_value(&bare).unwrap();
        for name in defaultable() {
            assert!(
                written.get(name).is_some(),
                "standalone drops [defaults]' {name}"
            );
        }
    }

    #[test]
    fn the_defaults_stated_are_the_defaults_applied() {
        let raw = RawSite {
            name: "bare".into(),
            url: "http://127.0.0.1/".into(),
            ..RawSite::default()
        };
        let site = crate::sites::validate(
            raw,
            &Defaults::default(),
            std::path::Path::new("."),
            &mut crate::sites::Shared::default(),
        )
        .unwrap();
        let default = |name: &str| named(name).unwrap().default.trim_matches('`');
        assert_eq!(site.method.as_str(), default("method"));
        assert_eq!(
            site.timeout,
            crate::duration::non_zero(default("timeout")).unwrap()
        );
        assert_eq!(site.expect_status.to_string(), default("expect_status"));
        assert_eq!(site.max_body_bytes.to_string(), default("max_body_bytes"));
        assert_eq!(site.max_redirects.to_string(), default("max_redirects"));
        assert_eq!(site.interval, None, "{}", default("interval"));
        assert_eq!(site.degraded_after, None, "{}", default("degraded_after"));
    }

    #[test]
    fn the_book_lists_every_key_as_declared() {
        let book = include_str!("../../docs/src/configuring.md");
        let table: Vec<&str> = book
            .lines()
            .skip_while(|l| !l.starts_with("| key | example |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        let declared: Vec<String> = SITE_KEYS.iter().map(SiteKey::table_row).collect();
        assert_eq!(
            table,
            declared,
            "the table of a site's keys in docs/src/configuring.md differs from SITE_KEYS; its rows should read:\n{}",
            declared.join("\n")
        );
    }
}
