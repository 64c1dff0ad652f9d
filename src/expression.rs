//! A site's `conditions`, in the spirit of Gatus': `LEFT OPERATOR RIGHT`,
//! each kept with the check (the expression, whether it passed, the value
//! it saw), the first that fails the reason the check is down.
//!
//! - LEFT: `[STATUS]`, `[RESPONSE_TIME]` (ms), `[BODY]` (the body as
//!   text), `[BODY].path` (a JSON path: `[BODY].checks.db`,
//!   `[BODY].items[0].n`), `[HEADER].Name`, `[CERTIFICATE_DAYS_LEFT]`,
//!   `[IP]`, `[DNS_RCODE]`, `[DNS_ANSWERS]`; or `len(LEFT)` (the length of
//!   a list, object or text) and `has(LEFT)` (`true` when there is one).
//! - OPERATOR: `==`, `!=`, `<`, `<=`, `>`, `>=` (spaces around it).
//! - RIGHT: a number, `true`, `false`, a text (quotes optional), `any(a, b,
//!   c)` (equal to one of them), `re(PATTERN)` (a regular expression that
//!   matches the value).
//!
//! Numbers compare as numbers (`3` and `3.0` are equal); `<`, `<=`, `>`,
//! `>=` want two numbers. A value that is not there (no body, a path not
//! found, a header not sent) fails every condition but `has(...) ==
//! false`.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conditions::{Step, lookup, parse};

/// What a check saw, for its conditions to read.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub status: Option<u16>,
    pub response_time_ms: f64,
    pub body: Option<&'a [u8]>,
    pub headers: Option<&'a reqwest::header::HeaderMap>,
    pub cert_days_left: Option<f64>,
    pub ip: Option<IpAddr>,
    pub dns_rcode: Option<&'a str>,
    pub dns_answers: Option<&'a [String]>,
}

/// One condition's outcome, as the message keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub expression: String,
    pub passed: bool,
    /// The value the left side had (cut at 200 characters); null when
    /// there was none.
    pub actual: Option<String>,
}

impl Outcome {
    /// Why it failed, for a person: `[STATUS] == 200: got 503`.
    pub fn reason(&self) -> String {
        match &self.actual {
            Some(a) => format!("{}: got {a}", self.expression),
            None => format!("{}: no such value", self.expression),
        }
    }
}

