//! The `checks` table's columns, each declared once: its name, its type and
//! the value of a [`Check`] (the message, `src/message.rs`) it holds, in the
//! order drain copies them. The COPY's column list, its types and each
//! row's values all come from [`CHECK_COLUMNS`].

use tokio_postgres::types::{ToSql, Type};

use crate::message::Check;

/// A check as its row: the message, where it came from, and the values
/// whose column type differs from the message's.
pub(super) struct CheckRow<'a> {
    check: &'a Check,
    topic: &'a str,
    partition: i32,
    offset: i64,
    schema: i16,
    status_code: Option<i16>,
    body_bytes: Option<i64>,
    error_kind: Option<&'static str>,
    redirects: Option<i32>,
    attempts: Option<i32>,
    conditions: Option<serde_json::Value>,
}

impl<'a> CheckRow<'a> {
    pub(super) fn new(check: &'a Check, topic: &'a str, partition: i32, offset: i64) -> Self {
        CheckRow {
            check,
            topic,
            partition,
            offset,
            schema: check.schema as i16,
            status_code: check.status_code.map(|s| s as i16),
            body_bytes: check.body_bytes.map(|b| b as i64),
            error_kind: check.error_kind.map(|k| k.as_str()),
            redirects: check.redirects.map(|r| r as i32),
            attempts: check.attempts.map(|a| a.min(i32::MAX as u32) as i32),
            conditions: check
                .conditions
                .as_ref()
                .and_then(|c| serde_json::to_value(c).ok()),
        }
    }

    /// Every column's value, in [`CHECK_COLUMNS`] order.
    pub(super) fn values(&self) -> [&(dyn ToSql + Sync); CHECK_COLUMNS.len()] {
        std::array::from_fn(|i| (CHECK_COLUMNS[i].2)(self))
    }
}

/// How a column's value is read from a row.
type Get = for<'r, 'a> fn(&'r CheckRow<'a>) -> &'r (dyn ToSql + Sync);

/// The columns drain writes, in COPY order: name, type, value.
pub(super) static CHECK_COLUMNS: [(&str, Type, Get); 37] = [
    ("check_id", Type::UUID, |r| &r.check.check_id),
    ("schema", Type::INT2, |r| &r.schema),
    ("site", Type::TEXT, |r| &r.check.site),
    ("url", Type::TEXT, |r| &r.check.url),
    ("method", Type::TEXT, |r| &r.check.method),
    ("location", Type::TEXT, |r| &r.check.location),
    ("started_at", Type::TIMESTAMPTZ, |r| &r.check.started_at),
    ("up", Type::BOOL, |r| &r.check.up),
    ("status_code", Type::INT2, |r| &r.status_code),
    ("reason", Type::TEXT, |r| &r.check.reason),
    ("response_time_ms", Type::FLOAT8, |r| {
        &r.check.response_time_ms
    }),
    ("dns_ms", Type::FLOAT8, |r| &r.check.dns_ms),
    ("connect_ms", Type::FLOAT8, |r| &r.check.connect_ms),
    ("tls_ms", Type::FLOAT8, |r| &r.check.tls_ms),
    ("ttfb_ms", Type::FLOAT8, |r| &r.check.ttfb_ms),
    ("ip", Type::INET, |r| &r.check.ip),
    ("regex", Type::TEXT, |r| &r.check.regex),
    ("regex_matched", Type::BOOL, |r| &r.check.regex_matched),
    ("body_bytes", Type::INT8, |r| &r.body_bytes),
    ("tls_expires_at", Type::TIMESTAMPTZ, |r| {
        &r.check.tls_expires_at
    }),
    ("error_kind", Type::TEXT, |r| &r.error_kind),
    ("error", Type::TEXT, |r| &r.check.error),
    ("kafka_topic", Type::TEXT, |r| &r.topic),
    ("kafka_partition", Type::INT4, |r| &r.partition),
    ("kafka_offset", Type::INT8, |r| &r.offset),
    ("degraded", Type::BOOL, |r| &r.check.degraded),
    ("json_matched", Type::BOOL, |r| &r.check.json_matched),
    ("redirects", Type::INT4, |r| &r.redirects),
    ("final_url", Type::TEXT, |r| &r.check.final_url),
    ("condition", Type::TEXT, |r| &r.check.condition),
    ("run_id", Type::UUID, |r| &r.check.run_id),
    ("attempts", Type::INT4, |r| &r.attempts),
    ("dns_rcode", Type::TEXT, |r| &r.check.dns_rcode),
    ("dns_answers", Type::TEXT_ARRAY, |r| &r.check.dns_answers),
    ("packet_loss", Type::FLOAT8, |r| &r.check.packet_loss),
    ("tls_names", Type::TEXT_ARRAY, |r| &r.check.tls_names),
    ("conditions", Type::JSONB, |r| &r.conditions),
];

/// The column list of the COPY: `check_id, schema, ...`.
pub(super) fn names() -> String {
    CHECK_COLUMNS
        .iter()
        .map(|(name, _, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The column types, in COPY order.
pub(super) fn types() -> Vec<Type> {
    CHECK_COLUMNS.iter().map(|(_, t, _)| t.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of the message is stored in the column of its name, and
    /// the only other columns say where the record came from.
    #[test]
    fn every_field_of_the_message_has_its_column() {
        let check: Check = serde_json::from_str(include_str!("../../tests/it/sample_check.json"))
            .expect("the sample check");
        let json = serde_json::to_value(&check).unwrap();
        let mut fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let mut columns: Vec<&str> = CHECK_COLUMNS
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|n| !n.starts_with("kafka_"))
            .collect();
        columns.sort_unstable();
        assert_eq!(fields, columns);
        assert_eq!(CheckRow::new(&check, "t", 0, 1).values().len(), 37);
    }
}
