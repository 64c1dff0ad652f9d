//! Times people write in a time zone: an IANA zone name (from the
//! system's tzdata), and a time as an RFC 3339 instant or a local date and
//! time in that zone. Used by maintenance windows, announcements and SLA
//! periods alike.

use time::OffsetDateTime;

pub use jiff::tz::TimeZone;

/// The zone named `name` (`Europe/Helsinki`, `UTC`).
pub fn named(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!("time zone `{name}`: not an IANA time zone name such as Europe/Helsinki (is tzdata installed?)")
    })
}

/// An instant as `time` has it.
pub fn instant(ts: jiff::Timestamp) -> Result<OffsetDateTime, String> {
    OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).map_err(|e| e.to_string())
}

/// The `jiff` instant of `at`.
pub fn timestamp(at: OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_second(at.unix_timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// An RFC 3339 time (`2026-12-10T00:00:00Z`), or a local one in `zone`
/// (`2026-12-10 02:00`, `2026-12-10T02:00`); `None` when it is neither.
pub fn time_in(text: &str, zone: &TimeZone) -> Option<OffsetDateTime> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return instant(ts).ok();
    }
    let local = text
        .trim()
        .replacen(' ', "T", 1)
        .parse::<jiff::civil::DateTime>()
        .ok()?;
    instant(local.to_zoned_datetime(zone.clone()).ok()?.timestamp()).ok()
}

/// Midnight of `date` in `zone`.
pub fn midnight(date: jiff::civil::Date, zone: &TimeZone) -> Result<OffsetDateTime, String> {
    instant(
        date.to_zoned_datetime(zone.clone())
            .map_err(|e| e.to_string())?
            .timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn local_times_and_instants() {
        let helsinki = named("Europe/Helsinki").unwrap();
        assert_eq!(
            time_in("2026-12-10 02:00", &helsinki),
            Some(datetime!(2026-12-10 0:00 UTC))
        );
        assert_eq!(
            time_in("2026-07-10T02:00", &helsinki),
            Some(datetime!(2026-07-09 23:00 UTC)),
            "EEST in summer"
        );
        assert_eq!(
            time_in("2026-12-10T00:00:00Z", &helsinki),
            Some(datetime!(2026-12-10 0:00 UTC))
        );
        assert_eq!(time_in("tomorrow", &helsinki), None);
        assert!(named("Mars/Olympus").unwrap_err().contains("IANA"));
        assert_eq!(
            midnight("2026-11-01".parse().unwrap(), &helsinki),
            Ok(datetime!(2026-10-31 22:00 UTC))
        );
    }
}