#[derive(Debug, Clone)]
enum Left {
    Status,
    ResponseTime,
    Body,
    BodyPath(Vec<Step>),
    Header(String),
    CertificateDays,
    Ip,
    DnsRcode,
    DnsAnswers,
    Len(Box<Left>),
    Has(Box<Left>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Right {
    Value(String),
    Any(Vec<String>),
    Re(regex::Regex),
}

/// One parsed condition.
#[derive(Debug, Clone)]
pub struct Expression {
    text: String,
    left: Left,
    op: Op,
    right: Right,
}

const PLACEHOLDERS: &str = "[STATUS], [RESPONSE_TIME], [BODY], [BODY].path, [HEADER].Name, [CERTIFICATE_DAYS_LEFT], [IP], [DNS_RCODE], [DNS_ANSWERS], len(...), has(...)";

impl Expression {
    /// Parses a condition; the error says what was expected.
    pub fn parse(text: &str) -> Result<Expression, String> {
        let ops = [
            (" == ", Op::Eq),
            (" != ", Op::Ne),
            (" <= ", Op::Le),
            (" >= ", Op::Ge),
            (" < ", Op::Lt),
            (" > ", Op::Gt),
        ];
        let (at, token, op) = ops
            .iter()
            .filter_map(|(token, op)| text.find(token).map(|at| (at, *token, *op)))
            .min_by_key(|(at, _, _)| *at)
            .ok_or_else(|| {
                format!(
                    "condition `{text}`: expected LEFT OPERATOR RIGHT, such as \"[STATUS] == 200\" (==, !=, <, <=, >, >= with spaces around)"
                )
            })?;
        let left = left(text[..at].trim())
            .ok_or_else(|| format!("condition `{text}`: the left side is one of {PLACEHOLDERS}"))?;
        let right_text = text[at + token.len()..].trim();
        let right = if let Some(inner) = right_text
            .strip_prefix("any(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Right::Any(inner.split(',').map(|v| unquote(v.trim())).collect())
        } else if let Some(inner) = right_text
            .strip_prefix("re(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Right::Re(
                regex::Regex::new(inner)
                    .map_err(|_| format!("condition `{text}`: re({inner}) does not compile"))?,
            )
        } else {
            Right::Value(unquote(right_text))
        };
        if matches!(right, Right::Any(_) | Right::Re(_)) && !matches!(op, Op::Eq | Op::Ne) {
            return Err(format!(
                "condition `{text}`: any(...) and re(...) go with == or !="
            ));
        }
        Ok(Expression {
            text: text.to_owned(),
            left,
            op,
            right,
        })
    }

    /// Whether it reads the body (which the check then keeps).
    pub fn needs_body(&self) -> bool {
        fn body(l: &Left) -> bool {
            match l {
                Left::Body | Left::BodyPath(_) => true,
                Left::Len(inner) | Left::Has(inner) => body(inner),
                _ => false,
            }
        }
        body(&self.left)
    }

    /// Its outcome on what a check saw.
    pub fn evaluate(&self, facts: &Facts) -> Outcome {
        let actual = value(&self.left, facts);
        let passed = actual.as_ref().is_some_and(|a| self.holds(a));
        Outcome {
            expression: self.text.clone(),
            passed,
            actual: actual.map(|a| {
                let text = text_of(&a);
                let text = crate::escape::controls(&text);
                if text.chars().count() > 200 {
                    text.chars().take(200).chain(['…']).collect()
                } else {
                    text
                }
            }),
        }
    }

    fn holds(&self, actual: &Value) -> bool {
        let equal = |want: &str| equals(actual, want);
        match (&self.right, self.op) {
            (Right::Any(set), Op::Eq) => set.iter().any(|w| equal(w)),
            (Right::Any(set), Op::Ne) => !set.iter().any(|w| equal(w)),
            (Right::Re(re), Op::Eq) => re.is_match(&text_of(actual)),
            (Right::Re(re), Op::Ne) => !re.is_match(&text_of(actual)),
            (Right::Value(w), Op::Eq) => equal(w),
            (Right::Value(w), Op::Ne) => !equal(w),
            (Right::Value(w), op) => match (number(actual), w.parse::<f64>().ok()) {
                (Some(a), Some(b)) => match op {
                    Op::Lt => a < b,
                    Op::Le => a <= b,
                    Op::Gt => a > b,
                    Op::Ge => a >= b,
                    Op::Eq | Op::Ne => unreachable!("handled above"),
                },
                _ => false,
            },
            _ => false,
        }
    }
}

/// The conditions of a site, parsed; the error names the first bad one.
pub fn parse_all(texts: &[String]) -> Result<Vec<Expression>, String> {
    texts.iter().map(|t| Expression::parse(t)).collect()
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
        .to_owned()
}

fn left(text: &str) -> Option<Left> {
    if let Some(inner) = text.strip_prefix("len(").and_then(|t| t.strip_suffix(')')) {
        return Some(Left::Len(Box::new(left(inner.trim())?)));
    }
    if let Some(inner) = text.strip_prefix("has(").and_then(|t| t.strip_suffix(')')) {
        return Some(Left::Has(Box::new(left(inner.trim())?)));
    }
    Some(match text {
        "[STATUS]" => Left::Status,
        "[RESPONSE_TIME]" => Left::ResponseTime,
        "[BODY]" => Left::Body,
        "[CERTIFICATE_DAYS_LEFT]" => Left::CertificateDays,
        "[IP]" => Left::Ip,
        "[DNS_RCODE]" => Left::DnsRcode,
        "[DNS_ANSWERS]" => Left::DnsAnswers,
        _ => {
            if let Some(path) = text.strip_prefix("[BODY]") {
                Left::BodyPath(parse(&format!("${path}")).filter(|s| !s.is_empty())?)
            } else if let Some(name) = text
                .strip_prefix("[HEADER].")
                .or_else(|| text.strip_prefix("[HEADERS]."))
            {
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).ok()?;
                Left::Header(name.to_owned())
            } else {
                return None;
            }
        }
    })
}

