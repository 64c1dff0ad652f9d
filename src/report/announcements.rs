//! Announcements: what a person writes for the status page, in a Markdown
//! file of typed entries (`[page] announcements = "announcements.md"`):
//!
//! ```markdown
//! ## maintenance: Database upgrade
//! start: 2026-12-10 02:00
//! end: 2026-12-10 04:00
//! time_zone: Europe/Helsinki
//!
//! The checkout may answer slowly while **PostgreSQL** is upgraded.
//! ```
//!
//! Each entry starts with `## TYPE: TITLE` (`outage`, `degraded`,
//! `maintenance`, `information`, `resolved`), then `key: value` lines
//! (`start`, `end`, `time_zone`) up to an empty line, then its text, in
//! Markdown, up to the next `## `. The text is rendered without any HTML
//! of its own (raw HTML is shown as text) and with no link but http(s),
//! mailto and relative ones.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use time::OffsetDateTime;

/// What kind of news an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Outage,
    Degraded,
    Maintenance,
    Information,
    Resolved,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Outage => "outage",
            Kind::Degraded => "degraded",
            Kind::Maintenance => "maintenance",
            Kind::Information => "information",
            Kind::Resolved => "resolved",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [
            Kind::Outage,
            Kind::Degraded,
            Kind::Maintenance,
            Kind::Information,
            Kind::Resolved,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// Where an entry stands at the page's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    Current,
    Upcoming,
    Past,
}

/// One entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Announcement {
    pub kind: Kind,
    pub title: String,
    pub start: OffsetDateTime,
    pub end: Option<OffsetDateTime>,
    /// The text as HTML, made by [`markdown`].
    pub html: Sanitized,
}

/// HTML that [`markdown`] made, every text of it escaped: the one value
/// the page's templates insert as it is (`|safe` in news.html). Only this
/// module makes one: its field is private.
#[derive(Debug, Clone, PartialEq)]
pub struct Sanitized(String);

