//! `token rotate`: replace the API token in Vault, crash-safely.
//!
//! 1. Read the secret with its version (KV v2 only) and find the token's
//!    base, app name and permission.
//! 2. Create the successor `<family>-<UTC YYYYMMDDhhmmss>` with the same
//!    permission, and check that it opens the same base.
//! 3. Write it with check-and-set on the version read. Lost: someone else
//!    rotated; the successor is deleted again and nothing else changes.
//! 4. Check that the token now in Vault exchanges (a concurrent `prune`
//!    may have deleted it); if not, write the predecessor back.
//! 5. Drop the profile's cached base tokens, wait `--grace`, read Vault
//!    again and delete the predecessor — and leftovers of earlier runs
//!    killed midway (family tokens Vault does not hold).
//!
//! Killed at any point, the state is one that the next `rotate` or `prune`
//! finishes: before step 3 lands Vault holds the working predecessor and
//! the successor is a leftover; after it Vault holds the working successor
//! and the predecessor is a leftover.

use std::time::Duration;

use anyhow::Result;
use secrecy::SecretString;
use tracing::{debug, info, warn};

use super::{Ctx, Held, check_opens, discard, naming, restate};
use crate::config::SecretRef;
use crate::error::{Failure, Kind, kind_of, one_line};
use crate::seatable::account::{BaseRef, Created, Digest};
use crate::vault::versioned::Written;

/// What a rotation did — never a token.
pub struct Rotated {
    pub predecessor: String,
    pub successor: String,
    pub permission: String,
    pub base: BaseRef,
    pub secret: SecretRef,
    pub field: String,
    pub version: u64,
    /// Leftovers of earlier, interrupted rotations that were deleted too.
    pub leftovers: Vec<String>,
    /// The latest expiry of a base token of the predecessor that the cache
    /// had seen: such tokens stay valid until then.
    pub old_base_tokens_until: Option<u64>,
}

/// How often a successor name already taken (by a concurrent rotation in
/// the same second) is tried again with the next second's name.
const NAME_ATTEMPTS: u32 = 3;

