//! Which Vault secrets hold which API tokens, by digest: the secret of
//! every profile of the config file (and of the current one), and every
//! secret under each `--vault-prefix`. Values are digested as they are
//! read ([`crate::vault::scan`]) and dropped; only digests and paths stay.

use std::collections::HashMap;
use std::time::Duration;

use tracing::debug;
use vaultrs::client::VaultClient;

use crate::config::{self, Env, GlobalArgs, Profile, SecretRef, VaultSettings};
use crate::error::one_line;
use crate::seatable::account::Digest;
use crate::vault::scan::{self, Root};

/// Where the audit looks for tokens, with what it cannot look at.
#[derive(Debug, Default)]
pub struct Sources {
    roots: Vec<Root>,
    /// What will not be read: profiles that do not resolve, or whose
    /// secret is on another Vault than the current profile's.
    skipped: Vec<String>,
}

impl Sources {
    /// The profiles' secrets first (the current profile's, then the
    /// others by name), then the prefixes as given.
    pub fn new(
        global: &GlobalArgs,
        env: &dyn Env,
        current: &Profile,
        current_secret: Option<&SecretRef>,
        prefixes: &[SecretRef],
    ) -> Sources {
        let mut sources = Sources::default();
        if let Some(secret) = current_secret {
            sources.secret(secret, current.kv_version);
        }
        match config::profile_names(global, env) {
            Ok(names) => {
                for name in names.iter().filter(|n| **n != current.name) {
                    match config::resolve_named(global, env, name) {
                        Ok(p) if same_vault(&p.vault, &current.vault) => {
                            sources.secret(&p.secret, p.kv_version);
                        }
                        Ok(p) => sources.skipped.push(format!(
                            "profile {name}: its secret {} is on Vault at {}, not {} (the one this run reads)",
                            p.secret, p.vault.addr, current.vault.addr
                        )),
                        Err(e) => sources
                            .skipped
                            .push(format!("profile {name}: {}", one_line(&e))),
                    }
                }
            }
            Err(e) => sources.skipped.push(one_line(&e)),
        }
        for prefix in prefixes {
            let root = Root {
                at: prefix.clone(),
                kv_version: None,
                tree: true,
            };
            if !sources.roots.contains(&root) {
                sources.roots.push(root);
            }
        }
        sources
    }

    fn secret(&mut self, secret: &SecretRef, kv_version: Option<u8>) {
        let root = Root {
            at: secret.clone(),
            kv_version,
            tree: false,
        };
        if !self.roots.contains(&root) {
            self.roots.push(root);
        }
    }
}

fn same_vault(a: &VaultSettings, b: &VaultSettings) -> bool {
    a.addr == b.addr && a.namespace == b.namespace
}

/// What Vault holds, by digest.
#[derive(Debug, Default)]
pub struct Holders {
    /// For each digest, where: (source rank, secret path), in order.
    by_digest: HashMap<Digest, Vec<(usize, String)>>,
    /// Secrets read.
    pub secrets: usize,
    /// What could not be read: while any is left, Vault's picture is
    /// incomplete — a token may be in a secret that was not read.
    pub problems: Vec<String>,
}

impl Holders {
    /// The first secret holding the token: a profile's before a prefix's,
    /// then by path.
    pub fn holder(&self, digest: &Digest) -> Option<&str> {
        self.by_digest
            .get(digest)
            .and_then(|held| held.first())
            .map(|(_, path)| path.as_str())
    }
}

/// Reads every source (requests bounded by `timeout` each).
pub async fn read(
    client: &VaultClient,
    v: &VaultSettings,
    sources: &Sources,
    timeout: Duration,
) -> Holders {
    let mut by_digest: HashMap<Digest, Vec<(usize, String)>> = HashMap::new();
    let scanned = scan::scan(client, v, &sources.roots, timeout, |rank, path, value| {
        let held = by_digest.entry(Digest::of_str(value)).or_default();
        if !held.iter().any(|(_, p)| p == path) {
            held.push((rank, path.to_string()));
        }
    })
    .await;
    for held in by_digest.values_mut() {
        held.sort();
    }
    let mut problems = sources.skipped.clone();
    problems.extend(scanned.problems);
    debug!(
        secrets = scanned.secrets,
        digests = by_digest.len(),
        "read what Vault holds"
    );
    Holders {
        by_digest,
        secrets: scanned.secrets,
        problems,
    }
}
