//! A value that must never be printed: `Debug` and `Display` redact it.

use std::fmt;
use std::path::Path;

/// A password, a URL with credentials: handed to the one client library
/// that needs it, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that hands it to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The value in the file a `<VARIABLE>_FILE` variable names (a mounted
/// secret), without the line end such files usually close with; the error
/// names the variable and the file.
pub fn read_file(variable: &str, path: &Path) -> Result<String, String> {
    let content = std::fs::read_to_string(path)
        .map_err(|e| format!("{variable}: cannot read {}: {e}", path.display()))?;
    Ok(content.trim_end_matches(['\n', '\r']).to_owned())
}

/// The prefix of the variables a site may read (`${SITEWATCH_SECRET_TOKEN}`):
/// a sites file, perhaps changed by a pull request, can read these and no
/// other variable (not the database's URL, say).
pub const SITE_SECRET_PREFIX: &str = "SITEWATCH_SECRET_";

/// `text` with each `${SITEWATCH_SECRET_...}` replaced by that variable's
/// value (or the file its `_FILE` variable names), and the values used.
/// `lookup` reads a variable; `lenient` puts `secret` for one that is not
/// set (`validate`, where there are no secrets) instead of an error.
pub fn expand(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| {
            format!(
                "`${{` without its `}}` in `{}`",
                crate::escape::controls(text)
            )
        })?;
        let name = &after[..end];
        if !name.starts_with(SITE_SECRET_PREFIX)
            || name.len() == SITE_SECRET_PREFIX.len()
            || !name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "`${{{}}}`: a site reads only variables named {SITE_SECRET_PREFIX}* (such as ${{SITEWATCH_SECRET_TOKEN}})",
                crate::escape::controls(name)
            ));
        }
        let file_variable = format!("{name}_FILE");
        let value = match (lookup(name), lookup(&file_variable)) {
            (Some(_), Some(_)) => {
                return Err(format!("{name} and {file_variable} are both set: keep one"));
            }
            (Some(v), None) => v,
            (None, Some(path)) => read_file(&file_variable, Path::new(&path))?,
            (None, None) if lenient => "secret".to_owned(),
            (None, None) => {
                return Err(format!(
                    "${{{name}}} is not set: set {name} (or {file_variable})"
                ));
            }
        };
        if !value.is_empty() {
            used.push(value.clone());
        }
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// `text` with every secret of `secrets` replaced by `[secret]`: for what
/// a check publishes (an error may quote a URL).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for s in secrets {
        if s.len() >= 3 && text.contains(s.as_str()) {
            text = text.replace(s.as_str(), "[secret]");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_site_secrets_expand_from_the_environment_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "fr0m-file\n").unwrap();
        let env = |name: &str| match name {
            "SITEWATCH_SECRET_TOKEN" => Some("t0ken".to_owned()),
            "SITEWATCH_SECRET_OTHER_FILE" => Some(file.display().to_string()),
            _ => None,
        };
        let (text, used) = super::expand(
            "Bearer ${SITEWATCH_SECRET_TOKEN} and ${SITEWATCH_SECRET_OTHER}",
            &env,
            false,
        )
        .unwrap();
        assert_eq!(text, "Bearer t0ken and fr0m-file");
        assert_eq!(used, ["t0ken", "fr0m-file"]);
        assert_eq!(
            super::expand("no $ here {}", &env, false).unwrap().0,
            "no $ here {}"
        );
        let e = super::expand("${SITEWATCH_DATABASE_URL}", &env, false).unwrap_err();
        assert!(e.contains("only variables named SITEWATCH_SECRET_*"), "{e}");
        let e = super::expand("${SITEWATCH_SECRET_MISSING}", &env, false).unwrap_err();
        assert_eq!(
            e,
            "${SITEWATCH_SECRET_MISSING} is not set: set SITEWATCH_SECRET_MISSING (or SITEWATCH_SECRET_MISSING_FILE)"
        );
        assert_eq!(
            super::expand("${SITEWATCH_SECRET_MISSING}", &env, true)
                .unwrap()
                .0,
            "secret"
        );
        assert_eq!(
            super::scrub("at /x?t=t0ken: refused", &["t0ken".into()]),
            "at /x?t=[secret]: refused"
        );
    }

    #[test]
    fn a_secret_file_is_read_without_its_line_end_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url");
        std::fs::write(&path, "https://hooks.example/t0ken\r\n").unwrap();
        assert_eq!(
            super::read_file("SITEWATCH_X_FILE", &path).unwrap(),
            "https://hooks.example/t0ken"
        );
        let missing = dir.path().join("missing");
        let error = super::read_file("SITEWATCH_X_FILE", &missing).unwrap_err();
        assert!(
            error.starts_with(&format!(
                "SITEWATCH_X_FILE: cannot read {}: ",
                missing.display()
            )),
            "{error}"
        );
    }
}
