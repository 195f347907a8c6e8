//! `token create`: mint an API token straight into Vault.
//!
//! The base is the one the profile's secret already opens, or `--base`
//! found in the account's workspaces (`--workspace` when the name is in
//! more than one). The secret is read first: one that exists is refused
//! without `--force`, before anything is made. The new token must open the
//! base it was made for; then it is written with check-and-set on the
//! version read. A refused or failed write deletes it in SeaTable again.

use anyhow::Result;
use tracing::info;

use super::{Ctx, check_opens, discard, naming, restate};
use crate::config::SecretRef;
use crate::error::{Failure, Kind, kind_of};
use crate::seatable::account::{BaseRef, Created as Answer, Digest};
use crate::vault::versioned::Written;

pub struct Request<'a> {
    pub app: &'a str,
    /// `r` or `rw`.
    pub permission: &'a str,
    pub base: Option<&'a str>,
    pub workspace: Option<i64>,
    pub force: bool,
}

/// What was made and where it went — never the token.
pub struct Created {
    pub app_name: String,
    pub permission: String,
    pub base: BaseRef,
    pub secret: SecretRef,
    pub field: String,
    pub version: u64,
    /// With `--force`: the app name of the token the secret held before,
    /// when it is one of this base's (it stays valid in SeaTable).
    pub previous: Option<String>,
    /// With `--force`: the secret held a token before.
    pub replaced: bool,
}

pub async fn create(ctx: &mut Ctx<'_>, req: Request<'_>) -> Result<Created> {
    naming::check_app_name(req.app).map_err(Failure::usage)?;
    if let Some(name) = req.base {
        crate::seatable::account::check_segment("--base", name).map_err(Failure::usage)?;
    }
    let profile = ctx.profile;
    let held = ctx.held("token create").await?;
    if held.state.data.is_some() && !req.force {
        return Err(Failure::usage(format!(
            "{} already exists (version {}): token create never overwrites a secret; pass --force to write a new version (the current one stays in the secret's history)",
            held.secret, held.state.version
        ))
        .into());
    }
    let previous_token = held.token(&profile.field);
    let (base, uuid) = match req.base {
        Some(name) => find_base(ctx, name, req.workspace).await?,
        None => match &previous_token {
            Some(token) => {
                let opened = ctx
                    .open(token, &format!("the API token in {}", held.secret))
                    .await?;
                (opened.base, opened.dtable_uuid)
            }
            None => {
                return Err(Failure::usage(format!(
                    "{} holds no API token to find the base from: name it with --base NAME",
                    held.secret
                ))
                .into());
            }
        },
    };
    let previous = match &previous_token {
        Some(token) => {
            let digest = Digest::of(token);
            ctx.tokens(&base)
                .await?
                .into_iter()
                .find(|t| t.digest == digest)
                .map(|t| t.app_name)
        }
        None => None,
    };

    let answer = ctx
        .account()?
        .create_token(&base, req.app, req.permission, ctx.deadline())
        .await
        .map_err(|e| match kind_of(&e) {
            Kind::Unavailable => restate(&e, |line| {
                format!(
                    "{line}; if '{0}' was made, `seatable-cred token revoke --app {0}` removes it",
                    req.app
                )
            }),
            _ => e,
        })?;
    let new = match answer {
        Answer::Token(t) => t,
        Answer::Exists => {
            return Err(Failure::usage(format!(
                "base {base} already has an API token named '{}': choose another --app, or delete that one with `seatable-cred token revoke --app {}`",
                req.app, req.app
            ))
            .into());
        }
    };
    info!("created API token '{}' for base {base}", new.app_name);
    let digest = Digest::of(&new.api_token);
    if let Err(e) = check_opens(ctx, &new.api_token, req.app, &base, uuid.as_deref()).await {
        return Err(discard(ctx, &base, req.app, digest, e).await);
    }
    let version = match ctx.write(&held, &new.api_token).await {
        Ok(Written::Version(v)) => v,
        Ok(Written::Conflict) => {
            let e = Failure::vault(format!(
                "{} was written by someone else meanwhile (check-and-set on version {} refused); nothing was written",
                held.secret, held.state.version
            ))
            .into();
            return Err(discard(ctx, &base, req.app, digest, e).await);
        }
        Err(e) => return Err(discard(ctx, &base, req.app, digest, e).await),
    };
    ctx.drop_cached().await;
    Ok(Created {
        app_name: req.app.to_string(),
        permission: if new.permission.is_empty() {
            req.permission.to_string()
        } else {
            new.permission
        },
        base,
        secret: held.secret,
        field: profile.field.clone(),
        version,
        previous,
        replaced: previous_token.is_some(),
    })
}

/// Finds the base called `name` in the account's workspaces; an ambiguous
/// name is a usage error listing the candidates.
async fn find_base(
    ctx: &Ctx<'_>,
    name: &str,
    workspace: Option<i64>,
) -> Result<(BaseRef, Option<String>)> {
    let list = ctx.account()?.workspaces(ctx.deadline()).await?;
    // (workspace id, workspace name, base uuid); the pseudo-workspaces
    // ("starred", "shared") have no id and only repeat bases.
    let mut found: Vec<(i64, String, String)> = Vec::new();
    for ws in &list.workspace_list {
        let Some(id) = ws.id else { continue };
        for table in ws.table_list.iter().filter(|t| t.name == name) {
            let id = table.workspace_id.unwrap_or(id);
            if !found
                .iter()
                .any(|(w, _, u)| *w == id && crate::seatable::same_base(u, &table.uuid))
            {
                found.push((id, ws.name.clone(), table.uuid.clone()));
            }
        }
    }
    let everywhere = found.len();
    if let Some(want) = workspace {
        found.retain(|(id, _, _)| *id == want);
    }
    found.sort();
    match found.as_slice() {
        [(id, _, uuid)] => Ok((
            BaseRef {
                workspace_id: *id,
                name: name.to_string(),
            },
            (!uuid.is_empty()).then(|| uuid.clone()),
        )),
        [] => Err(Failure::usage(match workspace {
            Some(want) if everywhere > 0 => format!(
                "no base named '{name}' in workspace {want} (it is in {everywhere} other workspace(s)): check --workspace"
            ),
            _ => format!(
                "no base named '{name}' in the workspaces the account sees: check --base and the account"
            ),
        })
        .into()),
        many => {
            let listed: Vec<String> = many
                .iter()
                .map(|(id, ws, _)| format!("{id} ({ws})"))
                .collect();
            Err(Failure::usage(format!(
                "base name '{name}' is in {} workspaces: pick one with --workspace ID — {}",
                many.len(),
                listed.join(", ")
            ))
            .into())
        }
    }
}
