//! Every secret under a KV path, listed recursively and read — KV v1 and
//! v2, [`IN_FLIGHT`] requests at a time — and single secrets: what
//! `token audit` matches the team's API tokens against (SPEC §12).
//!
//! Values go to the caller's `visit` one string at a time, as each secret
//! arrives, and are zeroed right after: the caller reduces them to digests.
//! Nothing here keeps, logs or returns a value. What cannot be read (a
//! denied list or read, a Vault that keeps failing) is reported by path,
//! so that the caller knows its picture of Vault is incomplete.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, trace, warn};
use vaultrs::api::kv1::requests::{GetSecretRequest, ListSecretRequest};
use vaultrs::api::kv2::requests::{ListSecretsRequest, ReadSecretRequest};
use vaultrs::client::VaultClient;
use vaultrs::error::ClientError;

use super::classify;
use super::versioned::scrub;
use crate::config::{SecretRef, VaultSettings};
use crate::error::{Failure, one_line};

/// Vault requests in flight at once: enough to hide the round trips, few
/// enough not to crowd a Vault that serves others too.
pub const IN_FLIGHT: usize = 16;

/// Where to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    /// The mount and the path in it (for a tree, empty: the whole mount).
    pub at: SecretRef,
    /// `None`: asked of Vault, as the vault CLI does.
    pub kv_version: Option<u8>,
    /// Every secret under `at` (a folder), or `at` alone (a secret).
    pub tree: bool,
}

/// What a scan read.
#[derive(Debug, Default)]
pub struct Scanned {
    /// Secrets read.
    pub secrets: usize,
    /// What could not be read, one line each (paths and Vault's words, never values).
    pub problems: Vec<String>,
}

/// `mount/path`, or `mount/` for a whole mount.
pub fn shown(at: &SecretRef) -> String {
    format!("{}/{}", at.mount, at.path)
}

/// A root with its mount as Vault reports it and its KV version.
struct Located {
    mount: String,
    path: String,
    version: u8,
    tree: bool,
}

enum Job {
    List { root: usize, dir: String },
    Read { root: usize, path: String },
}

enum Found {
    Keys(Vec<String>),
    Data(Value),
    /// 404: no such folder or secret (or its latest version deleted).
    Nothing,
}

/// Lists and reads every root; `visit(root, path, value)` is called for
/// every string in every secret's data, `root` being the index in `roots`
/// and `path` the secret's `mount/path`. Each request (with its retries of
/// transient failures) is bounded by `timeout`.
pub async fn scan(
    client: &VaultClient,
    v: &VaultSettings,
    roots: &[Root],
    timeout: Duration,
    mut visit: impl FnMut(usize, &str, &str),
) -> Scanned {
    let mut scanned = Scanned::default();
    let mut located = Vec::with_capacity(roots.len());
    let mut queue = VecDeque::new();
    for (i, root) in roots.iter().enumerate() {
        match locate(client, v, root, timeout).await {
            Ok(found) => {
                queue.push_back(if found.tree {
                    Job::List {
                        root: i,
                        dir: dir_of(&found.path),
                    }
                } else {
                    Job::Read {
                        root: i,
                        path: found.path.clone(),
                    }
                });
                located.push(Some(found));
            }
            Err(e) => {
                scanned
                    .problems
                    .push(format!("{}: {}", shown(&root.at), one_line(&e)));
                located.push(None);
            }
        }
    }
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < IN_FLIGHT
            && let Some(job) = queue.pop_front()
        {
            running.push(run(client, v, &located, job, timeout));
        }
        let Some((job, found)) = running.next().await else {
            break;
        };
        match (job, found) {
            (Job::List { root, dir }, Ok(Found::Keys(keys))) => {
                for key in keys {
                    // Folders end in '/'; a key holding '/' otherwise is
                    // nothing Vault lists.
                    let at = format!("{dir}{key}");
                    queue.push_back(if key.ends_with('/') {
                        Job::List { root, dir: at }
                    } else {
                        Job::Read { root, path: at }
                    });
                }
            }
            (Job::List { root, dir }, Ok(_)) => {
                if dir == dir_of(located[root].as_ref().map_or("", |l| &l.path)) {
                    warn!(
                        "no secrets under {} in Vault at {}",
                        shown(&roots[root].at),
                        v.addr
                    );
                }
            }
            (Job::Read { root, path }, Ok(Found::Data(mut data))) => {
                scanned.secrets += 1;
                let mount = located[root].as_ref().map_or("", |l| &l.mount);
                let shown = format!("{mount}/{path}");
                trace!(secret = %shown, "read");
                each_string(&data, &mut |value| visit(root, &shown, value));
                scrub(&mut data);
            }
            (Job::Read { .. }, Ok(_)) => {}
            (Job::List { root, dir } | Job::Read { root, path: dir }, Err(e)) => {
                let mount = located[root].as_ref().map_or("", |l| &l.mount);
                scanned
                    .problems
                    .push(format!("{mount}/{dir}: {}", one_line(&e)));
            }
        }
    }
    debug!(
        secrets = scanned.secrets,
        problems = scanned.problems.len(),
        "read Vault"
    );
    scanned
}

fn dir_of(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    }
}

