//! Where a setting's value comes from (flag, variable, `_FILE` variable,
//! the sites file's `[settings]`, default), and errors that name it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

use super::declarations::{Fallback, SETTINGS, declared, near_miss};

/// Where a value came from, so an error can name the exact culprit.
#[derive(Debug, Clone)]
pub enum Origin {
    Flag,
    Env,
    EnvFile(PathBuf),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub(super) struct Value {
    pub(super) text: String,
    pub(super) origin: Origin,
}

/// Describes a setting's source for an error message; never the secret value.
pub(super) fn culprit(name: &str, value: &Value) -> String {
    let shown = if declared(name).is_some_and(|k| k.secret) {
        String::new()
    } else {
        // Escaped: an error stays one line whatever the value holds.
        let text = crate::escape::controls(&value.text);
        format!(" `{text}`")
    };
    match &value.origin {
        Origin::Flag => format!("--{}{shown}", name.replace('_', "-")),
        Origin::Env => format!("SITEWATCH_{}{shown}", name.to_uppercase()),
        Origin::EnvFile(path) => format!(
            "SITEWATCH_{}_FILE ({}){shown}",
            name.to_uppercase(),
            path.display()
        ),
        Origin::File(path) => format!("{} [settings] {name}{shown}", path.display()),
    }
}

/// One value clap found: (setting, value, where from).
pub type Given = (&'static str, String, Origin);

/// The values clap found for a command's settings, as (setting, value,
/// where from): flags and environment variables, not clap's defaults
/// (those come last, after the sites file).
pub fn given(matches: &clap::ArgMatches) -> Vec<Given> {
    SETTINGS
        .iter()
        .filter_map(|d| {
            let value = matches.try_get_one::<String>(d.name).ok()??;
            let origin = match matches.value_source(d.name)? {
                clap::parser::ValueSource::CommandLine => Origin::Flag,
                clap::parser::ValueSource::EnvVariable => Origin::Env,
                _ => return None,
            };
            Some((d.name, value.clone(), origin))
        })
        .collect()
}

/// Raw setting values of one command, before the sites file is read.
#[derive(Debug, Default)]
pub struct Sources {
    /// The command whose settings these are.
    pub(super) command: &'static str,
    pub(super) values: HashMap<&'static str, Value>,
    /// Bad values found so far, one line each: a job stops at the first,
    /// `validate` lists them all.
    pub(super) problems: RefCell<Vec<String>>,
    /// `SITEWATCH_*` variables that name no setting: reported as warnings, not
    /// errors, because platforms set some on their own (Kubernetes adds
    /// `<SERVICE>_PORT` for every service, so a service named `sitewatch`
    /// yields `SITEWATCH_PORT`).
    pub unknown_env: Vec<String>,
}

impl Sources {
    /// Collects the settings `command` reads: the values clap found
    /// ([`given`]), then the `SITEWATCH_<NAME>_FILE` variables of `env`
    /// (such as `std::env::vars()`) for those it did not.
    pub fn gather<I>(command: &'static str, given: Vec<Given>, env: I) -> Result<Self>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut sources = Sources {
            command,
            ..Sources::default()
        };
        for (name, text, origin) in given {
            sources.values.insert(name, Value { text, origin });
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SITEWATCH_"))
            .collect();
        env.sort();
        for (variable, path) in env {
            let name = variable["SITEWATCH_".len()..].to_ascii_lowercase();
            if declared(&name).is_some() {
                continue;
            }
            let Some(d) = name.strip_suffix("_file").and_then(declared) else {
                // A notifier's URL or key: `alert` reads it by the
                // notifier's name.
                let notifier = name.starts_with("notifier_")
                    && ["_url", "_url_file", "_key", "_key_file"]
                        .iter()
                        .any(|end| name.ends_with(end));
                if notifier {
                    continue;
                }
                // One edit from a setting is a typo, not a platform's
                // variable: an error that says which was meant.
                match near_miss(&name) {
                    Some(meant) => sources.problems.borrow_mut().push(format!(
                        "{variable} names no setting: did you mean {meant}?"
                    )),
                    None => sources.unknown_env.push(variable),
                }
                continue;
            };
            if !d.commands.contains(&command) {
                continue;
            }
            match sources.values.get(d.name).map(|v| &v.origin) {
                Some(Origin::Env) => {
                    return Err(Error::config(format!(
                        "{0} and {0}_FILE are both set: keep one",
                        d.variable()
                    )));
                }
                Some(_) => continue,
                None => {}
            }
            let path = PathBuf::from(path);
            let text = crate::secret::read_file(&variable, &path).map_err(Error::config)?;
            sources.values.insert(
                d.name,
                Value {
                    text,
                    origin: Origin::EnvFile(path),
                },
            );
        }
        Ok(sources)
    }

    /// Adds the sites file's `[settings]` where neither a flag nor the
    /// environment set a value.
    pub(super) fn add_file_settings(
        &mut self,
        path: &Path,
        settings: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        for (name, text) in settings {
            let Some(d) = declared(name).filter(|d| d.name != "sites" && d.name != "sites_file")
            else {
                return Err(Error::config(format!(
                    "{} [settings]: unknown setting `{name}`",
                    path.display()
                )));
            };
            if !d.in_file() {
                return Err(Error::config(format!(
                    "{} [settings]: `{name}` is a secret and cannot be set in the sites file: use {}_FILE",
                    path.display(),
                    d.variable()
                )));
            }
            // Another command's setting: not this one's to read.
            if !d.commands.contains(&self.command) {
                continue;
            }
            self.values.entry(d.name).or_insert_with(|| Value {
                text: text.clone(),
                origin: Origin::File(path.to_owned()),
            });
        }
        Ok(())
    }

    pub(super) fn get(&self, name: &'static str) -> Option<&Value> {
        debug_assert!(declared(name).is_some(), "undeclared setting {name}");
        self.values.get(name).filter(|v| !v.text.is_empty())
    }

    /// The value, or the declared default.
    pub(super) fn text(&self, name: &'static str) -> String {
        match self.get(name) {
            Some(v) => v.text.clone(),
            None => match declared(name).map(|d| d.default) {
                Some(Fallback::Value(v)) => v.to_owned(),
                _ => String::new(),
            },
        }
    }

    /// Notes a problem: the setting then takes its default, so that the
    /// other settings are still validated.
    pub(super) fn problem(&self, line: String) {
        self.problems.borrow_mut().push(line);
    }

    /// The value parsed, or the declared default parsed the same way (also
    /// when the value is bad, which is noted).
    pub(super) fn parse<T>(
        &self,
        name: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> T {
        if let Some(v) = self.get(name) {
            match parse(v.text.trim()) {
                Some(value) => return value,
                None => self.problem(format!("{}: expected {expected}", culprit(name, v))),
            }
        }
        let text = match declared(name).map(|d| d.default) {
            Some(Fallback::Value(v)) => v,
            _ => panic!("{name} has no default to parse"),
        };
        parse(text).unwrap_or_else(|| panic!("the default of {name}, `{text}`, is not {expected}"))
    }

    /// An optional value parsed; none when unset or bad (which is noted).
    pub(super) fn parse_optional<T>(
        &self,
        name: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let v = self.get(name)?;
        let parsed = parse(v.text.trim());
        if parsed.is_none() {
            self.problem(format!("{}: expected {expected}", culprit(name, v)));
        }
        parsed
    }

    /// A path that must name a file; none when unset or missing (which is
    /// noted).
    pub(super) fn path(&self, name: &'static str) -> Option<PathBuf> {
        let v = self.get(name)?;
        let path = PathBuf::from(&v.text);
        if path.is_file() {
            Some(path)
        } else {
            self.problem(format!("{}: file not found", culprit(name, v)));
            None
        }
    }
}
