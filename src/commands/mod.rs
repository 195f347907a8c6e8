//! One file per subcommand: each turns parsed arguments into broker and
//! protocol calls and returns the exit code.

mod completions;
pub(crate) mod doctor;
mod erase;
mod exec;
mod get;
mod git_credential;
mod init;
mod serve;
mod status;
mod token;

use std::io::Write;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::Failure;

/// Runs a parsed command line; the `Ok` value is the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match &cli.command {
        Command::Get(args) => get::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Erase(args) => erase::run(&cli.global, args),
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::GitCredential(args) => git_credential::run(&cli.global, args),
        Command::Completions(args) => completions::run(args),
        Command::Doctor => doctor::run(&cli.global),
        Command::Serve(args) => serve::run(&cli.global, args),
        Command::Token(args) => token::run(&cli.global, args),
        Command::Init(args) => init::run(&cli.global, args),
    }
}

/// Writes everything in one go; a closed pipe is an error, not a panic.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::internal(format!("cannot write to stdout: {e}")).into())
}
