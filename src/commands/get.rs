//! `get`: print the credential.

use anyhow::Result;

use crate::cli::GetArgs;
use crate::config::{self, GlobalArgs, ProcessEnv};
use crate::protocol::exec_credential::ApiVersion;
use crate::protocol::{self, Credential, Format};

pub fn run(global: &GlobalArgs, args: &GetArgs) -> Result<u8> {
    let api_version = if args.format == Format::ExecCredential {
        ApiVersion::from_exec_info(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())?
    } else {
        ApiVersion::V1
    };
    let profile = config::resolve(global, &ProcessEnv)?;
    let outcome = crate::broker::get(&profile, args.refresh)?;
    let cred = Credential {
        token: &outcome.token,
        cached: outcome.cached,
        refresh_before: profile.refresh_before,
    };
    crate::process::print(&protocol::render(args.format, &cred, api_version))?;
    Ok(0)
}
