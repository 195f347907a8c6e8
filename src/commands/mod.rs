//! One file per subcommand, the top floor of the house: each turns parsed
//! arguments into a call of the library, prints what it returns
//! ([`crate::process::print`]) and returns the exit code. Nothing else in
//! the crate imports this module.

mod completions;
mod doctor;
mod erase;
mod exec;
mod get;
mod git_credential;
mod init;
mod serve;
mod status;
mod token;

use anyhow::Result;

use crate::cli::{Cli, Command};

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
