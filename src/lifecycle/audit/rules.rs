//! The findings of `token audit`: rules over what SeaTable lists of a
//! token and whether a Vault secret holds it. Pure — no clock, no network —
//! so that the tests below pin each rule at its edges.
//!
//! * `not-in-vault`: no secret the audit reads holds the token;
//! * `never-used`: SeaTable saw no access since it was made — its
//!   `last_access` is missing, or (as SeaTable stamps a new token) no later
//!   than `generated_at` plus a second;
//! * `unused`: no access for longer than `--unused-after` (counted from
//!   `generated_at` for a token never used);
//! * `old`: made longer than `--token-max-age` ago;
//! * `read-write-unused`: `rw` and `unused`;
//! * `duplicate-app`: the base has another token of the same app family
//!   (`crm`, `crm-20251130215500`, …, see [`naming`]) and this one is not
//!   the family's keeper — the newest one Vault holds, else the newest.
//!   A family of two that is a rotation still running is left alone:
//!   the younger is the successor (`<family>-<UTC stamp>`), exactly one of
//!   the two is in Vault, and either Vault holds the successor and it was
//!   made within [`ROTATION_GRACE`] (the `--grace` before the predecessor
//!   goes), or it was made within `2 × --timeout` (it may be on its way to
//!   Vault, as `token prune` judges). Both tokens of such a pair are kept
//!   from `--revoke`.
//!
//! Times SeaTable sends that cannot be read decide nothing: such a token
//! is neither `old` nor `unused` by them.

use std::collections::HashMap;
use std::time::Duration;

use crate::lifecycle::naming;

/// What `token audit` finds wrong with an API token (SPEC §12); the names
/// are stable: scripts and `--fail-on` use them.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Finding {
    /// No Vault secret the audit reads holds it: its value lives somewhere else.
    NotInVault,
    /// No access for --unused-after.
    Unused,
    /// Never used since it was made.
    NeverUsed,
    /// Older than --token-max-age.
    Old,
    /// Read-write and unused.
    ReadWriteUnused,
    /// The base has another token of the same app family, outside a running rotation.
    DuplicateApp,
}

impl Finding {
    pub fn name(self) -> &'static str {
        match self {
            Finding::NotInVault => "not-in-vault",
            Finding::Unused => "unused",
            Finding::NeverUsed => "never-used",
            Finding::Old => "old",
            Finding::ReadWriteUnused => "read-write-unused",
            Finding::DuplicateApp => "duplicate-app",
        }
    }
}

/// How long after its successor was made a rotation's predecessor may
/// still be there without being a duplicate: rotations keep it for
/// `--grace` (minutes to an hour, typically) so that programs that read
/// the old token just before still work.
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The thresholds, and the time they are measured at.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Unix seconds.
    pub now: u64,
    pub unused_after: Duration,
    pub max_age: Duration,
    /// A successor younger than this may not be in Vault yet (2 × --timeout).
    pub in_flight: Duration,
}

/// What SeaTable's `last_access` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastAccess {
    /// Missing, or no later than the token was made.
    Never,
    At(u64),
    /// Sent, but not a time the audit can read.
    Unknown,
}

impl LastAccess {
    /// Reads `last_access` beside `generated_at` (both Unix seconds when
    /// readable): SeaTable stamps a new token's `last_access` with the time
    /// it was made, so an access no later than a second after that is none.
    pub fn read(text: Option<&str>, generated_at: Option<u64>) -> LastAccess {
        let Some(text) = text else {
            return LastAccess::Never;
        };
        match crate::seatable::account::unix_seconds(text) {
            None => LastAccess::Unknown,
            Some(at) if generated_at.is_some_and(|made| at <= made + 1) => LastAccess::Never,
            Some(at) => LastAccess::At(at),
        }
    }
}

/// What the rules look at, for one token.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The base, in one spelling for all its tokens (hyphenated UUID).
    pub base: &'a str,
    pub app_name: &'a str,
    pub permission: &'a str,
    /// Unix seconds, when readable.
    pub generated_at: Option<u64>,
    pub last_access: LastAccess,
    pub in_vault: bool,
}

