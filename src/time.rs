//! Instants as Unix seconds, the unit of JWT `exp`, git's `password_expiry_utc`
//! and the cache entries; and their RFC 3339 UTC spelling for the protocols.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The last second RFC 3339 can spell (9999-12-31T23:59:59Z). Expiries
/// are checked against a much closer bound before they are trusted
/// ([`crate::seatable::jwt`]); this one keeps formatting total.
pub const MAX_UNIX: u64 = 253_402_300_799;

/// `2026-11-30T21:55:00Z`. Total: instants past year 9999 are shown as its
/// last second rather than failing (which would abort the output).
pub fn rfc3339(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix.min(MAX_UNIX)))
        .to_string()
}

/// An RFC 3339 time (as Vault writes them, fractions allowed) as Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    humantime::parse_rfc3339(text.trim())
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Parses a duration as users write it: `90s`, `5m`, `1h`, `3d`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.chars().all(|c| c.is_ascii_digit()) && !text.is_empty() {
        return Err(format!(
            "'{text}' has no unit: write e.g. {text}s, {text}m, {text}h or {text}d"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration ({e}); write e.g. 90s, 5m, 1h or 3d"))
}

/// The shortest exact spelling of a duration in whole seconds: `3d`, `1h`, `90s`.
pub fn compact(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_the_wall_clock_in_unix_seconds() {
        let unix = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let before = unix();
        let t = now();
        assert!(before <= t && t <= unix(), "{t} is not now ({before})");
    }

    #[test]
    fn rfc3339_is_utc_seconds() {
        assert_eq!(rfc3339(1_764_539_700), "2025-11-30T21:55:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn vaults_times_parse() {
        assert_eq!(
            parse_rfc3339("2025-11-30T21:55:00.945319214Z"),
            Some(1_764_539_700)
        );
        assert_eq!(parse_rfc3339("2025-11-30T21:55:00Z"), Some(1_764_539_700));
        assert_eq!(parse_rfc3339(""), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn rfc3339_is_total() {
        assert_eq!(rfc3339(MAX_UNIX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(MAX_UNIX + 1), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn durations_read_as_documented() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert_eq!(parse_duration(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("90").unwrap_err().contains("no unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn compact_picks_the_largest_exact_unit() {
        assert_eq!(compact(Duration::from_secs(259_200)), "3d");
        assert_eq!(compact(Duration::from_secs(3600)), "1h");
        assert_eq!(compact(Duration::from_secs(5400)), "90m");
        assert_eq!(compact(Duration::from_secs(90)), "90s");
        assert_eq!(compact(Duration::from_secs(0)), "0s");
    }
}
