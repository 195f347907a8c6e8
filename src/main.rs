//! The `seatable-cred` binary: parse, run, map the error to an exit code.
//!
//! `#![no_main]`: the C `main` is ours, so the std runtime's start-up does
//! not run. On Linux that start-up reads and parses /proc/self/maps to place
//! a guard for the main thread's stack — about a tenth of a cache hit's
//! work. What else it does that matters here (standard descriptors, SIGPIPE)
//! [`process::start`] does.
#![no_main]

use std::ffi::{c_char, c_int};

use seatable_cred::{error, log, process};

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    process::start();
    let cli = match seatable_cred::cli::parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    log::init(log::level(
        cli.global.verbose,
        cli.global.quiet,
        std::env::var("SEATABLE_CRED_LOG").ok().as_deref(),
    ));
    match seatable_cred::run(cli) {
        Ok(code) => c_int::from(code),
        Err(err) => {
            process::say(&format!("seatable-cred: {}\n", error::one_line(&err)));
            c_int::from(error::kind_of(&err).exit_code())
        }
    }
}

/// clap's help and version go out as clap prints them; the bare command
/// prints the usage and the commands on stderr, exit 2; clap's errors
/// become the one-line report of SPEC §8, exit 2.
fn usage_error(e: clap::Error) -> c_int {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        // `seatable-cred` alone (whatever the environment sets): how to start.
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            if std::env::args_os().len() <= 1 =>
        {
            process::say(&seatable_cred::cli::bare_usage());
            2
        }
        _ => {
            process::say(&format!(
                "seatable-cred: {}\n",
                seatable_cred::cli::usage_line(&e.to_string())
            ));
            2
        }
    }
}
