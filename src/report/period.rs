//! SLA periods: `report --period 2026-11` (a calendar month) or `--from
//! 2026-11-01 --to 2026-12-01` (dates or RFC 3339 times), in a time zone
//! (an IANA name, UTC by default). The report counts whole UTC hours, as
//! the rollups do: a period must start and end on one (every zone whose
//! offset is whole hours does), or it is refused with why.

use time::OffsetDateTime;

/// A period, `[from, to)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

/// The longest period the rollups hold.
pub const MAX_DAYS: i64 = 400;

use crate::zone::{instant, midnight, named as zone_of};

/// A date (`2026-11-01`, midnight in `zone`) or an RFC 3339 time.
fn point(text: &str, zone: &jiff::tz::TimeZone, flag: &str) -> Result<OffsetDateTime, String> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return midnight(date, zone).map_err(|e| format!("{flag} {text}: {e}"));
    }
    let ts = text.parse::<jiff::Timestamp>().map_err(|_| {
        format!("{flag} `{text}`: expected a date such as 2026-11-01 or a time such as 2026-11-01T00:00:00Z")
    })?;
    instant(ts)
}

impl Period {
    /// `--period YYYY-MM` in `zone`.
    pub fn month(text: &str, zone: &str) -> Result<Period, String> {
        let tz = zone_of(zone)?;
        let first = format!("{text}-01")
            .parse::<jiff::civil::Date>()
            .map_err(|_| format!("--period `{text}`: expected a month such as 2026-11"))?;
        let next = first
            .checked_add(jiff::Span::new().months(1))
            .map_err(|e| e.to_string())?;
        Period::checked(midnight(first, &tz)?, midnight(next, &tz)?)
    }

    /// `--from` and `--to` in `zone`.
    pub fn between(from: &str, to: &str, zone: &str) -> Result<Period, String> {
        let tz = zone_of(zone)?;
        Period::checked(point(from, &tz, "--from")?, point(to, &tz, "--to")?)
    }

    fn checked(from: OffsetDateTime, to: OffsetDateTime) -> Result<Period, String> {
        let fmt = |t: OffsetDateTime| crate::message::rfc3339_ms::format(&t);
        if to <= from {
            return Err(format!(
                "the period ends ({}) before it starts ({})",
                fmt(to),
                fmt(from)
            ));
        }
        if (to - from).whole_days() > MAX_DAYS {
            return Err(format!(
                "the period is longer than the {MAX_DAYS} days the rollups keep"
            ));
        }
        for t in [from, to] {
            if t.unix_timestamp().rem_euclid(3600) != 0 {
                return Err(format!(
                    "{} is not a whole UTC hour: the report counts whole hours (a time zone offset by half an hour cannot start a period)",
                    fmt(t)
                ));
            }
        }
        Ok(Period { from, to })
    }

    /// The report's clock and window for this period: the last instant of
    /// its last hour, and its length.
    pub fn clock_and_window(&self) -> (OffsetDateTime, std::time::Duration) {
        let length = (self.to - self.from).unsigned_abs();
        (self.to - time::Duration::milliseconds(1), length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn months_and_ranges_in_a_zone() {
        let p = Period::month("2026-11", "UTC").unwrap();
        assert_eq!(
            (p.from, p.to),
            (
                datetime!(2026-11-01 0:00 UTC),
                datetime!(2026-12-01 0:00 UTC)
            )
        );
        let p = Period::month("2026-11", "Europe/Helsinki").unwrap();
        assert_eq!(p.from, datetime!(2026-10-31 22:00 UTC), "EET, UTC+2");
        let p = Period::month("2026-03", "Europe/Helsinki").unwrap();
        assert_eq!(p.to, datetime!(2026-03-31 21:00 UTC), "EEST from March 29");
        let p = Period::between("2026-11-01", "2026-11-08T12:00:00Z", "UTC").unwrap();
        assert_eq!(p.to, datetime!(2026-11-08 12:00 UTC));
        assert!(
            Period::month("2026-13", "UTC")
                .unwrap_err()
                .contains("expected a month")
        );
        assert!(
            Period::month("2026-11", "Mars/Olympus")
                .unwrap_err()
                .contains("IANA")
        );
        assert!(
            Period::month("2026-11", "Asia/Kolkata")
                .unwrap_err()
                .contains("whole UTC hour")
        );
        assert!(
            Period::between("2026-11-08", "2026-11-01", "UTC")
                .unwrap_err()
                .contains("before it starts")
        );
        let (clock, window) = Period::month("2026-11", "UTC").unwrap().clock_and_window();
        assert_eq!(clock, datetime!(2026-11-30 23:59:59.999 UTC));
        assert_eq!(window.as_secs(), 30 * 86_400);
    }
}