/// The rules' verdict on one token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Judged {
    /// In [`Finding`]'s order.
    pub findings: Vec<Finding>,
    /// One of the two tokens of a rotation still running.
    pub in_rotation: bool,
}

/// Judges every token of a team (duplicates need them all at once).
pub fn judge(tokens: &[Facts<'_>], rules: &Rules) -> Vec<Judged> {
    let mut judged: Vec<Judged> = tokens.iter().map(|t| alone(t, rules)).collect();
    let mut families: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, t) in tokens.iter().enumerate() {
        families
            .entry((t.base, naming::family(t.app_name)))
            .or_default()
            .push(i);
    }
    for ((_, family), members) in families {
        if members.len() < 2 {
            continue;
        }
        if let Some(pair) = rotation(tokens, &members, family, rules) {
            for i in pair {
                judged[i].in_rotation = true;
            }
            continue;
        }
        let newest = |candidates: &mut dyn Iterator<Item = usize>| {
            candidates.max_by_key(|&i| (tokens[i].generated_at, tokens[i].app_name))
        };
        let keeper = newest(&mut members.iter().copied().filter(|&i| tokens[i].in_vault))
            .or_else(|| newest(&mut members.iter().copied()));
        for &i in &members {
            if Some(i) != keeper {
                judged[i].findings.push(Finding::DuplicateApp);
            }
        }
    }
    for j in &mut judged {
        j.findings.sort();
    }
    judged
}

/// The findings a token has on its own.
fn alone(t: &Facts<'_>, rules: &Rules) -> Judged {
    let older_than = |at: u64, limit: Duration| rules.now.saturating_sub(at) > limit.as_secs();
    let mut findings = Vec::new();
    if !t.in_vault {
        findings.push(Finding::NotInVault);
    }
    let since = match t.last_access {
        LastAccess::At(at) => Some(at),
        LastAccess::Never => t.generated_at,
        LastAccess::Unknown => None,
    };
    let unused = since.is_some_and(|at| older_than(at, rules.unused_after));
    if unused {
        findings.push(Finding::Unused);
    }
    if t.last_access == LastAccess::Never {
        findings.push(Finding::NeverUsed);
    }
    if t.generated_at
        .is_some_and(|at| older_than(at, rules.max_age))
    {
        findings.push(Finding::Old);
    }
    if unused && t.permission == "rw" {
        findings.push(Finding::ReadWriteUnused);
    }
    Judged {
        findings,
        in_rotation: false,
    }
}

