//! Every output's escaping, in one place: text that a monitored site, a
//! message on the topic or a row in the database put there (a site's name,
//! a location, an error quoting a server's `Location`) reaches a terminal,
//! Markdown, Slack, SVG or a file name only through these functions.
//! HTML and SVG through [`Xml`], the escaper of the status page's templates.

use std::fmt::Write as _;

/// Characters that change how the text around them is drawn without
/// showing themselves: the Unicode bidirectional overrides and isolates
/// (which can make `evil.com/moc.elgoog` read as another name).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with the characters `hide` picks shown as Rust escapes.
fn escaped(text: &str, hide: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if hide(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// For a value quoted in an error or stored as a reason: control
/// characters escaped (`\n`, `\u{0}`, ...), so it stays on one line and
/// PostgreSQL can store it (it refuses a NUL in `text`).
pub fn controls(text: &str) -> String {
    escaped(text, char::is_control)
}

/// For a terminal: control characters (ESC and its CSI and OSC sequences,
/// carriage return, backspace, the C1 range) and bidirectional overrides
/// shown as Rust escapes (`\u{1b}`), never sent raw. One line stays one.
pub fn terminal(text: &str) -> String {
    escaped(text, |c| c.is_control() || is_invisible_format(c))
}

/// For Markdown (GitHub's, `$GITHUB_STEP_SUMMARY`), inline or in a table
/// cell: one line (newlines become spaces, other controls escapes), no
/// HTML (`<`, `>`, `&` as entities), no emphasis, strikethrough, link,
/// image, code span or heading (their punctuation backslash-escaped), `|`
/// escaped for tables.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '!' | '#' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_invisible_format(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// For a Slack message's `text` (mrkdwn): Slack's three escapes (`&`, `<`,
/// `>`), so `<!channel>` does not ping and `<http://x|click>` is no link;
/// control characters other than newline made visible.
pub fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' => out.push('\n'),
            c if c.is_control() || is_invisible_format(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// For chat services that read CommonMark-like Markdown (Microsoft Teams'
/// Adaptive Cards, Discord): one line, and every punctuation character
/// that Markdown or a mention gives a meaning backslash-escaped (CommonMark
/// allows a backslash before any ASCII punctuation), so a name such as
/// `[click](https://evil)` or `@everyone` or `<b>` stays text.
pub fn commonmark(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '!'
            | '|' | '~' | '<' | '>' | '&' | '@' | ':' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || is_invisible_format(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// For a CSV field (RFC 4180): quoted when it holds a comma, a quote or a
/// line end (quotes doubled), and a field a spreadsheet would take for a
/// formula (`=`, `+`, `-`, `@`, tab, carriage return first) prefixed with
/// `'`, so opening the file runs nothing; control characters escaped.
pub fn csv(text: &str) -> String {
    let mut field = controls(text);
    if field.starts_with(['=', '+', '-', '@']) && field.parse::<f64>().is_err() {
        field.insert(0, '\'');
    }
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

/// For XML and HTML, in text and in quoted attributes. Characters that
/// XML 1.0 does not allow at all (the C0 controls but tab, newline and
/// carriage return; U+FFFE, U+FFFF) become U+FFFD, so an SVG stays
/// well-formed whatever the name.
pub fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let _ = write_xml(&mut out, text);
    out
}

fn write_xml(mut out: impl std::fmt::Write, text: &str) -> std::fmt::Result {
    // Runs of characters that need nothing are written whole.
    let mut clean = 0;
    for (i, c) in text.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            '\t' | '\n' | '\r' => continue,
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => "\u{fffd}",
            _ => continue,
        };
        out.write_str(&text[clean..i])?;
        out.write_str(replacement)?;
        clean = i + c.len_utf8();
    }
    out.write_str(&text[clean..])
}

/// [`xml`] as the status page's templates escape every value they insert
/// (`askama.toml` names it for `.html` and `.svg`): nothing reaches the
/// page unescaped unless a template says `|safe`, which ours do once: an
/// announcement's text, made by `report::announcements` with every text of
/// it escaped.
#[derive(Debug, Clone, Copy)]
pub struct Xml;

impl askama::filters::Escaper for Xml {
    fn write_escaped_str<W: std::fmt::Write>(&self, dest: W, text: &str) -> std::fmt::Result {
        write_xml(dest, text)
    }
}

/// The longest readable part of a [`file_stem`].
const SLUG_CHARS: usize = 48;

/// A name as a file name stem (and an HTML `id`): a readable slug (ASCII
/// letters and digits lowercased, runs of anything else one `-`, at most
/// 48 characters), then `-` and 12 hex digits of the exact name's FNV-1a
/// hash. Names that differ in case, script or punctuation (`API` and
/// `api`, `Главная` and `Новости`, `api/v1` and `api_v1`) get different
/// stems on every file system, none longer than 61 bytes, none hidden.
pub fn file_stem(name: &str) -> String {
    let mut slug = String::with_capacity(SLUG_CHARS);
    for c in name.chars() {
        if slug.len() >= SLUG_CHARS {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let hash = crate::keys::lock_key(name) as u64 >> 16;
    let mut out = String::with_capacity(slug.len() + 13);
    if slug.is_empty() {
        out.push_str("site");
    } else {
        out.push_str(slug);
    }
    let _ = write!(out, "-{hash:012x}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn terminal_text_never_carries_a_control_sequence() {
        let hostile = "a\x1b[2J\x1b]0;owned\x07b\rc\u{9b}31m\u{202e}moc";
        let shown = terminal(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert_eq!(
            shown,
            "a\\u{1b}[2J\\u{1b}]0;owned\\u{7}b\\rc\\u{9b}31m\\u{202e}moc"
        );
        assert_eq!(terminal("Главная ok"), "Главная ok");
    }

    #[test]
    fn markdown_text_is_one_line_of_plain_text() {
        let shown = markdown("x|y\n<img src=x onerror=alert(1)>[click](http://evil) **b**");
        assert!(!shown.contains('\n') && !shown.contains('<'), "{shown}");
        assert!(shown.contains("x\\|y"), "{shown}");
        assert!(shown.contains("\\[click\\](http://evil)"), "{shown}");
        assert!(shown.contains("\\*\\*b\\*\\*"), "{shown}");
        assert_eq!(markdown("<details>"), "&lt;details&gt;");
    }

    #[test]
    fn slack_text_cannot_ping_or_link() {
        assert_eq!(
            slack("<!channel> <http://evil|click here> & co"),
            "&lt;!channel&gt; &lt;http://evil|click here&gt; &amp; co"
        );
        assert_eq!(slack("a\x1b[31mb"), "a\\u{1b}[31mb");
    }

    #[test]
    fn xml_text_is_well_formed_whatever_the_name() {
        assert_eq!(
            xml("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(xml("a\u{0}b\u{1b}c\u{fffe}"), "a\u{fffd}b\u{fffd}c\u{fffd}");
    }

    #[test]
    fn file_stems_never_collide_and_stay_short() {
        let names = [
            "Главная",
            "Новости",
            "api/v1",
            "api_v1",
            "API",
            "api",
            "..",
            ".",
            "",
            "a b",
        ];
        let stems: BTreeSet<String> = names.iter().map(|n| file_stem(n)).collect();
        assert_eq!(stems.len(), names.len(), "{stems:?}");
        for stem in &stems {
            assert!(
                stem.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{stem}"
            );
            assert!(!stem.starts_with('-') && !stem.starts_with('.'), "{stem}");
        }
        assert!(file_stem(&"x".repeat(10_000)).len() <= SLUG_CHARS + 13);
        assert!(file_stem("api.example.com").starts_with("api-example-com-"));
        assert_eq!(file_stem("Shop"), file_stem("Shop"), "stable");
        assert_eq!(file_stem("API").len(), "api-".len() + 12);
    }
}
