//! `token create|list|rotate|revoke|prune`: the API-token life cycle
//! (SPEC §12). The work is done in [`crate::lifecycle`]; this prints what it
//! reports — app names, permissions, bases, Vault paths and versions, never
//! a token.

use std::fmt::Write as _;

use anyhow::Result;
use tracing::warn;

use crate::cli::{GlobalArgs, StatusFormat, TokenAction, TokenArgs};
use crate::config::{self, ProcessEnv};
use crate::lifecycle::{self, CreateRequest, Created, Listing, Pruned, Revoked, Rotated};
use crate::seatable::account::Deleted;
use crate::shown::Shown;

/// A table cell from SeaTable, shown escaped.
fn shown(text: &str) -> String {
    crate::shown::text(text).into_owned()
}

pub fn run(global: &GlobalArgs, args: &TokenArgs) -> Result<u8> {
    let profile = config::resolve(global, &ProcessEnv)?;
    let account = config::resolve_account(global, &ProcessEnv)?;
    let text = match &args.action {
        TokenAction::Create(a) => {
            let request = CreateRequest {
                app: &a.app,
                permission: a.permission.name(),
                base: a.base.as_deref(),
                workspace: a.workspace,
                force: a.force,
            };
            created(&lifecycle::run(&profile, &account, async |ctx| {
                lifecycle::create(ctx, request).await
            })?)
        }
        TokenAction::List(a) => {
            let listing =
                lifecycle::run(&profile, &account, async |ctx| lifecycle::list(ctx).await)?;
            match a.format {
                StatusFormat::Json => serde_json::to_string(&listing).unwrap_or_default() + "\n",
                StatusFormat::Text => listed(&listing),
            }
        }
        TokenAction::Rotate(a) => rotated(&lifecycle::run(&profile, &account, async |ctx| {
            lifecycle::rotate(ctx, a.grace).await
        })?),
        TokenAction::Revoke(a) => {
            let revoked = lifecycle::run(&profile, &account, async |ctx| {
                lifecycle::revoke(ctx, &a.app, a.force).await
            })?;
            if revoked.was_in_vault {
                warn!(
                    "{} holds a revoked token now: mint a new one with `seatable-cred token create --force --app NAME`",
                    profile.secret
                );
            }
            self::revoked(&revoked)
        }
        TokenAction::Prune => pruned(&lifecycle::run(&profile, &account, async |ctx| {
            lifecycle::prune(ctx).await
        })?),
    };
    super::print(&text)?;
    Ok(0)
}

/// One line of a report. Names, permissions and bases come from SeaTable:
/// shown escaped.
fn line(out: &mut String, key: &str, value: impl AsRef<str>) {
    let _ = writeln!(out, "{key:<9} {}", Shown(value.as_ref()));
}

fn created(c: &Created) -> String {
    let mut out = String::new();
    line(
        &mut out,
        "created",
        format!(
            "API token '{}' ({}) for base {}",
            c.app_name, c.permission, c.base
        ),
    );
    line(
        &mut out,
        "stored",
        format!("{} field {}, version {}", c.secret, c.field, c.version),
    );
    match (&c.previous, c.replaced) {
        (Some(app), _) => line(
            &mut out,
            "note",
            format!(
                "the token the secret held before ('{0}') still works: revoke it with `seatable-cred token revoke --app {0}`",
                app
            ),
        ),
        (None, true) => line(
            &mut out,
            "note",
            "the token the secret held before still works until it is revoked",
        ),
        (None, false) => {}
    }
    out
}

fn rotated(r: &Rotated) -> String {
    let mut out = String::new();
    line(
        &mut out,
        "rotated",
        format!(
            "'{}' -> '{}' ({}) on base {}",
            r.predecessor, r.successor, r.permission, r.base
        ),
    );
    line(
        &mut out,
        "stored",
        format!("{} field {}, version {}", r.secret, r.field, r.version),
    );
    line(&mut out, "deleted", &r.predecessor);
    for leftover in &r.leftovers {
        line(
            &mut out,
            "deleted",
            format!("{} (left by an interrupted rotation)", leftover),
        );
    }
    out
}

fn revoked(r: &Revoked) -> String {
    let mut out = String::new();
    let what = match r.deleted {
        Deleted::Deleted => "deleted",
        Deleted::Missing => "was already gone",
    };
    line(
        &mut out,
        "revoked",
        format!("API token '{}' of base {} {what}", r.app_name, r.base),
    );
    out
}

fn pruned(p: &Pruned) -> String {
    let mut out = String::new();
    line(
        &mut out,
        "kept",
        format!("'{}' (the token Vault holds) of base {}", p.kept, p.base),
    );
    if p.deleted.is_empty() && p.in_flight.is_empty() {
        line(
            &mut out,
            "deleted",
            format!("nothing: family '{}' has no other tokens", p.family),
        );
    }
    for app in &p.deleted {
        line(&mut out, "deleted", app);
    }
    for app in &p.in_flight {
        line(
            &mut out,
            "kept",
            format!(
                "'{}' for now: made moments ago, maybe by a rotation still running; prune again later",
                app
            ),
        );
    }
    out
}

fn listed(l: &Listing) -> String {
    let header = [
        "APP NAME",
        "PERMISSION",
        "GENERATED BY",
        "GENERATED AT",
        "LAST ACCESS",
        "IN VAULT",
    ];
    let rows: Vec<[String; 6]> = l
        .api_tokens
        .iter()
        .map(|t| {
            let opt = |v: &Option<String>| v.as_deref().map_or("-".to_string(), shown);
            [
                shown(&t.app_name),
                shown(&t.permission),
                opt(&t.generated_by),
                opt(&t.generated_at),
                opt(&t.last_access),
                if t.in_vault { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "base {}: {} API token(s)\n",
        Shown(&l.base.to_string()),
        rows.len()
    );
    let mut put = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    put(&header);
    for row in &rows {
        put(&row.each_ref().map(String::as_str));
    }
    out
}
