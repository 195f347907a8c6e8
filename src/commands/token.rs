//! `token create|list|rotate|revoke|prune|audit`: the API-token life cycle
//! (SPEC §12). The work is done in [`crate::lifecycle`]; this prints what it
//! reports — app names, permissions, bases, Vault paths and versions, never
//! a token.

use std::fmt::Write as _;

use anyhow::Result;
use tracing::warn;

use crate::cli::{StatusFormat, TokenAction, TokenArgs, TokenAuditArgs, TokenRevokeArgs};
use crate::config::{self, GlobalArgs, ProcessEnv};
use crate::error::Failure;
use crate::lifecycle::audit::{self, AuditRequest, Finding, Outcome, Sources, TeamRevoked};
use crate::lifecycle::{self, CreateRequest, Created, Listing, Pruned, Revoked, Rotated};
use crate::process::say;
use crate::seatable::account::Deleted;
use crate::shown::Shown;

/// A table cell from SeaTable, shown escaped.
fn shown(text: &str) -> String {
    crate::shown::text(text).into_owned()
}

pub fn run(global: &GlobalArgs, args: &TokenArgs) -> Result<u8> {
    // A team admin's commands read no API token of their own.
    match &args.action {
        TokenAction::Audit(a) => return run_audit(global, a),
        TokenAction::Revoke(a) if a.base.is_some() => return revoke_in_team(global, a),
        _ => {}
    }
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
        TokenAction::Audit(_) => unreachable!("token audit is run above"),
    };
    crate::process::print(&text)?;
    Ok(0)
}

/// `token audit`: the report on stdout; with `--revoke`, the plan, the
/// question and what became of each token on stderr (stdout stays the
/// report, `-o json` included). Exit 1 when `--fail-on` finds something.
fn run_audit(global: &GlobalArgs, a: &TokenAuditArgs) -> Result<u8> {
    let (profile, secret) = config::resolve_settings(global, &ProcessEnv)?;
    let account = config::resolve_account(global, &ProcessEnv)?;
    let sources = Sources::new(
        global,
        &ProcessEnv,
        &profile,
        secret.as_ref(),
        &a.vault_prefix,
    );
    let request = AuditRequest {
        sources: &sources,
        unused_after: a.unused_after,
        max_age: account.token_max_age,
    };
    lifecycle::run(&profile, &account, async |ctx| {
        let report = audit::audit(ctx, &request).await?;
        crate::process::print(&match a.format {
            StatusFormat::Json => audit::render_json(&report, a.findings_only),
            StatusFormat::Text => audit::render_text(&report, a.findings_only),
        })?;
        if !a.revoke.is_empty() {
            let plan = audit::plan(&report, &a.revoke)?;
            let wanted = names(&a.revoke);
            if plan.revoke.is_empty() {
                say(&format!(
                    "nothing to revoke: no token with {wanted} that Vault does not hold ({} kept: Vault holds them; {} of a rotation still running)\n",
                    plan.held, plan.rotating
                ));
            } else if confirm(
                &audit::render_plan(&report, &plan, &a.revoke),
                plan.revoke.len(),
                a.yes,
            )? {
                let done = audit::revoke_planned(ctx, &report, &plan, &sources).await?;
                say(&audit::render_revocations(&report, &done));
                let failed = done
                    .iter()
                    .filter(|d| matches!(d.outcome, Outcome::Failed(_)))
                    .count();
                if failed > 0 {
                    return Err(Failure::unavailable(format!(
                        "{failed} of {} API token(s) could not be revoked (see the lines above): run the audit again later",
                        done.len()
                    ))
                    .into());
                }
            } else {
                say("nothing was revoked\n");
            }
        }
        Ok(u8::from(report.has_any(&a.fail_on)))
    })
}

fn names(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// Asks on the terminal whether to go ahead (`--yes`: shows the plan on
/// stderr and goes ahead). Without a terminal to ask on, nothing is
/// deleted: exit 2, after the plan.
fn confirm(plan: &str, n: usize, yes: bool) -> Result<bool> {
    if yes {
        say(plan);
        return Ok(true);
    }
    let Some(mut terminal) = crate::init::terminal::Terminal::open() else {
        say(plan);
        return Err(Failure::usage(format!(
            "nothing was revoked: --revoke asks before it deletes and there is no terminal to ask on; pass --yes to revoke these {n} API token(s)"
        ))
        .into());
    };
    for line in plan.lines() {
        terminal.say(line);
    }
    let asked = terminal.line(&format!(
        "Revoke these {n} API token(s) in SeaTable? [y/N] "
    ));
    Ok(matches!(
        asked,
        Ok(crate::init::terminal::Typed::Text(answer)) if matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes")
    ))
}

/// `token revoke --base UUID --app NAME`: through the team-admin API.
fn revoke_in_team(global: &GlobalArgs, a: &TokenRevokeArgs) -> Result<u8> {
    let base = a.base.as_deref().unwrap_or_default();
    let (profile, secret) = config::resolve_settings(global, &ProcessEnv)?;
    let account = config::resolve_account(global, &ProcessEnv)?;
    let sources = Sources::new(
        global,
        &ProcessEnv,
        &profile,
        secret.as_ref(),
        &a.vault_prefix,
    );
    let revoked = lifecycle::run(&profile, &account, async |ctx| {
        audit::revoke_in_team(ctx, &sources, base, &a.app, a.force).await
    })?;
    if let Some(path) = &revoked.held_by {
        warn!(
            "{path} holds a revoked token now: mint a new one with `seatable-cred token create --force --app NAME` for the profile that reads it"
        );
    }
    crate::process::print(&team_revoked(&revoked))?;
    Ok(0)
}

fn team_revoked(r: &TeamRevoked) -> String {
    let mut out = String::new();
    let what = match r.deleted {
        Deleted::Deleted => "deleted",
        Deleted::Missing => "was already gone",
    };
    line(
        &mut out,
        "revoked",
        format!("API token '{}' of base {} {what}", r.app_name, r.base_uuid),
    );
    if r.deleted == Deleted::Deleted {
        still_valid(&mut out, &r.app_name, None);
    }
    out
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
    still_valid(&mut out, &r.predecessor, r.old_base_tokens_until);
    out
}

/// Until when base tokens of a deleted API token may still work: SeaTable
/// cannot revoke them (JWTs without an id); they live until their `exp`.
fn still_valid(out: &mut String, app: &str, until: Option<u64>) {
    let text = match until {
        Some(at) => format!(
            "base tokens of '{}' may still work until {} (the latest expiry this cache has seen; SeaTable cannot revoke them, and its cached copies were dropped)",
            app,
            crate::time::rfc3339(at)
        ),
        None => format!(
            "base tokens of '{}' that others obtained still work until they expire (3 days after issue by default); this cache held none",
            app
        ),
    };
    line(out, "note", text);
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
    if r.deleted == Deleted::Deleted {
        still_valid(&mut out, &r.app_name, r.old_base_tokens_until);
    }
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
