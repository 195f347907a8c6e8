//! Deleting API tokens as a team admin: `token audit --revoke FINDING,…`
//! and `token revoke --base UUID --app NAME`.
//!
//! The rule of every `token` command holds: a token a Vault secret holds is
//! not deleted (`revoke --base` only with `--force`). Vault is read again
//! right before the deletes — after the question, which may have taken a
//! while — and again before a delete that failed is tried once more; while
//! any secret cannot be read, nothing is deleted, as the unread one might
//! hold the token.

use anyhow::Result;
use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::debug;

use super::{Audit, Finding, Sources};
use crate::error::{Failure, is_transient, one_line};
use crate::lifecycle::{Ctx, naming};
use crate::retry::{Policy, Verdict};
use crate::seatable::account::Deleted;
use crate::seatable::team::{TeamAdmin, hyphenated};

/// Deletes in flight at once.
const DELETES_IN_FLIGHT: usize = 4;

/// What `--revoke` sets out to delete.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Rows of the audit.
    pub revoke: Vec<usize>,
    /// Tokens with those findings that Vault holds: kept.
    pub held: usize,
    /// Tokens with those findings in a rotation still running: kept.
    pub rotating: usize,
}

/// What became of a token of the plan.
#[derive(Debug, PartialEq, Eq)]
pub struct Revocation {
    pub row: usize,
    pub outcome: Outcome,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Revoked,
    AlreadyGone,
    /// A Vault secret holds it now (this path): kept.
    NowHeld(String),
    Failed(String),
}

/// The tokens with one of `findings` that may be deleted: not those Vault
/// holds, nor the two of a rotation still running. Refused while Vault
/// was not read completely.
pub fn plan(audit: &Audit, findings: &[Finding]) -> Result<Plan> {
    if let Some(first) = audit.problems.first() {
        return Err(Failure::vault(format!(
            "nothing was revoked: Vault was not read completely ({} place(s), e.g. {first}), and any of them might hold a token; give the Vault identity list and read there, or leave out --revoke",
            audit.problems.len()
        ))
        .into());
    }
    let mut plan = Plan {
        revoke: Vec::new(),
        held: 0,
        rotating: 0,
    };
    for (i, row) in audit.rows.iter().enumerate() {
        if !row.findings.iter().any(|f| findings.contains(f)) {
            continue;
        }
        if row.vault_secret.is_some() {
            plan.held += 1;
        } else if row.in_rotation {
            plan.rotating += 1;
        } else {
            plan.revoke.push(i);
        }
    }
    Ok(plan)
}

/// Deletes the plan's tokens through the team-admin API, reading Vault
/// again first (and before each retry round).
pub async fn revoke_planned(
    ctx: &Ctx<'_>,
    audit: &Audit,
    plan: &Plan,
    sources: &Sources,
) -> Result<Vec<Revocation>> {
    let team = TeamAdmin::connect(
        &ctx.http,
        &ctx.profile.server_url,
        &ctx.account_token,
        ctx.deadline(),
    )
    .await?;
    let timeout = ctx.profile.timeout;
    let mut done = Vec::new();
    let mut pending = plan.revoke.clone();
    let mut last = String::new();
    // A round reads Vault again, then deletes what no secret holds; the
    // deletes that failed for a moment are the next round's, after a wait.
    let rounds = Policy::NETWORK
        .run(
            Instant::now() + timeout,
            "",
            |failed: Option<String>| match failed {
                None => Verdict::Done(()),
                Some(said) => Verdict::Again(Failure::unavailable(said).into(), None),
            },
            async || {
                let held = ctx.holders(sources).await;
                if let Some(first) = held.problems.first() {
                    for row in pending.drain(..) {
                        done.push(Revocation {
                            row,
                            outcome: Outcome::Failed(format!(
                                "kept: Vault could not be read again ({first})"
                            )),
                        });
                    }
                    return None;
                }
                pending.retain(|&row| match held.holder(&audit.rows[row].digest) {
                    Some(path) => {
                        done.push(Revocation {
                            row,
                            outcome: Outcome::NowHeld(path.to_string()),
                        });
                        false
                    }
                    None => true,
                });
                let tried: Vec<(usize, Result<Deleted>)> =
                    futures_util::stream::iter(std::mem::take(&mut pending))
                        .map(|row| {
                            let r = &audit.rows[row];
                            let team = &team;
                            async move {
                                let uuid =
                                    hyphenated(&r.base_uuid).unwrap_or_else(|| r.base_uuid.clone());
                                let deleted = team
                                    .delete_token(&uuid, &r.app_name, Instant::now() + timeout)
                                    .await;
                                (row, deleted)
                            }
                        })
                        .buffer_unordered(DELETES_IN_FLIGHT)
                        .collect()
                        .await;
                for (row, deleted) in tried {
                    let outcome = match deleted {
                        Ok(Deleted::Deleted) => Outcome::Revoked,
                        Ok(Deleted::Missing) => Outcome::AlreadyGone,
                        Err(e) if is_transient(&e) => {
                            last = one_line(&e);
                            pending.push(row);
                            continue;
                        }
                        Err(e) => Outcome::Failed(one_line(&e)),
                    };
                    done.push(Revocation { row, outcome });
                }
                (!pending.is_empty()).then(|| {
                    format!(
                        "{} delete(s) failed ({last}); reading Vault again before the next try",
                        pending.len()
                    )
                })
            },
        )
        .await;
    // Out of time with deletes still failing (nothing here is final).
    if rounds.is_err() {
        for row in pending {
            done.push(Revocation {
                row,
                outcome: Outcome::Failed(format!("{last}; run the audit again later")),
            });
        }
    }
    done.sort_by_key(|d| d.row);
    Ok(done)
}

