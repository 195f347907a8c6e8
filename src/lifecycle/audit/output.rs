//! What `token audit` prints: `-o json` (an array, one object per token —
//! the fields SPEC §12 names, plus `generated_by`), a table for people with
//! a summary, and the lines of `--revoke` — the plan it asks about and what
//! became of each token. Never a token value: rows hold none.

use std::fmt::Write as _;

use serde::Serialize;

use super::rules::{Facts, LastAccess};
use super::{Audit, Finding, Outcome, Plan, Revocation};
use crate::seatable::account::{Digest, unix_seconds};
use crate::seatable::team::TeamToken;

/// One API token of the team, as the audit shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Row {
    pub base_uuid: String,
    pub base_name: String,
    pub app_name: String,
    /// `r` or `rw`.
    pub permission: String,
    /// The creator's name as SeaTable shows it (else `generated_by`).
    pub creator: Option<String>,
    /// The creator's account (`…@auth.local`).
    pub generated_by: Option<String>,
    /// As SeaTable sends it (RFC 3339).
    pub generated_at: Option<String>,
    /// As SeaTable sends it; `null` for a token never used (SeaTable
    /// stamps a new token with the time it was made).
    pub last_access: Option<String>,
    /// The Vault secret holding it (`mount/path`), or `null`.
    pub vault_secret: Option<String>,
    pub findings: Vec<Finding>,
    #[serde(skip)]
    pub(super) digest: Digest,
    #[serde(skip)]
    made: Option<u64>,
    #[serde(skip)]
    used: LastAccess,
    /// One of a rotation still running: never revoked by `--revoke`.
    #[serde(skip)]
    pub in_rotation: bool,
}

impl Row {
    pub(super) fn new(t: TeamToken, vault_secret: Option<String>) -> Row {
        let made = t.generated_at.as_deref().and_then(unix_seconds);
        let used = LastAccess::read(t.last_access.as_deref(), made);
        Row {
            base_uuid: t.dtable_uuid,
            base_name: t.dtable_name,
            app_name: t.app_name,
            permission: t.permission,
            creator: t.creator.or_else(|| t.generated_by.clone()),
            generated_by: t.generated_by,
            generated_at: t.generated_at,
            last_access: t.last_access.filter(|_| used != LastAccess::Never),
            vault_secret,
            findings: Vec::new(),
            digest: t.digest,
            made,
            used,
            in_rotation: false,
        }
    }

    pub(super) fn facts<'a>(&'a self, base: &'a str) -> Facts<'a> {
        Facts {
            base,
            app_name: &self.app_name,
            permission: &self.permission,
            generated_at: self.made,
            last_access: self.used,
            in_vault: self.vault_secret.is_some(),
        }
    }

    /// `'app' of base 'name' (uuid)`, for people.
    pub fn named(&self) -> String {
        format!(
            "'{}' of base '{}' ({})",
            clean(&self.app_name),
            clean(&self.base_name),
            clean(&self.base_uuid)
        )
    }
}

/// Names from SeaTable, safe to put on a terminal: control characters
/// shown escaped, as every string from outside is ([`crate::shown`]).
fn clean(text: &str) -> String {
    crate::shown::text(text).into_owned()
}

fn shown(rows: &[Row], findings_only: bool) -> impl Iterator<Item = &Row> {
    rows.iter()
        .filter(move |r| !findings_only || !r.findings.is_empty())
}

/// `-o json`: one line, an array of the rows.
pub fn render_json(audit: &Audit, findings_only: bool) -> String {
    let rows: Vec<&Row> = shown(&audit.rows, findings_only).collect();
    serde_json::to_string(&rows).unwrap_or_default() + "\n"
}

/// `3d`, `5h`, `12m`: how long ago, in its largest whole unit.
fn ago(now: u64, at: u64) -> String {
    let secs = now.saturating_sub(at);
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s => format!("{}m", s / 60),
    }
}

