//! `exec [--] CMD [ARGS…]`: run CMD with the base token and its context in
//! its environment. The helper's process is replaced (execvp), so signals
//! and the exit status are CMD's own.

use std::os::unix::process::CommandExt;

use anyhow::Result;

use crate::cli::ExecArgs;
use crate::config::{self, GlobalArgs, ProcessEnv};
use crate::protocol::{Credential, env};

pub fn run(global: &GlobalArgs, args: &ExecArgs) -> Result<u8> {
    let profile = config::resolve(global, &ProcessEnv)?;
    let outcome = crate::broker::get(&profile, false)?;
    let cred = Credential {
        token: &outcome.token,
        cached: outcome.cached,
        refresh_before: profile.refresh_before,
    };
    let (program, rest) = args.command.split_first().expect("clap requires CMD");
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    // Secret values meant for the helper alone — the Vault token included:
    // with it, CMD could read the API token itself.
    for name in config::SECRET_VARIABLES {
        cmd.env_remove(name);
    }
    for (name, value) in env::variables(&cred) {
        cmd.env(name, &*value);
    }
    crate::process::restore_core_dumps();
    // exec only returns on failure.
    let err = cmd.exec();
    let shown = program.to_string_lossy();
    let (code, why) = match err.kind() {
        std::io::ErrorKind::NotFound => (127, "command not found".to_string()),
        std::io::ErrorKind::PermissionDenied => (126, "permission denied".to_string()),
        _ => (126, err.to_string()),
    };
    eprintln!("seatable-cred: cannot run {shown}: {why}");
    Ok(code)
}
