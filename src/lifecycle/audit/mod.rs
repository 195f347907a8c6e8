//! `token audit`: a team admin's view of every API token of the team
//! (SPEC §12, "Team admins") — where Vault keeps each, and what is wrong
//! with it — and the clean-up: `--revoke` by finding, and `token revoke
//! --base` for any base of the team.
//!
//! ```text
//! mod.rs      the audit: the team's tokens and Vault's secrets, read side by side
//! holders.rs  which Vault secrets hold which tokens, by digest
//! rules.rs    the findings (pure, pinned by tests)
//! output.rs   the JSON and the table; the revocation plan and its outcome
//! revoke.rs   deleting by finding, and one token of any base (`--base`)
//! ```
//!
//! Token values arrive in SeaTable's lists and in Vault's secrets; both are
//! reduced to SHA-256 digests while they are read and dropped. Nothing here
//! sees a value: a row is matched to a secret by digest.

mod holders;
mod output;
mod revoke;
mod rules;

use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Ctx;
use crate::seatable::team::{TeamAdmin, hyphenated};

pub use holders::Sources;
pub use output::{Row, render_json, render_plan, render_revocations, render_text};
pub use revoke::{Outcome, Plan, Revocation, TeamRevoked, plan, revoke_in_team, revoke_planned};
pub use rules::{Finding, LastAccess, Rules};

/// What the audit compares against.
pub struct AuditRequest<'a> {
    pub sources: &'a Sources,
    pub unused_after: Duration,
    /// `--token-max-age`: older tokens are `old`.
    pub max_age: Duration,
}

/// Every API token of the team, judged.
pub struct Audit {
    pub org_id: i64,
    /// One per token, by base name, base and app name.
    pub rows: Vec<Row>,
    /// Vault secrets read.
    pub secrets: usize,
    /// What of Vault could not be read (see [`holders::Holders::problems`]).
    pub problems: Vec<String>,
    /// When it was judged, Unix seconds.
    pub now: u64,
}

impl Audit {
    /// Whether any token has one of `findings`.
    pub fn has_any(&self, findings: &[Finding]) -> bool {
        self.rows
            .iter()
            .any(|r| r.findings.iter().any(|f| findings.contains(f)))
    }
}

impl Ctx<'_> {
    /// The team-admin API as this account, if it is a team admin.
    async fn team(&self) -> Result<TeamAdmin<'_>> {
        TeamAdmin::connect(
            &self.http,
            &self.profile.server_url,
            &self.account_token,
            self.deadline(),
        )
        .await
    }

    /// What Vault holds now.
    async fn holders(&self, sources: &Sources) -> holders::Holders {
        holders::read(
            &self.session.client,
            &self.profile.vault,
            sources,
            self.profile.timeout,
        )
        .await
    }
}

pub async fn audit(ctx: &mut Ctx<'_>, request: &AuditRequest<'_>) -> Result<Audit> {
    let started = Instant::now();
    let team = ctx.team().await?;
    // SeaTable's pages and Vault's secrets are read side by side.
    let (listed, held) = tokio::join!(
        team.api_tokens(ctx.profile.timeout),
        ctx.holders(request.sources)
    );
    let listed = listed?;
    const SHOWN: usize = 10;
    for problem in held.problems.iter().take(SHOWN) {
        warn!("not read from Vault: {problem}; a token kept there shows as not-in-vault");
    }
    if held.problems.len() > SHOWN {
        warn!(
            "not read from Vault: {} more places (`-o json` still lists every token)",
            held.problems.len() - SHOWN
        );
    }
    let now = crate::time::now();
    let rules = Rules {
        now,
        unused_after: request.unused_after,
        max_age: request.max_age,
        in_flight: ctx.profile.timeout.saturating_mul(2),
    };
    let mut rows: Vec<Row> = listed
        .tokens
        .into_iter()
        .map(|t| {
            let holder = held.holder(&t.digest).map(str::to_string);
            Row::new(t, holder)
        })
        .collect();
    let bases: Vec<String> = rows
        .iter()
        .map(|r| hyphenated(&r.base_uuid).unwrap_or_else(|| r.base_uuid.clone()))
        .collect();
    let facts: Vec<rules::Facts<'_>> = rows
        .iter()
        .zip(&bases)
        .map(|(r, base)| r.facts(base))
        .collect();
    let judged = rules::judge(&facts, &rules);
    drop(facts);
    for (row, j) in rows.iter_mut().zip(judged) {
        row.findings = j.findings;
        row.in_rotation = j.in_rotation;
    }
    rows.sort_by(|a, b| {
        (&a.base_name, &a.base_uuid, &a.app_name).cmp(&(&b.base_name, &b.base_uuid, &b.app_name))
    });
    info!(
        tokens = rows.len(),
        pages = listed.pages,
        secrets = held.secrets,
        millis = started.elapsed().as_millis() as u64,
        "audited the team's API tokens"
    );
    Ok(Audit {
        org_id: team.org_id,
        rows,
        secrets: held.secrets,
        problems: held.problems,
        now,
    })
}
