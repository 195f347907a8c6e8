//! The config file (SPEC §3): found, refused when someone else could have
//! written it (its `server_url` and `vault_addr` decide where tokens go),
//! read with a size cap and without blocking on a FIFO, and parsed into
//! one table per profile — with the file's line in every error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;

use super::Env;
use super::flags::GlobalArgs;
use super::origin::{FileText, Place, Table};
use crate::error::Failure;

/// The config file: one table per profile under `[profiles.NAME]`.
///
/// A profile's table has the keys of the options every command takes,
/// declared once in [`GlobalArgs`].
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, GlobalArgs>,
}

/// The default config file: `$XDG_CONFIG_HOME/seatable-cred/config.toml`,
/// falling back to `~/.config` as the XDG spec says.
pub fn default_config_path(env: &dyn Env) -> Option<PathBuf> {
    let base = env
        .var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.var("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("seatable-cred").join("config.toml"))
}

/// The profile table `name` of the file at `path`, if the file has it.
struct Loaded {
    table: Option<GlobalArgs>,
    /// The file's text (for the lines of its keys in messages).
    text: FileText,
    /// The file's profiles, when it has no table `name`.
    others: Option<Vec<String>>,
}

/// Reads the profile table `name` from `path`. A missing default file is an
/// empty profile; a missing file that was asked for explicitly is an error.
fn load_profile(path: Option<&Path>, explicit: bool, name: &str) -> Result<Loaded, Failure> {
    let none = Loaded {
        table: None,
        text: FileText::default(),
        others: None,
    };
    let Some(path) = path else {
        return Ok(none);
    };
    let Some(text) = read_trusted(path, !explicit, false)? else {
        return Ok(none);
    };
    let mut file = parse(&text, path)?;
    let table = file.profiles.remove(name);
    let others = table.is_none().then(|| file.profiles.into_keys().collect());
    Ok(Loaded {
        table,
        text: FileText::new(text),
        others,
    })
}

/// The text of the config file at `path`, if it is trusted
/// ([`check_trusted`]) and not too large; `None` if there is none and
/// `missing_ok`. Opened without blocking: a FIFO planted where the file
/// should be must not hang the call before it is found to be someone
/// else's. Only a regular file is taken when `regular_only`; otherwise a
/// pipe of the user's own (`--config <(…)`) is read as it comes.
pub(crate) fn read_trusted(
    path: &Path,
    missing_ok: bool,
    regular_only: bool,
) -> Result<Option<String>, Failure> {
    let cannot = |e: std::io::Error| {
        Failure::usage(format!("cannot read config file {}: {e}", path.display()))
    };
    let file = match std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::File::options().read(true),
        libc::O_NONBLOCK | libc::O_CLOEXEC,
    )
    .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    let meta = check_trusted(&file, path, &CONFIG)?;
    if !meta.is_file() {
        if regular_only {
            return Err(Failure::usage(format!(
                "config file {} is not a regular file: name a file with --config",
                path.display()
            )));
        }
        // O_NONBLOCK means nothing to a regular file: cleared only here.
        blocking(&file).map_err(cannot)?;
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(&file, MAX_CONFIG + 1), &mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(Failure::usage(format!(
            "config file {} is larger than {} KiB: not a seatable-cred config file",
            path.display(),
            MAX_CONFIG / 1024
        )));
    }
    Ok(Some(text))
}

/// Clears `O_NONBLOCK` once the file is known to be trusted.
fn blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == -1 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Config files are small; anything larger is not one.
const MAX_CONFIG: u64 = 1024 * 1024;

/// A file whose writer decides something for the user, named in messages
/// with what is at stake.
struct Trusted {
    /// "config file"
    name: &'static str,
    /// What whoever can write it decides.
    stake: &'static str,
}

const CONFIG: Trusted = Trusted {
    name: "config file",
    stake: "decides where your tokens go",
};

const TOKEN_FILE: Trusted = Trusted {
    name: "Vault token file",
    stake: "chooses the Vault identity the helper acts as",
};

/// The largest Vault token file read (a token is under a few hundred bytes).
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// A token file as it was read: its text (zeroed when dropped) and when it
/// was last changed, so that a change since can be seen.
pub(crate) struct TokenFileText {
    pub(crate) text: zeroize::Zeroizing<String>,
    pub(crate) modified: Option<std::time::SystemTime>,
}

