//! The value parsers the commands' arguments share: durations within
//! bounds, sizes in bytes, times.

/// A duration within `(seconds, as written)` bounds.
fn bounded(
    text: &str,
    (min, min_text): (u64, &str),
    (max, max_text): (u64, &str),
) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    if d < std::time::Duration::from_secs(min) {
        Err(format!("must be at least {min_text}"))
    } else if d > std::time::Duration::from_secs(max) {
        Err(format!("must be at most {max_text}"))
    } else {
        Ok(d)
    }
}

/// A scheduler's tick: a second to 366 days (drain refuses a run record
/// whose tick is longer).
pub(super) fn parse_tick(text: &str) -> Result<std::time::Duration, String> {
    bounded(
        text,
        (1, "1s"),
        (
            366 * 86_400,
            "366d (a scheduler ticks more often than once a year)",
        ),
    )
}

pub(super) fn parse_max_age(text: &str) -> Result<std::time::Duration, String> {
    bounded(text, (3600, "1h"), (100 * 366 * 86_400, "100 years"))
}

pub(super) fn parse_claim_timeout(text: &str) -> Result<std::time::Duration, String> {
    bounded(text, (1, "1s"), (u64::MAX / 2, "forever"))
}

/// `8MiB`, `512KiB`, `1000000`: a positive size in bytes.
pub(super) fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`: use B, KiB, MiB or GiB")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{text}` is not a positive size such as 8MiB"))
}

pub(super) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::duration::non_zero(text)
}

pub(super) fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())
}
