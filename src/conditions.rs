//! A site's JSON conditions (`json = { "$.status" = "UP" }`): the body
//! must parse as JSON and hold each value at its path. Paths are the
//! common subset of JSONPath: `$`, then `.name`, `["name"]` or `[index]`.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// The conditions of one site, each path with the value expected there.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonConditions {
    checks: Vec<(Vec<Step>, Value)>,
}

impl JsonConditions {
    /// Parses `path = value` pairs as written; the error names the path.
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a String, &'a Value)>,
    ) -> Result<JsonConditions, String> {
        let mut checks = Vec::new();
        for (path, value) in pairs {
            let steps = parse(path).ok_or_else(|| {
                format!(
                    "json path `{path}`: expected a path such as $.status, $.checks.db or $.items[0]"
                )
            })?;
            if value.is_object() || value.is_array() {
                return Err(format!(
                    "json path `{path}`: expected a string, number, boolean or null to compare with"
                ));
            }
            checks.push((steps, value.clone()));
        }
        Ok(JsonConditions { checks })
    }

    /// Whether `body` is JSON holding every expected value (numbers compare
    /// by value: 3 and 3.0 are equal).
    pub fn matches(&self, body: &[u8]) -> bool {
        self.failure(body).is_none()
    }

    /// The first condition `body` fails, for a person: `json $.status:
    /// expected "UP", got "DOWN"`; `None` when it holds them all.
    pub fn failure(&self, body: &[u8]) -> Option<String> {
        let Ok(doc) = serde_json::from_slice::<Value>(body) else {
            return Some(format!("json: the body ({} bytes) is not JSON", body.len()));
        };
        self.checks.iter().find_map(|(steps, want)| {
            let mut at = &doc;
            for step in steps {
                let next = match step {
                    Step::Key(k) => at.get(k.as_str()),
                    Step::Index(i) => at.get(*i),
                };
                match next {
                    Some(v) => at = v,
                    None => {
                        return Some(format!(
                            "json {}: expected {want}, not found",
                            path_text(steps)
                        ));
                    }
                }
            }
            let equal = match (at.as_f64(), want.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => at == want,
            };
            (!equal).then(|| {
                let mut got = at.to_string();
                if got.chars().count() > 80 {
                    got = got.chars().take(80).chain(['…']).collect();
                }
                format!("json {}: expected {want}, got {got}", path_text(steps))
            })
        })
    }
}

/// A path as written back: `$.checks.db`, `$.items[0]`, `$["a.b"]`.
fn path_text(steps: &[Step]) -> String {
    let mut out = "$".to_owned();
    for step in steps {
        match step {
            Step::Key(k) if !k.is_empty() && !k.contains(['.', '[', ']', '"']) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{}]", Value::from(k.as_str()))),
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The value at `steps` in `doc`, if there is one.
pub(crate) fn lookup<'a>(doc: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    let mut at = doc;
    for step in steps {
        at = match step {
            Step::Key(k) => at.get(k.as_str())?,
            Step::Index(i) => at.get(*i)?,
        };
    }
    Some(at)
}

/// A path as written (`$.checks.db`, `$.items[0]`, `$["a.b"]`), parsed.
pub(crate) fn parse(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("[\"") {
            let end = after.find("\"]")?;
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(Step::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(pairs: Value) -> Result<JsonConditions, String> {
        let map: std::collections::BTreeMap<String, Value> = serde_json::from_value(pairs).unwrap();
        JsonConditions::new(&map)
    }

    #[test]
    fn paths_and_values_are_compared() {
        let body = br#"{"status":"UP","checks":{"db":"ok","a.b":true},"items":[{"n":3}],"v":null}"#;
        let ok = |pairs: Value| conditions(pairs).unwrap().matches(body);
        assert!(ok(json!({"$.status": "UP", "$.checks.db": "ok"})));
        assert!(ok(
            json!({"$.items[0].n": 3.0, "$.checks[\"a.b\"]": true, "$.v": null})
        ));
        assert!(!ok(json!({"$.status": "DOWN"})));
        assert!(!ok(json!({"$.missing": "x"})));
        assert!(!ok(json!({"$.items[1].n": 3})));
        assert!(!ok(json!({"$.status": 1})));
        let up = conditions(json!({"$.status": "UP"})).unwrap();
        assert!(!up.matches(b"<html>not json</html>"));
        assert!(
            !up.matches(br#"{"status":"UP""#),
            "a body cut short is not JSON"
        );
    }

    #[test]
    fn the_first_failed_condition_says_what_was_expected_and_found() {
        let body = br#"{"status":"DOWN","checks":{"a.b":1}}"#;
        let fails = |pairs: Value| conditions(pairs).unwrap().failure(body);
        assert_eq!(
            fails(json!({"$.status": "UP"})).unwrap(),
            r#"json $.status: expected "UP", got "DOWN""#
        );
        assert_eq!(
            fails(json!({"$.checks[\"a.b\"]": 2})).unwrap(),
            r#"json $.checks["a.b"]: expected 2, got 1"#
        );
        assert_eq!(
            fails(json!({"$.items[0]": true})).unwrap(),
            "json $.items[0]: expected true, not found"
        );
        assert_eq!(fails(json!({"$.checks[\"a.b\"]": 1.0})), None);
        assert_eq!(
            conditions(json!({"$.status": "UP"}))
                .unwrap()
                .failure(b"<html>"),
            Some("json: the body (6 bytes) is not JSON".to_owned())
        );
    }

    #[test]
    fn bad_paths_are_named() {
        assert_eq!(
            conditions(json!({"status": "UP"})).unwrap_err(),
            "json path `status`: expected a path such as $.status, $.checks.db or $.items[0]"
        );
        for bad in ["$.", "$..a", "$[x]", "$[\"a", "$a"] {
            assert!(conditions(json!({ bad: 1 })).is_err(), "{bad}");
        }
        assert!(conditions(json!({"$.a": {"b": 1}})).is_err());
        assert!(conditions(json!({"$": "x"})).is_ok(), "the whole document");
    }
}
