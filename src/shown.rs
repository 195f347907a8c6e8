//! How text from outside is shown: one sanitiser at the output boundary.
//!
//! Base and app names, permissions, versions, server error messages, paths
//! and whatever else comes from SeaTable, Vault or a file reaches a
//! terminal — through `doctor`, `init`, `status`, the `token` commands, the
//! error line and the log. A terminal acts on control characters: ESC
//! starts sequences that retitle the window, clear the screen, move the
//! cursor over earlier lines or (on some terminals) write files; C1
//! controls do the same in one byte; bidirectional overrides make a line
//! read differently from what it holds. So every such string is shown with
//! those characters escaped, as Rust writes them (`\x1b`, `\u{9b}`) — never
//! raw, and never dropped without a trace.
//!
//! A string without any is passed on as it is, without a copy; the check
//! is a scan of its bytes. Nothing here runs on `get`'s cache hit, whose
//! output is made of values checked before they were cached.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// `text`, its control characters escaped.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let _ = write!(out, "{}", Shown(text));
    Cow::Owned(out)
}

/// `text` for `format!`: written with its control characters escaped.
pub struct Shown<'a>(pub &'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            escape(c, f)?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// C0 and C1 controls, DEL, and the characters that reorder or break a
/// line on a terminal (bidirectional marks and overrides, the Unicode line
/// and paragraph separators).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn escape(c: char, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match c {
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        c if (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32),
        c => write!(f, "\\u{{{:x}}}", c as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_passed_on_as_it_is() {
        for plain in ["", "CRM", "Démo base ä 😀", r"C:\path\x1b", "a b"] {
            assert!(matches!(text(plain), Cow::Borrowed(t) if t == plain));
        }
    }

    #[test]
    fn controls_are_escaped_never_raw() {
        assert_eq!(
            text("CRM\u{1b}]0;PWNED\u{7}\u{1b}[2J"),
            r"CRM\x1b]0;PWNED\x07\x1b[2J"
        );
        assert_eq!(text("a\nb\r\tc\0\u{7f}"), r"a\nb\r\tc\x00\x7f");
        assert_eq!(text("\u{9b}31m"), r"\u{9b}31m");
        assert_eq!(text("evil\u{202e}txt.exe"), r"evil\u{202e}txt.exe");
        assert_eq!(text("line\u{2028}break"), r"line\u{2028}break");
        assert_eq!(format!("[{}]", Shown("ä\u{1b}ö")), r"[ä\x1bö]");
    }
}
