//! Diagnostics on stderr, never stdout. Only this crate's events are shown —
//! at any verbosity — because dependencies' debug output may quote request
//! or response bodies, which can hold secrets.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

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
    use tracing_subscriber::prelude::*;
    let filter =
        tracing_subscriber::filter::Targets::new().with_target(env!("CARGO_CRATE_NAME"), level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(Line)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// `seatable-cred: warning: message key=value`.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        write!(writer, "seatable-cred: {level}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
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
}
