//! `token revoke` and `token prune`: deleting API tokens in SeaTable.
//!
//! Both read Vault first and never delete the token it holds — `revoke`
//! only when told so with `--force`.

use anyhow::Result;

use super::{Ctx, naming};
use crate::error::Failure;
use crate::seatable::account::{BaseRef, Deleted, Digest};

pub struct Revoked {
    pub app_name: String,
    pub base: BaseRef,
    /// It was the token the profile's secret holds (`--force`).
    pub was_in_vault: bool,
    pub deleted: Deleted,
    /// The latest expiry of a base token of it that the cache had seen
    /// (only one Vault held can have been cached).
    pub old_base_tokens_until: Option<u64>,
}

pub async fn revoke(ctx: &mut Ctx<'_>, app: &str, force: bool) -> Result<Revoked> {
    naming::check_app_name(app).map_err(Failure::usage)?;
    let (token, opened) = ctx.vault_base().await?;
    let held = Digest::of(&token);
    let base = opened.base;
    let listed = ctx.tokens(&base).await?;
    let Some(target) = listed.iter().find(|t| t.app_name == app) else {
        let names: Vec<&str> = listed.iter().map(|t| t.app_name.as_str()).collect();
        return Err(Failure::usage(format!(
            "base {base} has no API token named '{app}' (it has: {}); see `seatable-cred token list`",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
        .into());
    };
    let refusal = || {
        Failure::usage(format!(
            "'{app}' is the token {} holds: revoking it breaks every `get` of this profile; rotate it instead (`seatable-cred token rotate`), or pass --force",
            ctx.profile.secret
        ))
    };
    let was_in_vault = target.digest == held;
    let mut old_base_tokens_until = None;
    let deleted = if was_in_vault {
        if !force {
            return Err(refusal().into());
        }
        let deleted = ctx.delete(&base, app).await?;
        old_base_tokens_until = ctx.cached_expiry(&token).await;
        ctx.drop_cached().await;
        deleted
    } else {
        match ctx.delete_unless_held(&base, app, target.digest).await? {
            Some(deleted) => deleted,
            // Vault was changed to hold it in the meantime.
            None if !force => return Err(refusal().into()),
            None => ctx.delete(&base, app).await?,
        }
    };
    drop(token);
    Ok(Revoked {
        app_name: app.to_string(),
        base,
        was_in_vault,
        deleted,
        old_base_tokens_until,
    })
}

pub struct Pruned {
    pub base: BaseRef,
    pub family: String,
    /// The app name of the token Vault holds.
    pub kept: String,
    pub deleted: Vec<String>,
    /// Family tokens made too recently to tell from a running rotation's
    /// successor: left for a later prune.
    pub in_flight: Vec<String>,
}

pub async fn prune(ctx: &mut Ctx<'_>) -> Result<Pruned> {
    let (token, opened) = ctx.vault_base().await?;
    let held = Digest::of(&token);
    drop(token);
    let base = opened.base;
    let listed = ctx.tokens(&base).await?;
    let Some(me) = listed.iter().find(|t| t.digest == held) else {
        return Err(Failure::seatable(format!(
            "the API token in {} is not among the API tokens of base {base} the account sees: check that the account may manage this base's tokens",
            ctx.profile.secret
        ))
        .into());
    };
    let kept = me.app_name.clone();
    let family = naming::family(&kept).to_string();
    let mut deleted = Vec::new();
    let mut in_flight = Vec::new();
    for t in listed
        .iter()
        .filter(|t| t.digest != held && naming::is_member(&t.app_name, &family))
    {
        // A token made moments ago may be the successor of a rotation still
        // running, not yet in Vault: deleting it would leave that rotation
        // with no working token once it deletes its predecessor.
        if ctx.may_be_in_flight(t.generated_at.as_deref(), me.generated_at.as_deref()) {
            in_flight.push(t.app_name.clone());
            continue;
        }
        if ctx
            .delete_unless_held(&base, &t.app_name, t.digest)
            .await?
            .is_some()
        {
            deleted.push(t.app_name.clone());
        }
    }
    Ok(Pruned {
        base,
        family,
        kept,
        deleted,
        in_flight,
    })
}