fn value(left: &Left, f: &Facts) -> Option<Value> {
    Some(match left {
        Left::Status => f.status?.into(),
        Left::ResponseTime => f.response_time_ms.into(),
        Left::Body => String::from_utf8_lossy(f.body?).into_owned().into(),
        Left::BodyPath(steps) => {
            let doc: Value = serde_json::from_slice(f.body?).ok()?;
            lookup(&doc, steps)?.clone()
        }
        Left::Header(name) => f
            .headers?
            .get(name.as_str())
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())?
            .into(),
        Left::CertificateDays => f.cert_days_left?.floor().into(),
        Left::Ip => f.ip?.to_string().into(),
        Left::DnsRcode => f.dns_rcode?.into(),
        Left::DnsAnswers => f.dns_answers?.to_vec().into(),
        Left::Len(inner) => match value(inner, f)? {
            Value::Array(a) => a.len().into(),
            Value::Object(o) => o.len().into(),
            Value::String(s) => s.chars().count().into(),
            _ => return None,
        },
        Left::Has(inner) => value(inner, f).is_some().into(),
    })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn equals(actual: &Value, want: &str) -> bool {
    if let (Some(a), Ok(b)) = (number(actual), want.trim().parse::<f64>()) {
        return a == b;
    }
    match actual {
        Value::Bool(b) => want.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Null => want == "null",
        other => text_of(other) == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, facts: &Facts) -> Outcome {
        Expression::parse(text).unwrap().evaluate(facts)
    }

    #[test]
    fn every_operator_passes_and_fails_with_the_value_it_saw() {
        let body = br#"{"status":"UP","items":[1,2,3],"db":{"lag_ms":3.0},"ok":true}"#;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let facts = Facts {
            status: Some(200),
            response_time_ms: 120.0,
            body: Some(body),
            headers: Some(&headers),
            cert_days_left: Some(29.6),
            ip: Some("127.0.0.1".parse().unwrap()),
            dns_rcode: Some("NOERROR"),
            dns_answers: Some(&["192.0.2.1".to_owned()]),
        };
        for (text, passed) in [
            ("[STATUS] == 200", true),
            ("[STATUS] != 200", false),
            ("[STATUS] == any(200, 204)", true),
            ("[STATUS] == any(500, 503)", false),
            ("[RESPONSE_TIME] < 500", true),
            ("[RESPONSE_TIME] <= 120", true),
            ("[RESPONSE_TIME] > 500", false),
            ("[RESPONSE_TIME] >= 121", false),
            ("[BODY].status == UP", true),
            ("[BODY].status == \"DOWN\"", false),
            ("[BODY].db.lag_ms <= 3", true),
            ("[BODY].items[1] == 2", true),
            ("len([BODY].items) == 3", true),
            ("len([BODY].items) > 3", false),
            ("has([BODY].ok) == true", true),
            ("has([BODY].errors) == false", true),
            ("has([BODY].errors) == true", false),
            ("[BODY].ok == true", true),
            ("[BODY] != re(ERROR|FATAL)", true),
            ("[BODY] == re(\"status\")", true),
            ("[HEADER].Content-Type == re(json)", true),
            ("[HEADER].X-Missing == 1", false),
            ("[CERTIFICATE_DAYS_LEFT] > 14", true),
            ("[CERTIFICATE_DAYS_LEFT] > 30", false),
            ("[IP] == 127.0.0.1", true),
            ("[DNS_RCODE] == NOERROR", true),
            ("len([DNS_ANSWERS]) >= 1", true),
        ] {
            let o = run(text, &facts);
            assert_eq!(o.passed, passed, "{text}: {o:?}");
        }
        let o = run("[BODY].status == DOWN", &facts);
        assert_eq!(o.reason(), "[BODY].status == DOWN: got UP");
        let o = run("[BODY].nothing == 1", &facts);
        assert_eq!(o.reason(), "[BODY].nothing == 1: no such value");
        assert!(
            run("[BODY].status < 3", &facts).passed.eq(&false),
            "not a number"
        );
    }

    #[test]
    fn a_bad_condition_says_what_was_expected() {
        for (text, says) in [
            ("[STATUS]==200", "expected LEFT OPERATOR RIGHT"),
            ("[NOPE] == 1", "the left side is one of"),
            ("[BODY] == re(()", "does not compile"),
            ("[STATUS] < any(1, 2)", "go with == or !="),
        ] {
            let e = Expression::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
