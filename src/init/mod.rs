//! `init`: a working profile in one go (SPEC §3).
//!
//! It asks, step by step, for what a profile needs — the SeaTable server, the
//! Vault address, the cache, the Vault login, the secret and its field — and
//! checks each answer with `doctor`'s own checks before it moves on, so a
//! wrong answer is asked again with the reason while the user still knows
//! what they typed. Only once the API token has exchanged is the profile
//! written; `commands::init` chooses the file and prints the snippets for
//! kubectl, git and Python ([`snippets`]) on stdout.
//!
//! No secret value is asked for, shown or written: secret-ids, JWTs and
//! passwords stay in their files or the environment, and the profile names
//! only the files. A userpass login's password, which the login check needs,
//! comes from `SEATABLE_CRED_PASSWORD` or a prompt without echo and lives in
//! memory for the checks only.
//!
//! ```text
//! steps.rs        the questions in order, each answer checked with doctor's checks (crate::checks)
//! login.rs        the Vault login's questions, per auth method
//! ask.rs          where answers come from: flags, environment, defaults, the terminal
//! terminal.rs     /dev/tty: prompts and lines, a hidden answer
//! table.rs        the profile's TOML table
//! config_file.rs  the config file, edited with toml_edit
//! snippets.rs     kubeconfig, ~/.gitconfig, Python
//! ```

mod ask;
mod config_file;
mod login;
pub mod snippets;
mod steps;
mod table;
pub mod terminal;

use anyhow::Result;
use secrecy::{ExposeSecret, SecretString};

use std::path::{Path, PathBuf};

use crate::config::{Env, GlobalArgs, ProcessEnv, Profile};
use crate::error::Failure;
use ask::Asker;
use config_file::ConfigFile;
use steps::Init;

/// Asks for profile `name` — each answer checked before the next question
/// (`yes`: the defaults taken without asking) — and writes it into the
/// config file at `path`, replacing a table of that name only with `force`.
/// Returns the profile as written, and the file's path. (The name is the
/// caller's to check: [`check_name`].)
pub fn write(
    global: &GlobalArgs,
    name: &str,
    path: &Path,
    force: bool,
    yes: bool,
) -> Result<(Profile, PathBuf)> {
    // Refusals come before any question.
    let file = ConfigFile::load(path)?;
    if file.has_profile(name) && !force {
        return Err(config_file::exists(name, path).into());
    }

    let mut asker = Asker::new(terminal::Terminal::open(), yes);
    asker.say(&format!("Writing profile '{name}' to {}.", path.display()));
    asker.tell(
        "Each answer is checked before the next question; Enter takes the value in [brackets].\n\
         No secret is asked for or written: secret-ids, JWTs and passwords stay in files or the environment.",
    );
    crate::http::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the network runtime: {e}")))?;
    let mut init = Init::new(global, asker, runtime);
    init.server()?;
    init.vault()?;
    let cache = init.cache()?;
    init.login(&cache)?;
    let profile = init.secret_and_exchange(&cache)?;

    // Read again: the file may have changed while the questions were answered.
    let mut file = ConfigFile::load(path)?;
    file.set_profile(name, table::of(&profile)?, force)?;
    file.save()?;
    init.asker.passed(
        "written",
        &format!("[profiles.{name}] in {} (mode 0600)", file.path().display()),
    );
    Ok((profile, file.path().to_path_buf()))
}

/// Profile names appear in the snippets (shell words, YAML, Python): plain
/// names only.
pub fn check_name(name: &str) -> Result<(), Failure> {
    let plain = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "--profile '{}': init writes profiles named with letters, digits, '.', '_' and '-' (at most 64)",
            name.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        )))
    }
}

/// The environment, plus a password typed for the login check — as if it
/// were in `SEATABLE_CRED_PASSWORD`, which is where `get` looks for it.
struct InitEnv {
    pub(crate) password: Option<SecretString>,
}

impl Env for InitEnv {
    fn var(&self, name: &str) -> Option<String> {
        match &self.password {
            Some(p) if name == "SEATABLE_CRED_PASSWORD" => Some(p.expose_secret().to_string()),
            _ => ProcessEnv.var(name),
        }
    }
}