/// The two tokens of a rotation still running, if `members` are that.
fn rotation(
    tokens: &[Facts<'_>],
    members: &[usize],
    family: &str,
    rules: &Rules,
) -> Option<[usize; 2]> {
    let [a, b] = members else {
        return None;
    };
    let (older, younger) = match (tokens[*a].generated_at, tokens[*b].generated_at) {
        (Some(x), Some(y)) if x <= y => (*a, *b),
        (Some(_), Some(_)) => (*b, *a),
        _ => return None,
    };
    let successor = &tokens[younger];
    let made = successor.generated_at?;
    let is_successor =
        successor.app_name != family && naming::is_member(successor.app_name, family);
    if !is_successor || tokens[older].in_vault == successor.in_vault {
        return None;
    }
    let age = Duration::from_secs(rules.now.saturating_sub(made));
    let running = if successor.in_vault {
        age <= ROTATION_GRACE
    } else {
        age <= rules.in_flight
    };
    running.then_some([older, younger])
}

#[cfg(test)]
mod tests {
    use super::*;
    use Finding::*;

    const DAY: u64 = 86_400;
    const NOW: u64 = 1_764_539_700; // 2025-11-30T21:55:00Z

    fn rules() -> Rules {
        Rules {
            now: NOW,
            unused_after: Duration::from_secs(90 * DAY),
            max_age: Duration::from_secs(180 * DAY),
            in_flight: Duration::from_secs(60),
        }
    }

    fn token<'a>(app: &'a str, made_days_ago: u64, used_days_ago: Option<u64>) -> Facts<'a> {
        let made = NOW - made_days_ago * DAY;
        Facts {
            base: "b1",
            app_name: app,
            permission: "r",
            generated_at: Some(made),
            last_access: match used_days_ago {
                Some(d) => LastAccess::At(NOW - d * DAY),
                None => LastAccess::Never,
            },
            in_vault: true,
        }
    }

    fn one(t: Facts<'_>) -> Vec<Finding> {
        judge(&[t], &rules()).remove(0).findings
    }

    #[test]
    fn a_kept_used_young_token_has_no_findings() {
        assert_eq!(one(token("crm", 10, Some(1))), []);
    }

    #[test]
    fn not_in_vault() {
        let mut t = token("crm", 10, Some(1));
        t.in_vault = false;
        assert_eq!(one(t), [NotInVault]);
    }

    #[test]
    fn unused_is_counted_from_the_last_access_and_strictly_past_the_threshold() {
        assert_eq!(one(token("crm", 200, Some(91))), [Unused, Old]);
        assert_eq!(one(token("crm", 100, Some(89))), []);
        let mut edge = token("crm", 100, Some(90));
        assert_eq!(one(edge.clone()), [], "exactly 90 days is not past 90 days");
        edge.last_access = LastAccess::At(NOW - 90 * DAY - 1);
        assert_eq!(one(edge), [Unused]);
    }

    #[test]
    fn never_used_and_unused_since_it_was_made() {
        assert_eq!(one(token("crm", 5, None)), [NeverUsed]);
        assert_eq!(one(token("crm", 91, None)), [Unused, NeverUsed]);
    }

    #[test]
    fn old_is_strictly_past_the_max_age() {
        assert_eq!(one(token("crm", 180, Some(1))), []);
        let mut t = token("crm", 180, Some(1));
        t.generated_at = Some(NOW - 180 * DAY - 1);
        assert_eq!(one(t), [Old]);
    }

    #[test]
    fn read_write_unused_needs_both() {
        let mut rw = token("crm", 100, Some(95));
        rw.permission = "rw";
        assert_eq!(one(rw.clone()), [Unused, ReadWriteUnused]);
        rw.last_access = LastAccess::At(NOW - DAY);
        assert_eq!(one(rw), [], "read-write but used");
        assert_eq!(
            one(token("crm", 100, Some(95))),
            [Unused],
            "unused but read-only"
        );
    }

    #[test]
    fn unreadable_times_decide_nothing() {
        let mut t = token("crm", 400, Some(300));
        t.generated_at = None;
        t.last_access = LastAccess::Unknown;
        assert_eq!(one(t), []);
    }

    #[test]
    fn last_access_as_seatable_stamps_it() {
        let made = 1_764_335_919; // 2025-11-28T13:18:39Z
        let read = |text| LastAccess::read(text, Some(made));
        // The spec's example of a token never used: both times the same.
        assert_eq!(read(Some("2025-11-28T14:18:39+01:00")), LastAccess::Never);
        assert_eq!(read(Some("2025-11-28T14:18:40+01:00")), LastAccess::Never);
        assert_eq!(
            read(Some("2025-11-28T14:18:41+01:00")),
            LastAccess::At(made + 2)
        );
        assert_eq!(read(None), LastAccess::Never);
        assert_eq!(read(Some("yesterday")), LastAccess::Unknown);
        assert_eq!(
            LastAccess::read(Some("2025-11-28T13:18:39Z"), None),
            LastAccess::At(made)
        );
    }

    fn judged(tokens: &[Facts<'_>]) -> Vec<(Vec<Finding>, bool)> {
        judge(tokens, &rules())
            .into_iter()
            .map(|j| (j.findings, j.in_rotation))
            .collect()
    }

    #[test]
    fn duplicates_mark_all_but_the_newest_token_vault_holds() {
        let mut old_copy = token("crm", 30, Some(1));
        old_copy.in_vault = false;
        let held = token("crm-20251101000000", 29, Some(1));
        let mut newer_loose = token("crm-20251120000000", 10, Some(1));
        newer_loose.in_vault = false;
        let other_app = token("crm-sync", 10, Some(1));
        let mut other_base = token("crm", 10, Some(1));
        other_base.base = "b2";
        assert_eq!(
            judged(&[old_copy, held, newer_loose, other_app, other_base]),
            [
                (vec![NotInVault, DuplicateApp], false),
                (vec![], false),
                (vec![NotInVault, DuplicateApp], false),
                (vec![], false),
                (vec![], false),
            ]
        );
    }

    #[test]
    fn duplicates_without_vault_keep_the_newest() {
        let mut a = token("etl", 30, Some(1));
        let mut b = token("etl-20251120000000", 10, Some(1));
        a.in_vault = false;
        b.in_vault = false;
        assert_eq!(
            judged(&[a, b]),
            [
                (vec![NotInVault, DuplicateApp], false),
                (vec![NotInVault], false)
            ]
        );
    }

    #[test]
    fn two_tokens_both_in_vault_are_duplicates_not_a_rotation() {
        let a = token("etl", 30, Some(1));
        let mut b = token("etl-20251130215400", 0, Some(0));
        b.generated_at = Some(NOW - 10);
        assert_eq!(
            judged(&[a, b]),
            [(vec![DuplicateApp], false), (vec![], false)]
        );
    }

    #[test]
    fn a_rotation_in_its_grace_period_is_no_duplicate() {
        // The successor is in Vault; the predecessor waits out --grace.
        let mut predecessor = token("crm", 100, Some(0));
        predecessor.in_vault = false;
        let mut successor = token("crm-20251130205500", 0, None);
        successor.generated_at = Some(NOW - 3600);
        assert_eq!(
            judged(&[predecessor.clone(), successor.clone()]),
            [(vec![NotInVault], true), (vec![NeverUsed], true)]
        );
        // A day later it is a leftover.
        successor.generated_at = Some(NOW - ROTATION_GRACE.as_secs() - 1);
        assert_eq!(
            judged(&[predecessor, successor]),
            [
                (vec![NotInVault, DuplicateApp], false),
                (vec![NeverUsed], false)
            ]
        );
    }

    #[test]
    fn a_successor_on_its_way_to_vault_is_no_duplicate_for_two_timeouts() {
        let predecessor = token("crm", 100, Some(0));
        let mut successor = token("crm-20251130215430", 0, None);
        successor.in_vault = false;
        successor.generated_at = Some(NOW - 30);
        assert_eq!(
            judged(&[predecessor.clone(), successor.clone()]),
            [(vec![], true), (vec![NotInVault, NeverUsed], true)]
        );
        successor.generated_at = Some(NOW - 61);
        assert_eq!(
            judged(&[predecessor, successor]),
            [
                (vec![], false),
                (vec![NotInVault, NeverUsed, DuplicateApp], false)
            ]
        );
    }

    #[test]
    fn only_a_successor_name_makes_a_rotation() {
        // `crm-2` is not `crm-<UTC stamp>`: another application.
        let predecessor = token("crm", 100, Some(0));
        let mut other = token("crm-2", 0, None);
        other.in_vault = false;
        other.generated_at = Some(NOW - 10);
        assert_eq!(
            judged(&[predecessor.clone(), other]),
            [(vec![], false), (vec![NotInVault, NeverUsed], false)]
        );
        // Three of a family are never a rotation.
        let mut successor = token("crm-20251130215450", 0, None);
        successor.in_vault = false;
        successor.generated_at = Some(NOW - 10);
        let mut third = token("crm-20250101000000", 300, Some(200));
        third.in_vault = false;
        assert_eq!(
            judged(&[predecessor, successor, third]),
            [
                (vec![], false),
                (vec![NotInVault, NeverUsed, DuplicateApp], false),
                (vec![NotInVault, Unused, Old, DuplicateApp], false),
            ]
        );
    }
}
