//! Where each setting came from: a flag, an environment variable, a key of
//! the config file (or, for `init`, the answer that set it) — so that a
//! message about a bad value names the place to fix it (SPEC §3).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::Failure;

/// Where a setting's value came from, so that a message names the place to
/// fix it: the flag, the environment variable or the config file's key —
/// whichever really set it.
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
    },
    /// Nothing set it.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(name) => f.write_str(name),
            Origin::File { key, profile, path } => {
                write!(f, "{key} in [profiles.{profile}] of {}", path.display())
            }
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Where the profile's table is, for messages that tell the user where to
/// fix a setting.
pub(super) struct Place {
    pub(super) profile: String,
    pub(super) file: Option<PathBuf>,
}

impl Place {
    /// "set --flag, ENV or key in [profiles.NAME] of FILE"
    pub(super) fn hint(&self, flag: &str, env: &str, key: &str) -> String {
        let place = match &self.file {
            Some(file) => format!("[profiles.{}] of {}", self.profile, file.display()),
            None => format!("[profiles.{}] of the config file", self.profile),
        };
        format!("set --{flag}, {env} or {key} in {place}")
    }

    pub(super) fn file_key(&self, key: &'static str) -> Origin {
        match &self.file {
            Some(path) => Origin::File {
                key,
                profile: self.profile.clone(),
                path: path.clone(),
            },
            None => Origin::Default,
        }
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
