//! Where each setting came from: a flag, an environment variable, a key of
//! the config file (or, for `init`, the answer that set it) — so that a
//! message about a bad value names the place to fix it (SPEC §3).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Failure;

/// Where a setting's value came from, so that a message names the place to
/// fix it: the flag, the environment variable, the config file's key (and
/// its line), `init`'s question — whichever really set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag, e.g. `--lifetime`.
    Flag(String),
    /// An environment variable, e.g. `SEATABLE_CRED_LIFETIME`.
    Env(String),
    /// A key of the profile's table in the config file.
    File {
        key: &'static str,
        profile: String,
        path: PathBuf,
        /// The file as it was read: its line is found when a message
        /// names it, never on the way to a cache hit.
        text: FileText,
    },
    /// The answer typed for one of `init`'s questions (its prompt).
    Answer(String),
    /// Nothing set it.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(name) => f.write_str(name),
            Origin::File {
                key,
                profile,
                path,
                text,
            } => {
                write!(f, "{key} in [profiles.{profile}] of {}", path.display())?;
                match text.line_of(profile, key) {
                    Some(line) => write!(f, ", line {line}"),
                    None => Ok(()),
                }
            }
            Origin::Answer(question) => write!(f, "your answer to '{question}'"),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Where a secret value is read (never the value): a variable that holds
/// it, or a file — named by a setting, or by convention, as the vault CLI's
/// `~/.vault-token`. A message about the secret names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value is this environment variable's.
    Env(String),
    /// The value is in this file; `named_by` set its path
    /// ([`Origin::Default`]: the convention).
    File { path: PathBuf, named_by: Origin },
    /// Typed on the terminal.
    Prompt,
    /// Nowhere: not configured.
    Absent,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => f.write_str(name),
            SecretSource::File {
                path,
                named_by: Origin::Default,
            } => write!(f, "{}", path.display()),
            SecretSource::File { path, named_by } => {
                write!(f, "{} (set by {named_by})", path.display())
            }
            SecretSource::Prompt => f.write_str("the terminal"),
            SecretSource::Absent => f.write_str("nowhere"),
        }
    }
}

/// The text of a config file, shared by the origins of the settings it set.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileText(Option<std::sync::Arc<String>>);

impl FileText {
    /// Kept as it was read (an `Arc<str>` would copy it on a cache hit's way).
    pub(super) fn new(text: String) -> FileText {
        FileText(Some(std::sync::Arc::new(text)))
    }

    /// The line (from 1) of `key` in `[profiles.NAME]`, if the text has it.
    fn line_of(&self, profile: &str, key: &str) -> Option<usize> {
        let text = self.0.as_deref()?;
        let doc = toml_edit::Document::parse(text).ok()?;
        let table = doc.get("profiles")?.get(profile)?.as_table_like()?;
        let (key, _) = table.get_key_value(key)?;
        let at = key.span()?.start;
        Some(
            text.as_bytes()[..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
        )
    }
}

impl std::fmt::Debug for FileText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileText")
    }
}

/// How a setting with a profile key is set, for a message that tells the
/// user where to set one nothing set: its flag and its variables.
fn how_to_set(key: &str) -> Option<(&'static str, &'static str)> {
    Some(match key {
        "server_url" => ("--server-url", "SEATABLE_SERVER_URL"),
        "vault_addr" => ("--vault-addr", "VAULT_ADDR (or BAO_ADDR)"),
        "secret" => ("--secret", "SEATABLE_CRED_SECRET"),
        "field" => ("--field", "SEATABLE_CRED_FIELD"),
        "ca_cert" => ("--ca-cert", "SEATABLE_CA_CERT"),
        "shared_cache" => ("--shared-cache", "SEATABLE_CRED_SHARED_CACHE"),
        "account_secret" => ("--account-secret", "SEATABLE_CRED_ACCOUNT_SECRET"),
        "auth_mount" => ("--auth-mount", "SEATABLE_CRED_AUTH_MOUNT"),
        _ => return None,
    })
}