/// The root's mount as Vault reports it (mounts may be deeper than the
/// first segment: `team/kv`) and its KV version.
async fn locate(
    client: &VaultClient,
    v: &VaultSettings,
    root: &Root,
    timeout: Duration,
) -> Result<Located> {
    let found = match root.kv_version {
        Some(version) => Some((root.at.mount.clone(), version)),
        None => {
            let deadline = Instant::now() + timeout;
            bounded(
                deadline,
                crate::retry::transient(deadline, "looking up a KV mount", async || {
                    super::kv::mount_of(client, v, &root.at).await
                }),
                &v.addr,
            )
            .await?
        }
    };
    let full = shown(&root.at);
    let full = full.trim_end_matches('/');
    let (mount, version) = found.unwrap_or_else(|| (root.at.mount.clone(), 1));
    let mount = mount.trim_matches('/');
    let path = if full == mount {
        Some("")
    } else {
        full.strip_prefix(mount).and_then(|p| p.strip_prefix('/'))
    };
    let (mount, path) = match path {
        Some(path) if !mount.is_empty() => (mount.to_string(), path.to_string()),
        _ => (root.at.mount.clone(), root.at.path.clone()),
    };
    Ok(Located {
        mount,
        path: path.trim_matches('/').to_string(),
        version,
        tree: root.tree,
    })
}

async fn bounded<T>(
    deadline: Instant,
    step: impl Future<Output = Result<T>>,
    addr: &str,
) -> Result<T> {
    match tokio::time::timeout_at(deadline + Duration::from_millis(250), step).await {
        Ok(result) => result,
        Err(_) => Err(Failure::unavailable(format!(
            "Vault at {addr} did not answer in time (--timeout)"
        ))
        .into()),
    }
}

async fn run(
    client: &VaultClient,
    v: &VaultSettings,
    located: &[Option<Located>],
    job: Job,
    timeout: Duration,
) -> (Job, Result<Found>) {
    let (root, at, listing) = match &job {
        Job::List { root, dir } => (*root, dir.as_str(), true),
        Job::Read { root, path } => (*root, path.as_str(), false),
    };
    let Some(l) = &located[root] else {
        return (job, Ok(Found::Nothing));
    };
    let deadline = Instant::now() + timeout;
    let what = if listing {
        "listing secrets"
    } else {
        "reading a secret"
    };
    let found = bounded(
        deadline,
        crate::retry::transient(deadline, what, async || {
            request(client, v, l, at, listing).await
        }),
        &v.addr,
    )
    .await;
    (job, found)
}

/// One LIST or read.
async fn request(
    client: &VaultClient,
    v: &VaultSettings,
    l: &Located,
    at: &str,
    listing: bool,
) -> Result<Found> {
    let built = |e: &dyn std::fmt::Display| Failure::internal(format!("Vault request: {e}"));
    let answer = match (listing, l.version) {
        (true, 2) => {
            let r = ListSecretsRequest::builder()
                .mount(&l.mount)
                .path(at)
                .build()
                .map_err(|e| built(&e))?;
            super::api::exec(client, r)
                .await
                .map(|r| Found::Keys(r.keys))
        }
        (true, _) => {
            let r = ListSecretRequest::builder()
                .mount(&l.mount)
                .path(at)
                .build()
                .map_err(|e| built(&e))?;
            super::api::exec_whole(client, r)
                .await
                .map(|r| Found::Keys(r.data.keys))
        }
        (false, 2) => {
            let r = ReadSecretRequest::builder()
                .mount(&l.mount)
                .path(at)
                .build()
                .map_err(|e| built(&e))?;
            super::api::exec(client, r)
                .await
                .map(|r| Found::Data(r.data))
        }
        (false, _) => {
            let r = GetSecretRequest::builder()
                .mount(&l.mount)
                .path(at)
                .build()
                .map_err(|e| built(&e))?;
            super::api::exec_whole(client, r)
                .await
                .map(|r| Found::Data(r.data))
        }
    };
    match answer {
        Ok(found) => Ok(found),
        Err(e) if status(&e) == Some(404) => Ok(Found::Nothing),
        Err(e) => {
            let shown = format!("{}/{at}", l.mount);
            let (doing, needs) = match (listing, l.version) {
                (true, 2) => (
                    format!("listing {shown}"),
                    format!("list on {}/metadata/{at}*", l.mount),
                ),
                (true, _) => (format!("listing {shown}"), format!("list on {shown}*")),
                (false, 2) => (
                    format!("reading {shown}"),
                    format!("read on {}/data/{at}", l.mount),
                ),
                (false, _) => (format!("reading {shown}"), format!("read on {shown}")),
            };
            Err(classify(
                e,
                &v.addr,
                &doing,
                &format!(
                    "check the policy of {}: it needs {needs}",
                    super::identity(v)
                ),
                &format!("nothing at {shown}"),
            )
            .into())
        }
    }
}

fn status(e: &ClientError) -> Option<u16> {
    match e {
        ClientError::APIError { code, .. } => Some(*code),
        ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError { code, .. },
        } => Some(*code),
        _ => None,
    }
}

/// Every string in a secret's data, nested ones included.
fn each_string(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| each_string(i, f)),
        Value::Object(map) => map.values().for_each(|i| each_string(i, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_visited_and_then_zeroed() {
        let mut data: Value = serde_json::from_str(
            r#"{"api_token":"t1","n":3,"nested":{"x":["t2",true,{"y":"t3"}]}}"#,
        )
        .unwrap();
        let mut seen = Vec::new();
        each_string(&data, &mut |s| seen.push(s.to_string()));
        seen.sort();
        assert_eq!(seen, ["t1", "t2", "t3"]);
        scrub(&mut data);
        let mut after = Vec::new();
        each_string(&data, &mut |s| after.push(s.to_string()));
        assert!(after.iter().all(String::is_empty), "{after:?}");
    }

    #[test]
    fn folders_and_paths() {
        assert_eq!(dir_of(""), "");
        assert_eq!(dir_of("seatable/team"), "seatable/team/");
        let at = SecretRef {
            mount: "secret".into(),
            path: String::new(),
        };
        assert_eq!(shown(&at), "secret/");
    }
}