/// What `token revoke --base` did.
pub struct TeamRevoked {
    pub app_name: String,
    pub base_uuid: String,
    /// The Vault secret that held it (`--force`).
    pub held_by: Option<String>,
    pub deleted: Deleted,
}

/// Deletes token `app` of base `base_uuid` through the team-admin API:
/// refused without `force` when a Vault secret the audit reads holds it —
/// or when Vault cannot be read completely, so that nobody can tell.
pub async fn revoke_in_team(
    ctx: &Ctx<'_>,
    sources: &Sources,
    base_uuid: &str,
    app: &str,
    force: bool,
) -> Result<TeamRevoked> {
    naming::check_app_name(app).map_err(Failure::usage)?;
    let team = TeamAdmin::connect(
        &ctx.http,
        &ctx.profile.server_url,
        &ctx.account_token,
        ctx.deadline(),
    )
    .await?;
    let listed = team.base_tokens(base_uuid, ctx.deadline()).await?;
    let Some(target) = listed.iter().find(|t| t.app_name == app) else {
        let names: Vec<&str> = listed.iter().map(|t| t.app_name.as_str()).collect();
        return Err(Failure::usage(format!(
            "base {base_uuid} has no API token named '{app}' (it has: {}); see `seatable-cred token audit`",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
        .into());
    };
    // Each try reads Vault first; only a delete that failed for a moment
    // is tried again.
    enum Tried {
        Kept(anyhow::Error),
        Deleted(Option<String>, Result<Deleted>),
    }
    let mut tries = 0;
    let (holder, deleted) = Policy::NETWORK
        .run(
            ctx.deadline(),
            "",
            |tried: Tried| match tried {
                Tried::Kept(e) => Verdict::Final(e),
                Tried::Deleted(_, Err(e)) if is_transient(&e) => Verdict::Again(e, None),
                Tried::Deleted(_, Err(e)) => Verdict::Final(e),
                Tried::Deleted(holder, Ok(deleted)) => Verdict::Done((holder, deleted)),
            },
            async || {
                tries += 1;
                if tries > 1 {
                    debug!("reading Vault again before deleting '{app}' of base {base_uuid}");
                }
                let held = ctx.holders(sources).await;
                let holder = held.holder(&target.digest).map(str::to_string);
                if !force {
                    if let Some(path) = &holder {
                        return Tried::Kept(Failure::usage(format!(
                            "'{app}' of base {base_uuid} is the token {path} holds: revoking it breaks every program that reads it; rotate it instead, or pass --force"
                        ))
                        .into());
                    }
                    if let Some(first) = held.problems.first() {
                        return Tried::Kept(Failure::vault(format!(
                            "'{app}' of base {base_uuid} was not revoked: Vault was not read completely ({} place(s), e.g. {first}), so whether a secret holds it is unknown; give the Vault identity list and read there, or pass --force",
                            held.problems.len()
                        ))
                        .into());
                    }
                }
                let deleted = team.delete_token(base_uuid, app, ctx.deadline()).await;
                Tried::Deleted(holder, deleted)
            },
        )
        .await?;
    Ok(TeamRevoked {
        app_name: app.to_string(),
        base_uuid: base_uuid.to_string(),
        held_by: holder,
        deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::audit::Row;

    fn row(json: &str, held: Option<&str>, findings: &[Finding], rotating: bool) -> Row {
        let mut r = Row::new(
            serde_json::from_str(json).unwrap(),
            held.map(str::to_string),
        );
        r.findings = findings.to_vec();
        r.in_rotation = rotating;
        r
    }

    #[test]
    fn the_plan_never_holds_a_token_vault_holds_nor_a_running_rotation() {
        let t = |app: &str| {
            format!(
                r#"{{"app_name":"{app}","api_token":"{app}","permission":"r","dtable_uuid":"u","dtable_name":"B"}}"#
            )
        };
        let mut audit = Audit {
            org_id: 1,
            rows: vec![
                row(&t("held"), Some("secret/a"), &[Finding::Unused], false),
                row(
                    &t("loose"),
                    None,
                    &[Finding::NotInVault, Finding::Unused],
                    false,
                ),
                row(
                    &t("rotating"),
                    None,
                    &[Finding::NotInVault, Finding::Unused],
                    true,
                ),
                row(
                    &t("other"),
                    None,
                    &[Finding::NotInVault, Finding::Old],
                    false,
                ),
                row(&t("fine"), Some("secret/b"), &[], false),
            ],
            secrets: 2,
            problems: Vec::new(),
            now: 0,
        };
        assert_eq!(
            plan(&audit, &[Finding::Unused]).unwrap(),
            Plan {
                revoke: vec![1],
                held: 1,
                rotating: 1
            }
        );
        assert_eq!(
            plan(&audit, &[Finding::NotInVault]).unwrap().revoke,
            vec![1, 3]
        );
        assert_eq!(
            plan(&audit, &[Finding::DuplicateApp]).unwrap().revoke,
            Vec::<usize>::new()
        );
        audit.problems.push("secret/x/: permission denied".into());
        let err = plan(&audit, &[Finding::Unused]).unwrap_err();
        assert_eq!(crate::error::kind_of(&err).exit_code(), 3);
        assert!(one_line(&err).starts_with("nothing was revoked: Vault was not read completely (1 place(s), e.g. secret/x/: permission denied)"));
    }
}