pub async fn rotate(ctx: &mut Ctx<'_>, grace: Duration) -> Result<Rotated> {
    let profile = ctx.profile;
    let field = profile.field.as_str();
    let held = ctx.held("token rotate").await?;
    let current = held.token(field).ok_or_else(|| {
        Failure::usage(format!(
            "{} holds no API token in field {field}: mint one with `seatable-cred token create --app NAME --base NAME`",
            held.secret
        ))
    })?;
    let current_digest = Digest::of(&current);
    let opened = ctx.open_vault_token(&current).await?;
    let base = opened.base;
    let listed = ctx.tokens(&base).await?;
    let Some(me) = listed.iter().find(|t| t.digest == current_digest) else {
        return Err(Failure::seatable(format!(
            "the API token in {} is not among the API tokens of base {base} the account sees: check that the account may manage this base's tokens",
            held.secret
        ))
        .into());
    };
    let predecessor = me.app_name.clone();
    let permission = match me.permission.as_str() {
        "r" | "rw" => me.permission.clone(),
        other => {
            return Err(Failure::internal(format!(
                "SeaTable lists '{predecessor}' with permission '{other}', not r or rw: rotate it by hand"
            ))
            .into());
        }
    };
    let family = naming::family(&predecessor).to_string();
    debug!(%predecessor, %family, %permission, version = held.state.version, "rotating");

    // 2. The successor, named after the current second; a name already
    // taken waits for the next one.
    let mut attempts = 0;
    let (successor, new) = loop {
        let name = naming::successor(&family, crate::time::now());
        if listed.iter().any(|t| t.app_name == name) {
            next_second().await;
            continue;
        }
        let answer = ctx
            .account()?
            .create_token(&base, &name, &permission, ctx.deadline())
            .await
            .map_err(|e| match kind_of(&e) {
                Kind::Unavailable => restate(&e, |line| {
                    format!("{line}; if '{name}' was made, `seatable-cred token prune` removes it")
                }),
                _ => e,
            })?;
        match answer {
            Created::Token(token) => break (name, token),
            Created::Exists => {
                attempts += 1;
                if attempts >= NAME_ATTEMPTS {
                    return Err(Failure::unavailable(format!(
                        "base {base} already has tokens named like '{name}': another rotation is running; nothing was changed, try again later"
                    ))
                    .permanent()
                    .into());
                }
                debug!("'{name}' is taken (a concurrent rotation?); trying the next second");
                next_second().await;
            }
        }
    };
    info!("created the successor '{successor}' ({permission}) for base {base}");
    let digest = Digest::of(&new.api_token);
    if let Err(e) = check_opens(
        ctx,
        &new.api_token,
        &successor,
        &base,
        opened.dtable_uuid.as_deref(),
    )
    .await
    {
        return Err(discard(ctx, &base, &successor, digest, e).await);
    }

    // 3. Into Vault, if nobody wrote since the read.
    let version = match ctx.write(&held, &new.api_token).await {
        Ok(Written::Version(v)) => v,
        Ok(Written::Conflict) => {
            let e = Failure::vault(format!(
                "{} was changed while rotating (check-and-set on version {} refused): another rotation got there first; nothing else was changed",
                held.secret, held.state.version
            ))
            .into();
            return Err(discard(ctx, &base, &successor, digest, e).await);
        }
        Err(e) => return Err(discard(ctx, &base, &successor, digest, e).await),
    };
    info!(version, "wrote the successor to {}", held.secret);

    // 4. What Vault holds must work.
    if let Err(e) = ctx
        .open(&new.api_token, &format!("the new token '{successor}'"))
        .await
    {
        let restored = restore(ctx, &held.secret, digest, &current).await;
        debug!("the successor stopped working: {}", one_line(&e));
        let e = restate(&e, |_| {
            format!(
                "the new token '{successor}' stopped working right after it was written to {} (deleted meanwhile by a concurrent prune or revoke?); {restored}",
                held.secret
            )
        });
        return Err(discard(ctx, &base, &successor, digest, e).await);
    }

    // 5. The old token goes.
    let old_base_tokens_until = ctx.cached_expiry(&current).await;
    ctx.drop_cached().await;
    if !grace.is_zero() {
        info!(
            "keeping '{predecessor}' for {} (--grace)",
            crate::time::compact(grace)
        );
        tokio::time::sleep(grace).await;
    }
    let rotated_but = |e: anyhow::Error, what: &str| {
        restate(&e, |line| {
            format!(
                "rotated to '{successor}' ({} version {version}), but {what} failed: {line}; run `seatable-cred token prune` to finish",
                held.secret
            )
        })
    };
    match ctx
        .delete_unless_held(&base, &predecessor, current_digest)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => warn!("{} holds '{predecessor}' again: it was kept", held.secret),
        Err(e) => return Err(rotated_but(e, &format!("deleting '{predecessor}'"))),
    }
    let mut leftovers = Vec::new();
    let listed = match ctx.tokens(&base).await {
        Ok(listed) => listed,
        Err(e) => return Err(rotated_but(e, "looking for leftovers")),
    };
    // Tokens made moments ago, after the successor, may be another
    // rotation's successor, still on its way to Vault: left for a later sweep.
    let held_at = listed
        .iter()
        .find(|t| t.app_name == successor)
        .and_then(|t| t.generated_at.clone());
    let settled: Vec<_> = listed
        .iter()
        .filter(|t| {
            naming::is_member(&t.app_name, &family)
                && t.app_name != successor
                && t.app_name != predecessor
                && !ctx.may_be_in_flight(t.generated_at.as_deref(), held_at.as_deref())
        })
        .collect();
    for t in settled {
        match ctx.delete_unless_held(&base, &t.app_name, t.digest).await {
            Ok(Some(_)) => leftovers.push(t.app_name.clone()),
            Ok(None) => {}
            Err(e) => {
                return Err(rotated_but(
                    e,
                    &format!("deleting the leftover '{}'", t.app_name),
                ));
            }
        }
    }
    Ok(Rotated {
        predecessor,
        successor,
        permission,
        base,
        secret: held.secret,
        field: field.to_string(),
        version,
        leftovers,
        old_base_tokens_until,
    })
}

/// Writes the predecessor back if Vault still holds the successor this
/// run wrote; says what happened.
async fn restore(
    ctx: &mut Ctx<'_>,
    secret: &SecretRef,
    successor: Digest,
    predecessor: &SecretString,
) -> String {
    let field = ctx.profile.field.clone();
    let state = match ctx.reread(secret).await {
        Ok(state) => state,
        Err(e) => {
            return format!(
                "the previous token could not be written back ({}): check {secret} now",
                one_line(&e)
            );
        }
    };
    let held = Held {
        secret: secret.clone(),
        state,
    };
    if !held.holds(&field, successor) {
        return "Vault holds another token since; it was left as it is".to_string();
    }
    match ctx.write(&held, predecessor).await {
        Ok(Written::Version(v)) => {
            format!("the previous token was written back ({secret} version {v})")
        }
        Ok(Written::Conflict) => {
            format!("{secret} changed meanwhile; the previous token was not written back")
        }
        Err(e) => format!(
            "writing the previous token back failed ({}): check {secret} now",
            one_line(&e)
        ),
    }
}

/// Sleeps into the next UTC second (successor names have one-second steps).
async fn next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(5)).await;
}
