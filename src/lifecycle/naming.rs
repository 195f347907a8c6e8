//! App names of rotated tokens: `<family>-<UTC YYYYMMDDhhmmss>`.
//!
//! The family is what a token's app name is without such a suffix, so a
//! token rotated many times keeps one family (`crm`, `crm-20251130215500`,
//! `crm-20251231000000`, …) and `prune` can tell its leftovers from other
//! applications' tokens.

/// Length of the `-YYYYMMDDhhmmss` suffix.
const SUFFIX: usize = 15;

/// The family of an app name.
pub fn family(app: &str) -> &str {
    match app.len().checked_sub(SUFFIX) {
        Some(cut) if cut > 0 && is_suffix(&app.as_bytes()[cut..]) => &app[..cut],
        _ => app,
    }
}

fn is_suffix(bytes: &[u8]) -> bool {
    bytes.len() == SUFFIX && bytes[0] == b'-' && bytes[1..].iter().all(u8::is_ascii_digit)
}

/// Whether `app` belongs to `family`: it is the family's name, or the name
/// with a timestamp suffix.
pub fn is_member(app: &str, family: &str) -> bool {
    app == family
        || app
            .strip_prefix(family)
            .is_some_and(|rest| is_suffix(rest.as_bytes()))
}

/// The successor's app name at `unix` seconds.
pub fn successor(family: &str, unix: u64) -> String {
    let stamp: String = crate::time::rfc3339(unix)
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{family}-{stamp}")
}

/// Checks an app name given on the command line: it becomes a path segment
/// of SeaTable's URLs and a line of our output.
pub fn check_app_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("--app must not be empty".to_string());
    }
    if name != name.trim() {
        return Err(format!("--app '{name}' must not start or end with spaces"));
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err("--app must not contain '/' or control characters".to_string());
    }
    crate::seatable::account::check_segment("--app", name)?;
    if name.len() > 200 {
        return Err("--app must be at most 200 bytes".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family("crm"), "crm");
        assert_eq!(family("crm-20251130215500"), "crm");
        assert_eq!(family("crm-sync-20251130215500"), "crm-sync");
        assert_eq!(family("crm-2025113021550"), "crm-2025113021550");
        assert_eq!(family("crm-2025113021550x"), "crm-2025113021550x");
        assert_eq!(family("-20251130215500"), "-20251130215500");
        assert_eq!(family("crm_20251130215500"), "crm_20251130215500");
        assert_eq!(family("ä-20251130215500"), "ä");
    }

    #[test]
    fn members() {
        assert!(is_member("crm", "crm"));
        assert!(is_member("crm-20251130215500", "crm"));
        assert!(!is_member("crm-sync", "crm"));
        assert!(!is_member("crm-sync-20251130215500", "crm"));
        assert!(!is_member("crmx-20251130215500", "crm"));
        assert!(!is_member("crm-20251130215500-20251130215500", "crm"));
    }

    #[test]
    fn successors_carry_the_utc_time() {
        assert_eq!(successor("crm", 1_764_539_700), "crm-20251130215500");
        assert_eq!(family(&successor("crm", 0)), "crm");
        assert_eq!(successor("crm", 0), "crm-19700101000000");
    }

    #[test]
    fn app_names_are_checked() {
        assert!(check_app_name("crm sync").is_ok());
        assert!(check_app_name("").is_err());
        assert!(check_app_name(" crm").is_err());
        assert!(check_app_name("a/b").is_err());
        assert!(check_app_name("a\nb").is_err());
        assert!(check_app_name(".").is_err());
        assert!(check_app_name("..").is_err());
        assert!(check_app_name("...").is_ok());
        assert!(check_app_name(&"x".repeat(201)).is_err());
    }
}
