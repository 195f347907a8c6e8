//! seatable-cred: a credential helper that reads a SeaTable API token from
//! Vault/OpenBao, trades it for a short-lived base token, caches that in
//! memory-backed storage and prints it in the protocol the caller speaks.
//!
//! The flow of SPEC §2, one module per box:
//! [`cli`] → [`config`] (profile) → [`broker`] ([`cache`], [`vault`],
//! [`seatable`]) → [`protocol`].

pub mod broker;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod json;
pub mod log;
pub mod process;
pub mod protocol;
pub mod retry;
pub mod seatable;
pub mod time;
pub mod tls;
pub mod vault;

use std::io::Write;

use anyhow::Result;

use crate::cli::{Cli, Command, GetArgs};
use crate::config::ProcessEnv;
use crate::error::Failure;
use crate::protocol::exec_credential::ApiVersion;
use crate::protocol::{Credential, Format};

/// Runs a parsed command line; the `Ok` value is the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Get(args) => get(&cli.global, &args),
    }
}

fn get(global: &cli::GlobalArgs, args: &GetArgs) -> Result<u8> {
    let api_version = if args.format == Format::ExecCredential {
        ApiVersion::from_exec_info(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())?
    } else {
        ApiVersion::V1
    };
    let profile = config::resolve(global, &ProcessEnv)?;
    let outcome = broker::get(&profile, args.refresh)?;
    let cred = Credential {
        token: &outcome.token,
        cached: outcome.cached,
        refresh_before: profile.refresh_before,
    };
    print(&protocol::render(args.format, &cred, api_version))?;
    Ok(0)
}

/// Writes everything in one go; a closed pipe is an error, not a panic.
fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::internal(format!("cannot write to stdout: {e}")).into())
}
