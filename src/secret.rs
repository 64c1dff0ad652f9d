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

#[cfg(test)]
mod tests {
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