impl std::fmt::Display for Sanitized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Sanitized {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long an entry with no end stays current: an `information` or a
/// `resolved` one for a week and a day; an `outage` or `degraded` one until
/// it gets an end.
const INFORMATION_DAYS: i64 = 7;
const RESOLVED_DAYS: i64 = 1;

impl Announcement {
    pub fn when(&self, now: OffsetDateTime) -> When {
        if self.start > now {
            return When::Upcoming;
        }
        let until = self.end.or(match self.kind {
            Kind::Information => Some(self.start + time::Duration::days(INFORMATION_DAYS)),
            Kind::Resolved => Some(self.start + time::Duration::days(RESOLVED_DAYS)),
            Kind::Maintenance | Kind::Outage | Kind::Degraded => None,
        });
        match until {
            Some(end) if end <= now => When::Past,
            _ => When::Current,
        }
    }
}

/// How far ahead the page announces a `[[maintenance]]` window.
pub const MAINTENANCE_AHEAD_DAYS: i64 = 30;

/// A `[[maintenance]]` window as an announcement: its occurrence going on
/// at `now`, or else its next within [`MAINTENANCE_AHEAD_DAYS`], naming
/// the sites of it the page shows (`shown`); none when it names none of
/// them or does not open in that time.
pub fn of_maintenance(
    window: &crate::alert::policy::Window,
    shown: &dyn Fn(&str) -> bool,
    now: OffsetDateTime,
) -> Option<Announcement> {
    let next = window
        .occurrences(now, now + time::Duration::days(MAINTENANCE_AHEAD_DAYS))
        .into_iter()
        .next()?;
    let x = crate::escape::xml;
    let sites = match &window.sites {
        None => "Every site.".to_owned(),
        Some(names) => {
            let names: Vec<String> = names.iter().filter(|n| shown(n)).map(|n| x(n)).collect();
            if names.is_empty() {
                return None;
            }
            format!("Sites: {}.", names.join(", "))
        }
    };
    let zone = if window.time_zone == "UTC" {
        String::new()
    } else {
        format!(" ({})", x(&window.time_zone))
    };
    Some(Announcement {
        kind: Kind::Maintenance,
        title: window
            .title
            .clone()
            .unwrap_or_else(|| "Scheduled maintenance".to_owned()),
        start: next.start,
        end: Some(next.end),
        html: Sanitized(format!(
            "<p>{sites} {}{zone}. Uptime leaves this time out.</p>",
            x(&window.describe())
        )),
    })
}

/// The entries of `text`, in the file's order; the error names the line.
pub fn parse(text: &str) -> Result<Vec<Announcement>, String> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    // Anything before the first entry is a comment for the file's readers.
    while let Some((_, line)) = lines.peek() {
        if line.starts_with("## ") {
            break;
        }
        lines.next();
    }
    while let Some((n, line)) = lines.next() {
        let at = |what: String| format!("line {}: {what}", n + 1);
        let heading = line.trim_start_matches("## ");
        let (kind, title) = heading.split_once(':').ok_or_else(|| {
            at("expected `## TYPE: TITLE`, such as `## maintenance: Database upgrade`".into())
        })?;
        let kind = Kind::parse(kind).ok_or_else(|| {
            at(format!(
                "`{}` is no type: outage, degraded, maintenance, information or resolved",
                kind.trim()
            ))
        })?;
        let (mut start, mut end, mut zone) = (None, None, "UTC".to_owned());
        while let Some((m, line)) = lines.peek().copied() {
            if line.trim().is_empty() || line.starts_with("## ") {
                break;
            }
            lines.next();
            let (key, value) = line.split_once(':').ok_or_else(|| {
                format!(
                    "line {}: expected `key: value` (start, end, time_zone)",
                    m + 1
                )
            })?;
            match key.trim() {
                "start" => start = Some((m, value.trim().to_owned())),
                "end" => end = Some((m, value.trim().to_owned())),
                "time_zone" => zone = value.trim().to_owned(),
                other => {
                    return Err(format!(
                        "line {}: `{other}` is no key: start, end or time_zone",
                        m + 1
                    ));
                }
            }
        }
        let mut body = String::new();
        while let Some((_, line)) = lines.peek().copied() {
            if line.starts_with("## ") {
                break;
            }
            lines.next();
            body.push_str(line);
            body.push('\n');
        }
        let (m, start) = start.ok_or_else(|| at("an entry needs `start:`".into()))?;
        let start = time_of(&start, &zone).map_err(|e| format!("line {}: start: {e}", m + 1))?;
        let end = end
            .map(|(m, t)| time_of(&t, &zone).map_err(|e| format!("line {}: end: {e}", m + 1)))
            .transpose()?;
        if end.is_some_and(|e| e <= start) {
            return Err(at("the entry ends before it starts".into()));
        }
        entries.push(Announcement {
            kind,
            title: title.trim().to_owned(),
            start,
            end,
            html: Sanitized(markdown(&body)),
        });
    }
    Ok(entries)
}

/// `2026-12-10 02:00` in `zone`, or an RFC 3339 time.
fn time_of(text: &str, zone: &str) -> Result<OffsetDateTime, String> {
    let tz = crate::zone::named(zone)?;
    crate::zone::time_in(text, &tz).ok_or_else(|| {
        format!("`{text}`: expected a time such as 2026-12-10 02:00 (in time_zone) or 2026-12-10T00:00:00Z")
    })
}

