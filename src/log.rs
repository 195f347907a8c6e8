//! Diagnostics on stderr, never stdout: `seatable-cred: warning: message key=value`.
//!
//! A small `tracing` subscriber of our own: it shows only this crate's
//! events — at any verbosity — because dependencies' debug output may quote
//! request or response bodies, which can hold secrets; and it costs next to
//! nothing to set up, which matters on the cache-hit path.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::shown::Shown;

/// The level for `-q`, `-v…` and `SEATABLE_CRED_LOG` (error, warn, info,
/// debug, trace, or 0–4). Flags win over the variable; warnings by default.
pub fn level(verbose: u8, quiet: bool, env: Option<&str>) -> Level {
    if quiet {
        return Level::ERROR;
    }
    match verbose {
        0 => {}
        1 => return Level::INFO,
        2 => return Level::DEBUG,
        _ => return Level::TRACE,
    }
    match env.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        Some("error" | "0") => Level::ERROR,
        Some("info" | "2") => Level::INFO,
        Some("debug" | "3") => Level::DEBUG,
        Some("trace" | "4") => Level::TRACE,
        _ => Level::WARN,
    }
}

pub fn init(level: Level) {
    let _ = tracing::subscriber::set_global_default(Stderr { max: level });
}

/// This crate's module paths all start with its name.
const OURS: &str = env!("CARGO_CRATE_NAME");

struct Stderr {
    max: Level,
}

impl Subscriber for Stderr {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        *meta.level() <= self.max && meta.target().starts_with(OURS)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::from_level(self.max))
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = line(event);
        text.push('\n');
        crate::process::say(&text);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

fn line(event: &Event<'_>) -> String {
    let level = match *event.metadata().level() {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    };
    let mut fields = Fields {
        message: String::new(),
        rest: String::new(),
    };
    event.record(&mut fields);
    // Messages and fields quote what servers and clients sent: shown
    // escaped, one line whatever they hold.
    format!(
        "seatable-cred: {level}: {}{}",
        Shown(&fields.message),
        Shown(&fields.rest)
    )
}

/// The message, then ` key=value` for every other field.
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_variable() {
        assert_eq!(level(0, false, None), Level::WARN);
        assert_eq!(level(0, false, Some("debug")), Level::DEBUG);
        assert_eq!(level(1, false, Some("error")), Level::INFO);
        assert_eq!(level(4, false, None), Level::TRACE);
        assert_eq!(level(0, true, Some("trace")), Level::ERROR);
        assert_eq!(level(0, false, Some("nonsense")), Level::WARN);
    }

    /// Formats events into a buffer instead of stderr.
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Subscriber for Capture {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            Stderr { max: Level::INFO }.enabled(meta)
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.lock().unwrap().push(line(event));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn one_line_per_event_with_fields() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture(lines.clone()), || {
            tracing::warn!(attempt = 2, url = %"https://s", "refresh failed");
            tracing::info!("plain");
            tracing::debug!("hidden at info");
            tracing::warn!(target: "hyper", "not ours");
            tracing::warn!(said = %"x\u{1b}[2J", "Vault said\n\u{1b}]0;PWNED\u{7}");
        });
        assert_eq!(
            *lines.lock().unwrap(),
            [
                "seatable-cred: warning: refresh failed attempt=2 url=https://s",
                "seatable-cred: info: plain",
                r"seatable-cred: warning: Vault said\n\x1b]0;PWNED\x07 said=x\x1b[2J",
            ]
        );
    }
}