/// The content of a file holding a Vault token (an agent's sink,
/// `~/.vault-token`), read with the config file's rules: the user's own (or
/// root's), written by nobody else, a regular file, opened without
/// blocking on a FIFO, capped. `Ok(None)` when there is no such file.
pub(crate) fn read_token_file(path: &Path) -> Result<Option<TokenFileText>, Failure> {
    let cannot = |e: std::io::Error| {
        Failure::usage(format!(
            "cannot read the Vault token file {}: {e}",
            path.display()
        ))
    };
    let file = match std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::File::options().read(true),
        libc::O_NONBLOCK | libc::O_CLOEXEC,
    )
    .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    let meta = check_trusted(&file, path, &TOKEN_FILE)?;
    if !meta.is_file() {
        return Err(Failure::usage(format!(
            "Vault token file {} is not a regular file: name the file the agent's sink writes",
            path.display()
        )));
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::Read::read_to_string(
        &mut std::io::Read::take(&file, MAX_TOKEN_FILE + 1),
        &mut text,
    )
    .map_err(cannot)?;
    if text.len() as u64 > MAX_TOKEN_FILE {
        return Err(Failure::usage(format!(
            "Vault token file {} is larger than {} KiB: not a Vault token",
            path.display(),
            MAX_TOKEN_FILE / 1024
        )));
    }
    Ok(Some(TokenFileText {
        text,
        modified: meta.modified().ok(),
    }))
}

/// When the file at `path` was last changed, if it can be seen.
pub(crate) fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Refuses a file that someone else could have written, as ssh does with
/// its config: a config file's `server_url` or `vault_addr` decides where
/// the API token is sent, a token file whose identity reads it. The owner
/// must be the user (or root) and group and others must not write it.
fn check_trusted(
    file: &std::fs::File,
    path: &Path,
    what: &Trusted,
) -> Result<std::fs::Metadata, Failure> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Trusted { name, stake } = what;
    let meta = file
        .metadata()
        .map_err(|e| Failure::usage(format!("cannot inspect {name} {}: {e}", path.display())))?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    // A device of root's (`/dev/null`) holds no one's settings.
    if meta.file_type().is_char_device() && meta.uid() == 0 {
        return Ok(meta);
    }
    if meta.uid() != me && meta.uid() != 0 {
        return Err(Failure::usage(format!(
            "{name} {} belongs to uid {}, not to you: whoever can write it {stake}; use a file of your own",
            path.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Failure::usage(format!(
            "{name} {} is writable by others (mode {:03o}): whoever can write it {stake}; run chmod go-w {}",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        )));
    }
    Ok(meta)
}

fn parse(text: &str, path: &Path) -> Result<ConfigFile, Failure> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| {
            let upto = s.start.min(text.len());
            text.as_bytes()[..upto]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
        Failure::usage(format!(
            "config file {}{at}: {}",
            path.display(),
            closest_key(e.message().trim())
        ))
    })
}

/// serde's "unknown field `sever_url`, expected one of `server_url`, …"
/// (all 30 of them) as the one key that was meant: "unknown key
/// `sever_url`: did you mean `server_url`?" — or, with none close, where
/// the keys are listed. Other messages are kept as they are.
fn closest_key(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((typo, expected)) = rest.split_once('`') else {
        return message.to_string();
    };
    let keys = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|k| !k.is_empty());
    let best = keys
        .map(|k| (strsim::jaro_winkler(typo, k), k))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, key)) if score >= 0.8 => {
            format!("unknown key `{typo}`: did you mean `{key}`?")
        }
        _ => format!(
            "unknown key `{typo}`: `seatable-cred --help` lists the settings (a key is the flag's name with _ for -)"
        ),
    }
}

/// Checks a config file's text; the names of its profiles. (For `doctor`
/// and the fuzzer: the same parser `resolve` uses.)
pub fn check(text: &str, path: &Path) -> Result<Vec<String>, Failure> {
    Ok(parse(text, path)?.profiles.into_keys().collect())
}

/// The config file of this call, and whether it was named explicitly
/// (`--config`, `SEATABLE_CRED_CONFIG`) rather than the default.
fn config_path(args: &GlobalArgs, env: &dyn Env) -> (Option<PathBuf>, bool) {
    match &args.config {
        Some(path) => (Some(path.clone()), true),
        None => (default_config_path(env), false),
    }
}

/// The names of the config file's profiles (none when there is no file;
/// an explicitly named file must exist). For the team admin's commands,
/// which look at every profile.
pub fn profile_names(args: &GlobalArgs, env: &dyn Env) -> Result<Vec<String>> {
    let (path, explicit) = config_path(args, env);
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let Some(text) = read_trusted(&path, !explicit, false)? else {
        return Ok(Vec::new());
    };
    Ok(check(&text, &path)?)
}

/// The profile's table of the config file, and where it is.
pub(super) fn profile_table(
    args: &GlobalArgs,
    env: &dyn Env,
) -> Result<(String, GlobalArgs, Place)> {
    let name = args
        .profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let (path, explicit) = config_path(args, env);
    let loaded = load_profile(path.as_deref(), explicit, &name)?;
    let table = match (&loaded.table, &loaded.others) {
        (Some(_), _) => Table::Found,
        (None, Some(names)) => Table::NotInFile(names.clone()),
        (None, None) => Table::NoFile,
    };
    let place = Place {
        profile: name.clone(),
        file: path.clone(),
        text: loaded.text,
        table,
    };
    if loaded.table.is_none() && name != "default" {
        return Err(place.no_profile(&args.sources).into());
    }
    Ok((name, loaded.table.unwrap_or_default(), place))
}