fn names(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// The table for people, and a summary.
pub fn render_text(audit: &Audit, findings_only: bool) -> String {
    let header = [
        "BASE",
        "BASE UUID",
        "APP NAME",
        "PERMISSION",
        "CREATOR",
        "AGE",
        "LAST ACCESS",
        "VAULT SECRET",
        "FINDINGS",
    ];
    let rows: Vec<[String; 9]> = shown(&audit.rows, findings_only)
        .map(|r| {
            [
                clean(&r.base_name),
                clean(&r.base_uuid),
                clean(&r.app_name),
                clean(&r.permission),
                r.creator.as_deref().map_or("-".into(), clean),
                r.made.map_or("-".into(), |at| ago(audit.now, at)),
                match r.used {
                    LastAccess::Never => "never".into(),
                    LastAccess::At(at) => format!("{} ago", ago(audit.now, at)),
                    LastAccess::Unknown => r.last_access.as_deref().map_or("-".into(), clean),
                },
                r.vault_secret
                    .as_deref()
                    .map_or("not in Vault".into(), clean),
                if r.findings.is_empty() {
                    "-".into()
                } else {
                    names(&r.findings)
                },
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut put = |cells: &[&str]| {
        let mut line = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    put(&header);
    for row in &rows {
        put(&row.each_ref().map(String::as_str));
    }
    out.push_str(&summary(audit, findings_only, rows.len()));
    out
}

fn summary(audit: &Audit, findings_only: bool, shown: usize) -> String {
    let rows = &audit.rows;
    let mut bases: Vec<&str> = rows.iter().map(|r| r.base_uuid.as_str()).collect();
    bases.sort_unstable();
    bases.dedup();
    let kept = rows.iter().filter(|r| r.vault_secret.is_some()).count();
    let mut out = format!(
        "\n{} API token(s) in {} base(s) of team {}; {kept} kept in Vault ({} secret(s) read)\n",
        rows.len(),
        bases.len(),
        audit.org_id,
        audit.secrets
    );
    let mut counts = Vec::new();
    for f in [
        Finding::NotInVault,
        Finding::Unused,
        Finding::NeverUsed,
        Finding::Old,
        Finding::ReadWriteUnused,
        Finding::DuplicateApp,
    ] {
        let n = rows.iter().filter(|r| r.findings.contains(&f)).count();
        if n > 0 {
            counts.push(format!("{} {n}", f.name()));
        }
    }
    if counts.is_empty() {
        out.push_str("findings: none\n");
    } else {
        let _ = writeln!(out, "findings: {}", counts.join(", "));
    }
    if findings_only {
        let _ = writeln!(out, "shown: the {shown} with findings");
    }
    if !audit.problems.is_empty() {
        let _ = writeln!(
            out,
            "Vault was not read completely ({} place(s), see the warnings): a token kept there shows as not-in-vault",
            audit.problems.len()
        );
    }
    out
}

/// What `--revoke` is about to do, for the question.
pub fn render_plan(audit: &Audit, plan: &Plan, findings: &[Finding]) -> String {
    let mut out = format!(
        "revoke {} API token(s) with {}:\n",
        plan.revoke.len(),
        names(findings)
    );
    for &i in &plan.revoke {
        let r = &audit.rows[i];
        let _ = writeln!(out, "  {}: {}", r.named(), names(&r.findings));
    }
    if plan.held > 0 || plan.rotating > 0 {
        let _ = writeln!(
            out,
            "kept: {} that Vault holds, {} of a rotation still running",
            plan.held, plan.rotating
        );
    }
    out
}

/// What became of each token `--revoke` set out to delete.
pub fn render_revocations(audit: &Audit, done: &[Revocation]) -> String {
    let mut out = String::new();
    for d in done {
        let r = &audit.rows[d.row];
        let (what, why) = match &d.outcome {
            Outcome::Revoked => ("revoked", String::new()),
            Outcome::AlreadyGone => ("gone", ": it was already deleted".into()),
            Outcome::NowHeld(path) => ("kept", format!(": {} holds it now", clean(path))),
            Outcome::Failed(reason) => ("failed", format!(": {reason}")),
        };
        let _ = writeln!(out, "{what:<8} {}{why}", r.named());
    }
    if done.iter().any(|d| d.outcome == Outcome::Revoked) {
        out.push_str("note     base tokens obtained with a revoked API token still work until they expire (3 days after issue by default): SeaTable cannot revoke them\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_539_700; // 2025-11-30T21:55:00Z

    fn team_token(json: &str) -> TeamToken {
        serde_json::from_str(json).unwrap()
    }

    fn audit() -> Audit {
        let kept = Row::new(
            team_token(
                r#"{"app_name":"crm-sync","api_token":"t1","generated_by":"4f1d@auth.local","creator":"Alice","generated_at":"2025-11-20T21:55:00+00:00","last_access":"2025-11-30T18:55:00+00:00","permission":"rw","dtable_uuid":"3c899a81-6a0c-4111-bb19-288ebf8442fd","dtable_name":"CRM"}"#,
            ),
            Some("secret/seatable/crm".into()),
        );
        let mut loose = Row::new(
            team_token(
                r#"{"app_name":"import\u001b[31m","api_token":"t2","generated_by":"9a2b@auth.local","generated_at":"2025-06-01T00:00:00+02:00","last_access":"2025-06-01T00:00:00+02:00","permission":"r","dtable_uuid":"e97bb668-da36-484c-8ac9-8aa9e0564f4c","dtable_name":"Finances"}"#,
            ),
            None,
        );
        loose.findings = vec![
            Finding::NotInVault,
            Finding::Unused,
            Finding::NeverUsed,
            Finding::Old,
        ];
        Audit {
            org_id: 4,
            rows: vec![kept, loose],
            secrets: 12,
            problems: Vec::new(),
            now: NOW,
        }
    }

    #[test]
    fn json_has_the_fields_spec_names_and_no_value() {
        let json = render_json(&audit(), false);
        assert_eq!(
            json,
            concat!(
                r#"[{"base_uuid":"3c899a81-6a0c-4111-bb19-288ebf8442fd","base_name":"CRM","app_name":"crm-sync","permission":"rw","creator":"Alice","generated_by":"4f1d@auth.local","generated_at":"2025-11-20T21:55:00+00:00","last_access":"2025-11-30T18:55:00+00:00","vault_secret":"secret/seatable/crm","findings":[]},"#,
                r#"{"base_uuid":"e97bb668-da36-484c-8ac9-8aa9e0564f4c","base_name":"Finances","app_name":"import\u001b[31m","permission":"r","creator":"9a2b@auth.local","generated_by":"9a2b@auth.local","generated_at":"2025-06-01T00:00:00+02:00","last_access":null,"vault_secret":null,"findings":["not-in-vault","unused","never-used","old"]}]"#,
                "\n"
            )
        );
        assert_eq!(
            render_json(&audit(), true),
            format!("[{}", json.split_once("},").unwrap().1)
        );
        let mut none = audit();
        none.rows.clear();
        assert_eq!(render_json(&none, false), "[]\n");
        // docs/tokens.md's example has exactly these fields.
        let readme = include_str!("../../../docs/tokens.md")
            .lines()
            .find(|l| l.starts_with(r#"[{"base_uuid""#))
            .expect("docs/tokens.md's example of token audit -o json");
        let keys = |json: &str| -> Vec<String> {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            v[0].as_object().unwrap().keys().cloned().collect()
        };
        assert_eq!(keys(readme), keys(&json));
    }

    #[test]
    fn the_table_for_people() {
        let text = render_text(&audit(), false);
        assert_eq!(
            text,
            "\
BASE      BASE UUID                             APP NAME        PERMISSION  CREATOR          AGE   LAST ACCESS  VAULT SECRET         FINDINGS
CRM       3c899a81-6a0c-4111-bb19-288ebf8442fd  crm-sync        rw          Alice            10d   3h ago       secret/seatable/crm  -
Finances  e97bb668-da36-484c-8ac9-8aa9e0564f4c  import\\x1b[31m  r           9a2b@auth.local  182d  never        not in Vault         not-in-vault,unused,never-used,old

2 API token(s) in 2 base(s) of team 4; 1 kept in Vault (12 secret(s) read)
findings: not-in-vault 1, unused 1, never-used 1, old 1
"
        );
        let only = render_text(&audit(), true);
        assert!(!only.contains("crm-sync"), "{only}");
        assert!(
            only.ends_with("old 1\nshown: the 1 with findings\n"),
            "{only}"
        );
        let mut partial = audit();
        partial.problems.push("secret/x/: denied".into());
        assert!(render_text(&partial, false).ends_with(
            "Vault was not read completely (1 place(s), see the warnings): a token kept there shows as not-in-vault\n"
        ));
    }

    #[test]
    fn times_ago_in_their_largest_unit() {
        assert_eq!(ago(NOW, NOW), "0m");
        assert_eq!(ago(NOW, NOW - 3_599), "59m");
        assert_eq!(ago(NOW, NOW - 3_600), "1h");
        assert_eq!(ago(NOW, NOW - 86_399), "23h");
        assert_eq!(ago(NOW, NOW - 86_400 * 400), "400d");
        assert_eq!(ago(NOW, NOW + 5), "0m", "a clock behind SeaTable's");
    }

    #[test]
    fn the_plan_and_what_became_of_it() {
        let a = audit();
        let plan = Plan {
            revoke: vec![1],
            held: 1,
            rotating: 0,
        };
        assert_eq!(
            render_plan(&a, &plan, &[Finding::Unused, Finding::NeverUsed]),
            "revoke 1 API token(s) with unused,never-used:\n  'import\\x1b[31m' of base 'Finances' (e97bb668-da36-484c-8ac9-8aa9e0564f4c): not-in-vault,unused,never-used,old\nkept: 1 that Vault holds, 0 of a rotation still running\n"
        );
        let done = [
            Revocation {
                row: 1,
                outcome: Outcome::Revoked,
            },
            Revocation {
                row: 0,
                outcome: Outcome::NowHeld("secret/x".into()),
            },
        ];
        let text = render_revocations(&a, &done);
        assert!(text.starts_with(
            "revoked  'import\\x1b[31m' of base 'Finances' (e97bb668-da36-484c-8ac9-8aa9e0564f4c)\nkept     'crm-sync' of base 'CRM' (3c899a81-6a0c-4111-bb19-288ebf8442fd): secret/x holds it now\nnote     base tokens"
        ), "{text}");
    }
}