/// `err`, when it is about a setting ([`crate::error::setting_of`]) whose
/// origin `origin_of` knows, with where that setting came from — "(set by
/// SEATABLE_CRED_SECRET)" — or, for one nothing set, where to set it (in
/// the profile's `table`). An answer just typed for `init` is on the screen
/// above: it is not named again.
pub fn name_origin(
    err: anyhow::Error,
    origin_of: impl Fn(&str) -> Option<Origin>,
    table: impl FnOnce() -> String,
) -> anyhow::Error {
    let Some(key) = crate::error::setting_of(&err) else {
        return err;
    };
    let said = match (origin_of(key), how_to_set(key)) {
        (None | Some(Origin::Answer(_)), _) => return err,
        (Some(origin), how) => (origin, how),
    };
    let said = match said {
        (Origin::Default, Some((flag, env))) => format!(
            "({key}: nothing set it, so the default applies; set {flag}, {env} or {key} in {})",
            table()
        ),
        (Origin::Default, None) => format!("({key}: the default)"),
        (origin, _) => format!("(set by {origin})"),
    };
    crate::error::naming(err, &said)
}

/// Where the profile's table is, for messages that tell the user where to
/// fix a setting.
pub(super) struct Place {
    pub(super) profile: String,
    pub(super) file: Option<PathBuf>,
    /// The file's text, for the lines of its keys.
    pub(super) text: FileText,
    /// Whether the file has the profile's table.
    pub(super) table: Table,
}

/// Whether the config file has the profile's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Table {
    Found,
    /// The file is there without it; these are its profiles.
    NotInFile(Vec<String>),
    /// There is no config file.
    NoFile,
}

impl Place {
    /// "set --flag, ENV or key in [profiles.NAME] of FILE"
    pub(super) fn hint(&self, flag: &str, env: &str, key: &str) -> String {
        format!(
            "set {flag_}, {env} or {key} in {}",
            self.table(),
            flag_ = dashed(flag)
        )
    }

    /// A setting the profile must have is missing (`what`, e.g. "no
    /// SeaTable server"): where to set it — or, when the profile's table is
    /// not there at all, that this is the real cause: which profiles the
    /// file has, or that there is no file and `init` writes one.
    pub(super) fn missing(&self, what: &str, flag: &str, env: &str, key: &str) -> Failure {
        let set = self.hint(flag, env, key);
        let file = self
            .file
            .as_ref()
            .map_or("the config file".to_string(), |f| f.display().to_string());
        let flag = dashed(flag);
        Failure::usage(match &self.table {
            Table::Found => format!("{what}: {set}"),
            Table::NotInFile(names) => format!(
                "profile '{}' is not in {file}{} — or set {flag} or {env} for a call without a profile",
                self.profile,
                pick_one(names)
            ),
            Table::NoFile => format!(
                "{what} and no config file ({file}): write a profile with `seatable-cred init`, or set {flag} or {env}"
            ),
        })
    }

    /// The profile asked for is not in the file: which ones are, and how to
    /// pick one — naming where the name came from.
    pub(super) fn no_profile(&self, sources: &Sources) -> Failure {
        let from = sources
            .get("profile")
            .map_or(String::new(), |o| format!(" (from {o})"));
        let name = &self.profile;
        Failure::usage(match (&self.table, &self.file) {
            (Table::NotInFile(names), Some(file)) => format!(
                "profile '{name}'{from} is not in {}{}",
                file.display(),
                pick_one(names)
            ),
            (_, Some(file)) => format!(
                "profile '{name}'{from} is not defined: there is no config file ({}); write it with `seatable-cred init --profile {name}`",
                file.display()
            ),
            (_, None) => format!(
                "profile '{name}'{from} is not defined: there is no config file (set --config or HOME); write one with `seatable-cred init --profile {name}`"
            ),
        })
    }

    /// "[profiles.NAME] of FILE"
    pub(super) fn table(&self) -> String {
        match &self.file {
            Some(file) => format!("[profiles.{}] of {}", self.profile, file.display()),
            None => format!("[profiles.{}] of the config file", self.profile),
        }
    }

    pub(super) fn file_key(&self, key: &'static str) -> Origin {
        match &self.file {
            Some(path) => Origin::File {
                key,
                profile: self.profile.clone(),
                path: path.clone(),
                text: self.text.clone(),
            },
            None => Origin::Default,
        }
    }
}

