//! Failures as SPEC §8 classifies them, and the one line that reports them.
//!
//! Code deep inside the helper returns `anyhow::Error`s whose root (or any link
//! of the chain) is a [`Failure`]; the kind of the first `Failure` in the chain
//! decides the exit code. Anything without one is an internal error (exit 1).

use std::fmt;

/// The exit-code classes of SPEC §8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: a bug or an unexpected local condition.
    Internal,
    /// 2: bad flag, unknown config key, missing setting, unreadable file.
    Usage,
    /// 3: Vault refused: login failed, permission denied, secret or field missing.
    Vault,
    /// 4: SeaTable rejected the API token or the base is gone (403/404).
    SeaTable,
    /// 5: a service was unreachable or kept failing — try again later.
    Unavailable,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Vault => 3,
            Kind::SeaTable => 4,
            Kind::Unavailable => 5,
        }
    }
}

/// A classified failure with a message written for the user: what failed and
/// what to do. Messages never contain secret values.
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    message: String,
    /// The HTTP status behind the failure, when a server answered.
    pub status: Option<u16>,
    /// Worth trying again within the deadline (a service briefly away).
    pub transient: bool,
    /// The setting (its profile key) whose value this failure is about —
    /// a server's address, a secret's path — when changing it may fix it.
    /// The layer that knows where each value came from names that place
    /// ([`crate::config::Profile::name_origin`]).
    pub setting: Option<&'static str>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            status: None,
            transient: false,
            setting: None,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn vault(message: impl Into<String>) -> Self {
        Self::new(Kind::Vault, message)
    }
    pub fn seatable(message: impl Into<String>) -> Self {
        Self::new(Kind::SeaTable, message)
    }
    /// A service unreachable or failing: transient unless said otherwise.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Failure {
            transient: true,
            ..Self::new(Kind::Unavailable, message)
        }
    }

    /// Not worth retrying, whatever its kind (e.g. a certificate error).
    pub fn permanent(mut self) -> Self {
        self.transient = false;
        self
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, message)
    }

    /// About the setting with this profile key (see [`Failure::setting`]).
    pub fn about(mut self, key: &'static str) -> Self {
        self.setting = Some(key);
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The class of an error: that of the first [`Failure`] in its chain.
pub fn kind_of(err: &anyhow::Error) -> Kind {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(Kind::Internal, |f| f.kind)
}

/// The HTTP status of the first [`Failure`] in the chain, if any.
pub fn status_of(err: &anyhow::Error) -> Option<u16> {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .and_then(|f| f.status)
}

/// The setting the first [`Failure`] in the chain is about, if any.
pub fn setting_of(err: &anyhow::Error) -> Option<&'static str> {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .and_then(|f| f.setting)
}

/// `err`, about the setting `key` unless its failure is about another.
pub fn about(mut err: anyhow::Error, key: &'static str) -> anyhow::Error {
    if let Some(failure) = err.downcast_mut::<Failure>() {
        failure.setting.get_or_insert(key);
    }
    err
}

/// `err` with `said` added to its line — where the setting it is about
/// came from — as a failure of the same kind, status and transience, no
/// longer about a setting (it names it now).
pub fn naming(err: anyhow::Error, said: &str) -> anyhow::Error {
    let Some(first) = err.chain().find_map(|e| e.downcast_ref::<Failure>()) else {
        return err;
    };
    Failure {
        kind: first.kind,
        message: format!("{} {said}", one_line(&err)),
        status: first.status,
        transient: first.transient,
        setting: None,
    }
    .into()
}

/// Whether a retry within the deadline may succeed.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .is_some_and(|f| f.transient)
}

/// The single stderr line for an error: its context chain joined by ": ",
/// with any line breaks (from a server or the OS) folded into spaces and
/// other control characters escaped ([`crate::shown`]): messages quote
/// what servers said.
pub fn one_line(err: &anyhow::Error) -> String {
    let text = format!("{err:#}");
    let mut line = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    crate::shown::text(&line).into_owned()
}

/// The innermost cause of a library error, e.g. "Connection refused (os error
/// 111)" under reqwest's "error sending request", as a short reason.
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last: &dyn std::error::Error = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn kind_survives_context() {
        let err = Err::<(), _>(Failure::vault("denied"))
            .context("reading secret/x")
            .unwrap_err();
        assert_eq!(kind_of(&err), Kind::Vault);
        assert_eq!(one_line(&err), "reading secret/x: denied");
    }

    #[test]
    fn plain_errors_are_internal_and_folded_to_one_line() {
        let err = anyhow::anyhow!("first\nsecond\r\n  third");
        assert_eq!(kind_of(&err), Kind::Internal);
        assert_eq!(one_line(&err), "first second third");
    }

    #[test]
    fn escape_sequences_in_messages_are_shown_escaped() {
        let err = anyhow::anyhow!("Vault said: denied\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{9b}1m");
        assert_eq!(
            one_line(&err),
            r"Vault said: denied\x1b]0;PWNED\x07\x1b[2J\u{9b}1m"
        );
    }

    #[test]
    fn exit_codes_match_the_spec() {
        let codes: Vec<u8> = [
            Kind::Internal,
            Kind::Usage,
            Kind::Vault,
            Kind::SeaTable,
            Kind::Unavailable,
        ]
        .iter()
        .map(|k| k.exit_code())
        .collect();
        assert_eq!(codes, [1, 2, 3, 4, 5]);
    }
}
