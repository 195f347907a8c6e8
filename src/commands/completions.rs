//! `completions SHELL`: completion scripts generated from the CLI definition.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "seatable-cred", &mut out);
    crate::process::print(&String::from_utf8_lossy(&out))?;
    Ok(0)
}