/// Markdown as HTML with no HTML of its own: every text escaped, raw HTML
/// shown as text, images as their alt text, links only to http(s),
/// mailto or relative addresses (others become text), headings as strong
/// text.
fn markdown(text: &str) -> String {
    let x = crate::escape::xml;
    let mut out = String::new();
    let mut in_bad_link = Vec::new();
    for event in Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH) {
        match event {
            Event::Text(t) => out.push_str(&x(&t)),
            Event::Code(t) => {
                out.push_str("<code>");
                out.push_str(&x(&t));
                out.push_str("</code>");
            }
            Event::Html(t) | Event::InlineHtml(t) => out.push_str(&x(&t)),
            Event::SoftBreak => out.push('\n'),
            Event::HardBreak => out.push_str("<br>"),
            Event::Rule => out.push_str("<hr>"),
            Event::Start(tag) => match tag {
                Tag::Paragraph => out.push_str("<p>"),
                Tag::Heading { .. } => out.push_str("<p><strong>"),
                Tag::BlockQuote(_) => out.push_str("<blockquote>"),
                Tag::CodeBlock(_) => out.push_str("<pre><code>"),
                Tag::List(Some(_)) => out.push_str("<ol>"),
                Tag::List(None) => out.push_str("<ul>"),
                Tag::Item => out.push_str("<li>"),
                Tag::Emphasis => out.push_str("<em>"),
                Tag::Strong => out.push_str("<strong>"),
                Tag::Strikethrough => out.push_str("<del>"),
                Tag::Link { dest_url, .. } => {
                    let url = dest_url.trim();
                    let safe = match url::Url::parse(url) {
                        Ok(u) => matches!(u.scheme(), "http" | "https" | "mailto"),
                        Err(_) => !url.contains(':'),
                    };
                    in_bad_link.push(!safe);
                    if safe {
                        out.push_str(&format!("<a href=\"{}\" rel=\"nofollow\">", x(url)));
                    }
                }
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Paragraph => out.push_str("</p>\n"),
                TagEnd::Heading(_) => out.push_str("</strong></p>\n"),
                TagEnd::BlockQuote(_) => out.push_str("</blockquote>\n"),
                TagEnd::CodeBlock => out.push_str("</code></pre>\n"),
                TagEnd::List(true) => out.push_str("</ol>\n"),
                TagEnd::List(false) => out.push_str("</ul>\n"),
                TagEnd::Item => out.push_str("</li>\n"),
                TagEnd::Emphasis => out.push_str("</em>"),
                TagEnd::Strong => out.push_str("</strong>"),
                TagEnd::Strikethrough => out.push_str("</del>"),
                TagEnd::Link if !in_bad_link.pop().unwrap_or(false) => out.push_str("</a>"),
                _ => {}
            },
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const FILE: &str = "This file's notes for its readers.

## maintenance: Database upgrade
start: 2026-12-10 02:00
end: 2026-12-10 04:00
time_zone: Europe/Helsinki

The checkout may answer **slowly**. <script>alert(1)</script>
[details](https://example.com/db) and [bad](javascript:alert(1))

## outage: Checkout down
start: 2026-12-07T09:00:00Z

We are on it.

## resolved: Login fixed
start: 2026-11-01T10:00:00Z
";

    #[test]
    fn entries_are_typed_timed_and_rendered_without_html() {
        let entries = parse(FILE).unwrap();
        assert_eq!(entries.len(), 3);
        let m = &entries[0];
        assert_eq!(
            (m.kind, m.title.as_str()),
            (Kind::Maintenance, "Database upgrade")
        );
        assert_eq!(
            m.start,
            datetime!(2026-12-10 0:00 UTC),
            "02:00 in Helsinki (EET)"
        );
        assert_eq!(m.end, Some(datetime!(2026-12-10 2:00 UTC)));
        let html = m.html.as_str();
        assert!(html.contains("<strong>slowly</strong>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("<a href=\"https://example.com/db\" rel=\"nofollow\">details</a>"));
        assert!(!html.contains("javascript"), "{html}");
        let now = datetime!(2026-12-07 10:00 UTC);
        let whens: Vec<When> = entries.iter().map(|e| e.when(now)).collect();
        assert_eq!(whens, [When::Upcoming, When::Current, When::Past]);
        assert_eq!(m.when(datetime!(2026-12-10 1:00 UTC)), When::Current);
        assert_eq!(m.when(datetime!(2026-12-10 2:00 UTC)), When::Past);
    }

    #[test]
    fn inline_html_is_text() {
        let html = markdown("Checkout may be **slow**. <img src=x onerror=alert(1)>\n");
        assert_eq!(
            html,
            "<p>Checkout may be <strong>slow</strong>. &lt;img src=x onerror=alert(1)&gt;</p>\n"
        );
    }

    #[test]
    fn a_bad_entry_names_its_line() {
        for (text, says) in [
            (
                "## holiday: x\nstart: 2026-12-10 02:00\n",
                "line 1: `holiday` is no type",
            ),
            ("## outage x\n", "line 1: expected `## TYPE: TITLE`"),
            (
                "## outage: x\nbegin: 2026-12-10\n",
                "line 2: `begin` is no key",
            ),
            ("## outage: x\nstart: soon\n", "line 2: start: `soon`"),
            (
                "## outage: x\nstart: 2026-12-10 02:00\ntime_zone: Mars/Base\n",
                "line 2: start: time zone",
            ),
            ("## outage: x\n\ntext\n", "line 1: an entry needs `start:`"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(says), "{text:?}: {e}");
        }
    }
}
