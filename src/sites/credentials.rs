//! A site's URL: credentials taken out (sent as Basic auth, never shown)
//! and labels checked for what a terminal or a key cannot carry.

use url::Url;

use crate::secret::Secret;

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
pub(super) fn take_credentials(url: &mut Url) -> Option<BasicAuth> {
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