/// ": it has crm, billing: pick one with --profile NAME or
/// SEATABLE_CRED_PROFILE=NAME" — or that it has none.
fn pick_one(names: &[String]) -> String {
    let shown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| !n.chars().any(char::is_control))
        .collect();
    match shown.as_slice() {
        [] => ", which has no profile yet: write one with `seatable-cred init`".to_string(),
        [one] => format!(
            " (it has '{one}'): pick it with --profile {one} or SEATABLE_CRED_PROFILE={one}"
        ),
        many => format!(
            " (it has {}): pick one with --profile NAME or SEATABLE_CRED_PROFILE=NAME",
            many.iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A flag as written: `--server-url` (given either way).
fn dashed(flag: &str) -> String {
    if flag.starts_with("--") {
        flag.to_string()
    } else {
        format!("--{flag}")
    }
}

/// A usage error about a setting, naming where it was set.
pub(super) fn bad(origin: &Origin, problem: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("{origin}: {problem}"))
}

/// The origin of a value clap parsed for the argument `id` (a flag, or its
/// environment variable); a flag when clap did not say (tests build
/// [`super::GlobalArgs`] by hand).
pub(super) fn clap_origin(sources: &Sources, id: &str) -> Origin {
    sources
        .get(id)
        .cloned()
        .unwrap_or_else(|| Origin::Flag(format!("--{}", id.replace('_', "-"))))
}

/// Records where each setting came from while the profile is resolved.
pub(super) struct Origins<'a> {
    /// Where clap found the flags' values.
    pub(super) sources: &'a Sources,
    pub(super) place: &'a Place,
    pub(super) seen: BTreeMap<&'static str, Origin>,
}

impl Origins<'_> {
    /// The first of: the flag (or its clap-read variable) `from_args`, the
    /// other environment variables `envs`, the file's value; and notes
    /// where it came from under `key` (also the clap argument id).
    pub(super) fn pick<T>(
        &mut self,
        key: &'static str,
        from_args: Option<T>,
        envs: Vec<(&'static str, Option<T>)>,
        from_file: Option<T>,
    ) -> Option<T> {
        let found = match from_args {
            Some(v) => Some((v, clap_origin(self.sources, key))),
            None => envs
                .into_iter()
                .find_map(|(name, v)| v.map(|v| (v, Origin::Env(name.to_string()))))
                .or_else(|| from_file.map(|v| (v, self.place.file_key(key)))),
        };
        found.map(|(v, origin)| {
            self.seen.insert(key, origin);
            v
        })
    }

    /// Where `key` came from, once picked.
    pub(super) fn of(&self, key: &str) -> Origin {
        self.seen.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// For each option clap read, the flag or environment variable it came
/// from — so that a message about a bad value names the place to fix it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sources(std::collections::BTreeMap<String, Origin>);

impl Sources {
    /// What `matches` (parsed by `cmd`) took from the command line or the
    /// environment for every argument but those in `skip`.
    pub(crate) fn of(
        cmd: &clap::Command,
        matches: &clap::ArgMatches,
        skip: &[clap::Id],
    ) -> Sources {
        use clap::parser::ValueSource;
        let mut found = std::collections::BTreeMap::new();
        for arg in cmd.get_arguments().filter(|a| !skip.contains(a.get_id())) {
            let id = arg.get_id().as_str();
            let origin = match matches.value_source(id) {
                Some(ValueSource::CommandLine) => match arg.get_long() {
                    Some(long) => Origin::Flag(format!("--{long}")),
                    None => continue,
                },
                Some(ValueSource::EnvVariable) => match arg.get_env() {
                    Some(name) => Origin::Env(name.to_string_lossy().into_owned()),
                    None => continue,
                },
                _ => continue,
            };
            found.insert(id.to_string(), origin);
        }
        Sources(found)
    }

    pub fn get(&self, id: &str) -> Option<&Origin> {
        self.0.get(id)
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// Sources as a caller that parsed by other means knows them.
    pub fn from_map(map: std::collections::BTreeMap<String, Origin>) -> Sources {
        Sources(map)
    }
}
