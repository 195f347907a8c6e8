//! Helpers for the JSON that comes from outside.

/// serde reads a struct from a JSON array as well as from an object; every
/// document the helper parses (JWT payloads, SeaTable answers, cache entries)
/// is an object, so anything else is refused before parsing.
pub fn is_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_objects() {
        assert!(super::is_object(b" \n{\"a\":1}"));
        assert!(!super::is_object(b"[\"a\"]"));
        assert!(!super::is_object(b""));
        assert!(!super::is_object(b"\"x\""));
    }
}
