//! `init`: write a working profile (the questions live in [`crate::init`]),
//! into the config file chosen here, then print the snippets that use it.

use anyhow::Result;

use crate::cli::InitArgs;
use crate::config::{self, GlobalArgs, ProcessEnv};
use crate::error::Failure;
use crate::init::{self, snippets};

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    let name = global
        .profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    init::check_name(&name)?;
    let default_path = config::default_config_path(&ProcessEnv);
    let path = match (&global.config, &default_path) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => path.clone(),
        (None, None) => {
            return Err(Failure::usage(
                "no place for the config file: HOME is not set; name a file with --config",
            )
            .into());
        }
    };
    let (profile, written) = init::write(global, &name, &path, args.force, args.yes)?;
    let shown_config = match (&global.config, &default_path) {
        (Some(given), Some(default)) if given == default => None,
        (Some(given), _) => Some(std::path::absolute(given).unwrap_or_else(|_| given.clone())),
        (None, _) => None,
    };
    let target = snippets::Target {
        profile: &name,
        config: shown_config.as_deref(),
        server_url: &profile.server_url,
    };
    crate::process::print(&format!(
        "# [profiles.{name}] written to {}\n\n{}",
        written.display(),
        snippets::render(&target)
    ))?;
    Ok(0)
}
