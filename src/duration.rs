//! Durations as people write them (`10s`, `5m`, `1h30m`, `800ms`): the one
//! parser of flags, settings, the sites file and the sites table.

use std::time::Duration;

/// A non-zero duration; the error says what is wrong with `text` (the
/// caller names where it came from).
pub fn non_zero(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must not be zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_as_written_and_zero_is_refused() {
        assert_eq!(non_zero("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(non_zero("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(non_zero("800ms"), Ok(Duration::from_millis(800)));
        assert_eq!(non_zero("0s"), Err("must not be zero".to_owned()));
        assert!(non_zero("ten seconds").is_err());
        assert!(non_zero("").is_err());
    }
}
