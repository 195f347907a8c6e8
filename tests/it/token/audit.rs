//! `token audit` and `token revoke --base` as a team admin (SPEC §12, "Team
//! admins"), against the stand-in's team-admin API and the real OpenBao:
//! each finding for exactly the tokens that have it, Vault-held tokens
//! matched across two profiles and prefixes on KV v1 and v2, `--fail-on`,
//! `--revoke` by finding (never a token Vault holds), a non-admin's error,
//! paging, a 429 ridden out. [`TokenCase::run`] checks every run for token
//! values on stdout and stderr.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use seatable_standin::{Base, TeamBudget, iso, random_hex};
use serde_json::{Value, json};

use super::{PASSWORD, TokenCase, exchange_status};
use crate::support::pty::Pty;
use crate::support::{now, shared};

/// What the auditing identity may do in Vault: read (and list) the API
/// tokens' secrets on both mounts.
const AUDITOR_POLICY: &str = "seatable-token-auditor";
const AUDITOR_HCL: &str = r#"
path "secret/data/it/*" { capabilities = ["read"] }
path "secret/metadata/it/*" { capabilities = ["read", "list"] }
path "kv1/*" { capabilities = ["read", "list"] }
"#;

const ORG: i64 = 7;
const DAY: u64 = 86_400;

fn auditor_policy() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        shared().bao.api(
            "PUT",
            &format!("sys/policies/acl/{AUDITOR_POLICY}"),
            Some(json!({ "policy": AUDITOR_HCL })),
        );
    });
}

/// A team in the stand-in, its admin's account token in Vault, a config
/// file with two profiles (`crm` on KV v2, `sales` on KV v1), and the
/// paths of this team's secrets (`secret/it/audit-<id>/…`, `kv1/audit-<id>/…`).
pub(super) struct Team {
    pub t: TokenCase,
    pub id: String,
    /// (uuid, name, workspace) of the team's bases.
    pub bases: Vec<(String, String, i64)>,
}

impl Team {
    fn new() -> Team {
        let mut t = TokenCase::new();
        auditor_policy();
        let vault_token = shared().bao.token(&[AUDITOR_POLICY], "1h");
        t.case.secrets.push(vault_token.clone());
        t.set("VAULT_TOKEN", vault_token);
        let id = random_hex(6);
        let admin = t
            .case
            .standin
            .add_team_account("admin@team.local", PASSWORD, ORG, true);
        t.case.secrets.push(admin.clone());
        shared().bao.kv2_put(
            "secret",
            &format!("it/audit-{id}/admin"),
            json!({ "account_token": admin }),
        );
        t.set(
            "SEATABLE_CRED_ACCOUNT_SECRET",
            format!("secret/it/audit-{id}/admin"),
        );
        let config = t.case.dir.path().join("config").join("seatable-cred");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("config.toml"),
            format!(
                "[profiles.crm]\nserver_url = \"{url}\"\nsecret = \"secret/it/audit-{id}/crm\"\n\n[profiles.sales]\nserver_url = \"{url}\"\nsecret = \"kv1/audit-{id}/sales\"\nfield = \"token\"\n",
                url = t.case.standin.url
            ),
        )
        .unwrap();
        let bases = ["CRM", "Sales", "Ops"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let uuid = Base::default().dtable_uuid;
                (uuid, name.to_string(), 100 + (i as i64 % 2))
            })
            .collect();
        Team { t, id, bases }
    }

    /// A token of base `base` made `made` days ago, last used `used` days
    /// ago (never: `None`). Returns its value.
    fn token(
        &self,
        base: usize,
        app: &str,
        permission: &str,
        made: u64,
        used: Option<u64>,
    ) -> String {
        self.token_at(
            base,
            app,
            permission,
            now() - made * DAY,
            used.map(|u| now() - u * DAY),
        )
    }

    fn token_at(
        &self,
        base: usize,
        app: &str,
        permission: &str,
        made: u64,
        used: Option<u64>,
    ) -> String {
        let (uuid, name, workspace) = &self.bases[base];
        let users = ["alice@team.local", "bob@team.local"];
        self.t
            .case
            .standin
            .add_base(Base {
                api_token: random_hex(20),
                dtable_uuid: uuid.clone(),
                dtable_name: name.clone(),
                workspace_id: *workspace,
                app_name: app.to_string(),
                permission: permission.to_string(),
                generated_by: users[app.len() % 2].to_string(),
                generated_at: Some(made),
                last_access: used,
                org_id: ORG,
                ..Base::default()
            })
            .api_token
    }

    fn kv2(&self, path: &str, data: Value) {
        shared()
            .bao
            .kv2_put("secret", &format!("it/audit-{}/{path}", self.id), data);
    }

    fn kv1(&self, path: &str, data: Value) {
        shared()
            .bao
            .kv1_put("kv1", &format!("audit-{}/{path}", self.id), data);
    }

    pub fn pool(&self) -> String {
        format!("--vault-prefix=secret/it/audit-{}/pool", self.id)
    }

    pub fn scripts(&self) -> String {
        format!("--vault-prefix=kv1/audit-{}/scripts", self.id)
    }

    fn audit(&self, extra: &[&str]) -> crate::support::Out {
        let (pool, scripts) = (self.pool(), self.scripts());
        let mut args = vec!["token", "audit", "-o", "json", &pool, &scripts];
        args.extend(extra);
        self.t.run(&args)
    }

    /// The rows, by `base/app`.
    fn rows(&self, extra: &[&str]) -> Vec<Value> {
        let out = self.audit(extra).ok();
        out.json().as_array().unwrap().clone()
    }

    /// The apps (`base/app`) of the team still in the stand-in.
    fn remaining(&self) -> BTreeSet<String> {
        self.bases
            .iter()
            .flat_map(|(uuid, name, _)| {
                self.t
                    .case
                    .standin
                    .api_tokens(uuid)
                    .into_iter()
                    .map(move |b| format!("{name}/{}", b.app_name))
            })
            .collect()
    }
}

fn with(rows: &[Value], finding: &str) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| {
            r["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == finding)
        })
        .map(|r| {
            format!(
                "{}/{}",
                r["base_name"].as_str().unwrap(),
                r["app_name"].as_str().unwrap()
            )
        })
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The successor name a rotation `at` that time gives `family`.
fn successor(family: &str, at: u64) -> String {
    let stamp: String = iso(at)
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    format!("{family}-{stamp}")
}

/// The team every finding test audits: each token has the findings its
/// name says, and is kept where the comment says.
pub(super) struct Fixture {
    pub team: Team,
    /// `base/app` → value, for the exchange checks.
    values: Vec<(String, String)>,
    rotation_successor: String,
}

pub(super) fn fixture() -> Fixture {
    let team = Team::new();
    let mut values = Vec::new();
    let mut add = |base: usize, app: &str, perm: &str, made: u64, used: Option<u64>| {
        let v = team.token(base, app, perm, made, used);
        values.push((format!("{}/{app}", team.bases[base].1), v.clone()));
        v
    };
    // CRM
    let crm_sync = add(0, "crm-sync", "rw", 10, Some(1)); // profile crm (KV v2): nothing
    add(0, "loose-reader", "r", 10, Some(1)); // nowhere: not-in-vault
    let stale = add(0, "stale", "r", 100, Some(95)); // prefix v2: unused
    let fresh = add(0, "fresh-unused", "r", 5, None); // profile sales (KV v1): never-used
    // Sales
    let ancient = add(1, "ancient", "r", 400, Some(1)); // prefix v1, nested: old
    let rw_idle = add(1, "rw-idle", "rw", 200, Some(120)); // prefix v2, nested: unused, read-write-unused
    let r_idle = add(1, "r-idle", "r", 200, Some(120)); // prefix v2: unused
    let same_name = add(1, "crm-sync", "r", 10, Some(1)); // prefix v2: nothing (another base)
    // Ops: a family twice (duplicate), and a rotation in its grace period.
    let etl = add(2, "etl", "r", 30, Some(1)); // prefix v2: kept, the family's keeper
    add(2, "etl-20250101000000", "r", 20, Some(1)); // nowhere: not-in-vault, duplicate-app
    add(2, "report", "r", 100, Some(1)); // nowhere: not-in-vault (its rotation's predecessor)
    let made = now() - 3600;
    let rotation_successor = successor("report", made);
    let report = team.token_at(2, &rotation_successor, "r", made, None); // prefix v2: never-used
    values.push((format!("Ops/{rotation_successor}"), report.clone()));

    team.kv2("crm", json!({ "api_token": crm_sync }));
    team.kv1(
        "sales",
        json!({ "token": fresh, "note": "kept by the sales profile" }),
    );
    team.kv2("pool/stale", json!({ "api_token": stale }));
    team.kv2("pool/deep/er/rw-idle", json!({ "value": rw_idle }));
    team.kv2(
        "pool/r-idle",
        json!({ "api_token": r_idle, "owner": "ops" }),
    );
    team.kv2("pool/sales-crm", json!({ "api_token": same_name }));
    team.kv2("pool/etl", json!({ "api_token": etl }));
    team.kv2("pool/report", json!({ "api_token": report }));
    team.kv2(
        "pool/unrelated",
        json!({ "password": "not-a-token-at-all" }),
    );
    team.kv1("scripts/nightly/ancient", json!({ "token": ancient }));
    let mut fixture = Fixture {
        team,
        values,
        rotation_successor,
    };
    // Only `ancient` is older than this; 90d (the default) would make
    // every token over 90 days old `old` too.
    fixture.team.t.set("SEATABLE_CRED_TOKEN_MAX_AGE", "365d");
    fixture
}

#[test]
fn finding_not_in_vault() {
    let f = fixture();
    let rows = f.team.rows(&[]);
    assert_eq!(rows.len(), 12, "{rows:#?}");
    assert_eq!(
        with(&rows, "not-in-vault"),
        set(&["CRM/loose-reader", "Ops/etl-20250101000000", "Ops/report"])
    );
}

#[test]
fn finding_unused() {
    let f = fixture();
    let rows = f.team.rows(&[]);
    assert_eq!(
        with(&rows, "unused"),
        set(&["CRM/stale", "Sales/rw-idle", "Sales/r-idle"])
    );
    // The threshold is --unused-after: at 100 days only the 120-day-idle ones.
    let rows = f.team.rows(&["--unused-after", "100d"]);
    assert_eq!(
        with(&rows, "unused"),
        set(&["Sales/rw-idle", "Sales/r-idle"])
    );
}

#[test]
fn finding_never_used() {
    let f = fixture();
    let rows = f.team.rows(&[]);
    let successor = format!("Ops/{}", f.rotation_successor);
    assert_eq!(
        with(&rows, "never-used"),
        set(&["CRM/fresh-unused", &successor])
    );
    let fresh = rows
        .iter()
        .find(|r| r["app_name"] == "fresh-unused")
        .unwrap();
    assert_eq!(
        fresh["last_access"],
        Value::Null,
        "never used: no last access"
    );
}

#[test]
fn finding_old() {
    let f = fixture();
    let rows = f.team.rows(&[]);
    assert_eq!(with(&rows, "old"), set(&["Sales/ancient"]));
    // The threshold is --token-max-age (the same setting doctor warns by).
    let rows = f.team.rows(&["--token-max-age", "150d"]);
    assert_eq!(
        with(&rows, "old"),
        set(&["Sales/ancient", "Sales/rw-idle", "Sales/r-idle"])
    );
}

#[test]
fn finding_read_write_unused() {
    let f = fixture();
    let rows = f.team.rows(&[]);
    assert_eq!(with(&rows, "read-write-unused"), set(&["Sales/rw-idle"]));
}

#[test]
fn finding_duplicate_app_outside_a_running_rotation() {
    let f = fixture();
    let rows = f.team.rows(&[]);
    // etl's family twice: the one Vault does not hold is the duplicate;
    // report's two are a rotation in its grace period; crm-sync is on
    // two bases, which is no duplicate.
    assert_eq!(
        with(&rows, "duplicate-app"),
        set(&["Ops/etl-20250101000000"])
    );
}

#[test]
fn vault_held_tokens_are_matched_across_two_profiles_and_prefixes_on_kv1_and_kv2() {
    let f = fixture();
    let id = &f.team.id;
    let rows = f.team.rows(&[]);
    let kept: BTreeSet<(String, String)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                format!("{}/{}", r["base_name"].as_str()?, r["app_name"].as_str()?),
                r["vault_secret"].as_str()?.to_string(),
            ))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("CRM/crm-sync", format!("secret/it/audit-{id}/crm")),
        ("CRM/fresh-unused", format!("kv1/audit-{id}/sales")),
        ("CRM/stale", format!("secret/it/audit-{id}/pool/stale")),
        (
            "Sales/ancient",
            format!("kv1/audit-{id}/scripts/nightly/ancient"),
        ),
        (
            "Sales/rw-idle",
            format!("secret/it/audit-{id}/pool/deep/er/rw-idle"),
        ),
        ("Sales/r-idle", format!("secret/it/audit-{id}/pool/r-idle")),
        (
            "Sales/crm-sync",
            format!("secret/it/audit-{id}/pool/sales-crm"),
        ),
        ("Ops/etl", format!("secret/it/audit-{id}/pool/etl")),
        (
            &*format!("Ops/{}", f.rotation_successor),
            format!("secret/it/audit-{id}/pool/report"),
        ),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    assert_eq!(kept, expected);
    // Each row has the fields SPEC §12 names, and the bases' UUIDs.
    let crm = rows
        .iter()
        .find(|r| r["app_name"] == "crm-sync" && r["base_name"] == "CRM")
        .unwrap();
    for field in [
        "base_uuid",
        "base_name",
        "app_name",
        "permission",
        "creator",
        "generated_at",
        "last_access",
        "vault_secret",
        "findings",
    ] {
        assert!(crm.get(field).is_some(), "{field} in {crm}");
    }
    assert_eq!(crm["base_uuid"], f.team.bases[0].0);
    assert_eq!(crm["permission"], "rw");
    // Without the prefixes, only the profiles' secrets hold tokens.
    let out = f.team.t.run(&["token", "audit", "-o", "json"]).ok();
    let held: BTreeSet<String> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["vault_secret"].is_null())
        .map(|r| r["app_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(held, set(&["crm-sync", "fresh-unused"]));
}

#[test]
fn the_table_for_people_and_findings_only() {
    let f = fixture();
    let pool = f.team.pool();
    let out = f
        .team
        .t
        .run(&["token", "audit", &pool, "--findings-only"])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("BASE "), "{}", out.stdout);
    assert!(lines[0].contains("VAULT SECRET"), "{}", out.stdout);
    let r_idle = lines.iter().find(|l| l.contains(" r-idle ")).unwrap();
    assert!(r_idle.contains("120d ago"), "{r_idle}");
    assert!(r_idle.ends_with(" unused"), "{r_idle}");
    assert!(
        !out.stdout.contains("crm-sync"),
        "no findings, not shown: {}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("12 API token(s) in 3 base(s) of team 7;"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("never-used 2"), "{}", out.stdout);
}

#[test]
fn fail_on_exits_1_when_a_listed_finding_occurs() {
    let f = fixture();
    let out = f.team.audit(&["--fail-on", "old"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        out.json().as_array().unwrap().len(),
        12,
        "the report is printed still"
    );
    let out = f.team.audit(&["--fail-on", "duplicate-app,old"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    // The same team, with no token old enough: 0.
    let out = f
        .team
        .audit(&["--fail-on", "old", "--token-max-age", "1000d"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    f.team
        .t
        .run(&["token", "audit", "--fail-on", "stale"])
        .fails(2, "stale");
}

#[test]
fn revoke_by_finding_never_touches_a_token_vault_holds() {
    let f = fixture();
    let before = f.team.remaining();
    let out = f.team.audit(&["--revoke", "unused,not-in-vault", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Unused ones are all in Vault; of those not in Vault, the rotation's
    // predecessor waits for its rotation.
    let gone: BTreeSet<String> = before.difference(&f.team.remaining()).cloned().collect();
    assert_eq!(gone, set(&["CRM/loose-reader", "Ops/etl-20250101000000"]));
    assert!(
        out.stderr
            .contains("revoke 2 API token(s) with unused,not-in-vault:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("kept: 3 that Vault holds, 1 of a rotation still running"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("revoked  'loose-reader' of base 'CRM'"),
        "{}",
        out.stderr
    );
    for (name, value) in &f.values {
        let status = exchange_status(&f.team.t.case.standin.url, value);
        assert_eq!(status == 200, !gone.contains(name), "{name}: {status}");
    }
    // Again: nothing left to revoke.
    let out = f.team.audit(&["--revoke", "not-in-vault", "--yes"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("nothing to revoke"), "{}", out.stderr);
}

#[test]
fn revoke_asks_on_a_terminal_and_without_one_needs_yes() {
    let f = fixture();
    let before = f.team.remaining();
    // No terminal (the test runs it in a session of its own): nothing
    // revoked, exit 2, the list shown.
    let out = f.team.audit(&["--revoke", "duplicate-app"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("pass --yes"), "{}", out.stderr);
    assert!(
        out.stderr.contains("'etl-20250101000000' of base 'Ops'"),
        "{}",
        out.stderr
    );
    assert_eq!(f.team.remaining(), before);

    let pool = f.team.pool();
    let stdout = f.team.t.case.dir.path().join("audit.out");
    let args = ["token", "audit", "--revoke", "duplicate-app", pool.as_str()];
    let mut pty = Pty::spawn(&f.team.t.case, &args, &stdout);
    pty.expect("Revoke these 1 API token(s) in SeaTable? [y/N] ");
    pty.session.send_line("n").unwrap();
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("nothing was revoked"), "{transcript}");
    assert_eq!(f.team.remaining(), before);

    let mut pty = Pty::spawn(&f.team.t.case, &args, &stdout);
    pty.expect("Revoke these 1 API token(s) in SeaTable? [y/N] ");
    pty.session.send_line("y").unwrap();
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    let gone: BTreeSet<String> = before.difference(&f.team.remaining()).cloned().collect();
    assert_eq!(gone, set(&["Ops/etl-20250101000000"]));
    let report = std::fs::read_to_string(&stdout).unwrap();
    assert!(report.contains("etl-20250101000000"), "{report}");
}

/// The question may take a while: a token put into Vault meanwhile is
/// found when Vault is read again right before the deletes, and kept.
#[test]
fn a_token_put_into_vault_while_revoke_asks_is_kept() {
    let f = fixture();
    let before = f.team.remaining();
    let (_, value) = f
        .values
        .iter()
        .find(|(name, _)| name == "Ops/etl-20250101000000")
        .unwrap();
    let pool = f.team.pool();
    let stdout = f.team.t.case.dir.path().join("audit.out");
    let args = ["token", "audit", "--revoke", "duplicate-app", pool.as_str()];
    let mut pty = Pty::spawn(&f.team.t.case, &args, &stdout);
    pty.expect("Revoke these 1 API token(s) in SeaTable? [y/N] ");
    f.team.kv2("pool/etl-copy", json!({ "api_token": value }));
    pty.session.send_line("y").unwrap();
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert!(
        transcript.contains(&format!(
            "kept     'etl-20250101000000' of base 'Ops' ({}): secret/it/audit-{}/pool/etl-copy holds it now",
            f.team.bases[2].0, f.team.id
        )),
        "{transcript}"
    );
    assert_eq!(f.team.remaining(), before);
    assert_eq!(exchange_status(&f.team.t.case.standin.url, value), 200);
}

#[test]
fn revoke_refuses_while_vault_cannot_be_read_completely() {
    let f = fixture();
    let before = f.team.remaining();
    // A prefix the auditor may not list: its secrets might hold any token.
    let denied = format!("--vault-prefix=secret/audit-denied-{}", f.team.id);
    let out = f
        .team
        .audit(&[&denied, "--revoke", "not-in-vault", "--yes"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("nothing was revoked: Vault was not read completely"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    assert_eq!(f.team.remaining(), before);
    // The report itself is still made, with a warning.
    let out = f.team.audit(&[&denied]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("warning: not read from Vault"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_non_admin_account_gets_one_error_naming_what_it_lacks() {
    let f = fixture();
    let mut team = f.team;
    let member = team
        .t
        .case
        .standin
        .add_team_account("alice@team.local", PASSWORD, ORG, false);
    team.t.case.secrets.push(member.clone());
    team.kv2("member", json!({ "account_token": member }));
    team.t.set(
        "SEATABLE_CRED_ACCOUNT_SECRET",
        format!("secret/it/audit-{}/member", team.id),
    );
    team.t
        .run(&["token", "audit"])
        .fails(4, "the SeaTable account alice@team.local at");
    let out = team.t.run(&["token", "audit", "-vvvv"]).fails(
        4,
        "is a member of team 7 but not its admin (is_org_staff 0)",
    );
    assert!(
        out.stderr.contains("use a team admin's account"),
        "{}",
        out.stderr
    );
    // TokenCase's own account is in no team.
    team.t
        .unset("SEATABLE_CRED_ACCOUNT_SECRET")
        .set("SEATABLE_CRED_ACCOUNT", super::EMAIL)
        .set("SEATABLE_CRED_ACCOUNT_PASSWORD", PASSWORD);
    team.t
        .run(&[
            "token",
            "revoke",
            "--base",
            &team.bases[0].0,
            "--app",
            "stale",
        ])
        .fails(4, "belongs to no team (org_id -1)");
    assert_eq!(
        team.t.case.standin.team_requests().0,
        0,
        "no team-admin request was made"
    );
}

#[test]
fn pages_through_the_team_with_the_servers_page_size() {
    let f = fixture();
    let standin = &f.team.t.case.standin;
    standin.set_team_budget(TeamBudget {
        max_per_page: Some(3),
        ..TeamBudget::default()
    });
    let rows = f.team.rows(&["-v"]);
    assert_eq!(rows.len(), 12);
    let apps: BTreeSet<_> = rows
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["base_name"].as_str().unwrap(),
                r["app_name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(apps.len(), 12, "each once");
    assert_eq!(standin.team_requests(), (4, 0), "12 tokens, 3 a page");
}

/// A server that would need thousands of requests (here: one token a
/// page) is not paged through without end: one request, then exit 5.
#[test]
fn a_team_too_big_to_page_through_is_not_hammered() {
    let team = Team::new();
    let standin = &team.t.case.standin;
    standin.seed_team(&seatable_standin::TeamSeed {
        org_id: ORG,
        bases: 2,
        tokens: 2_001,
        ..seatable_standin::TeamSeed::default()
    });
    standin.set_team_budget(TeamBudget {
        max_per_page: Some(1),
        ..TeamBudget::default()
    });
    team.t
        .run(&["token", "audit"])
        .fails(5, "would need more than 2000 pages of 1");
    assert_eq!(standin.team_requests(), (1, 0));
}

#[test]
fn rides_out_a_429_within_the_deadline() {
    let f = fixture();
    let standin = &f.team.t.case.standin;
    // Two requests a 2-second "day", 3 tokens a page: 4 pages need 2 days.
    standin.set_team_budget(TeamBudget {
        limit: Some(2),
        window_secs: Some(2),
        max_per_page: Some(3),
    });
    let rows = f.team.rows(&[]);
    assert_eq!(rows.len(), 12);
    let (requests, throttled) = standin.team_requests();
    assert!(throttled >= 1, "throttled {throttled} of {requests}");
    assert_eq!(requests - throttled, 4);
    // A wait past the deadline is not waited: exit 5 at once.
    standin.set_team_budget(TeamBudget {
        limit: Some(1),
        window_secs: Some(3600),
        max_per_page: Some(3),
    });
    let started = std::time::Instant::now();
    let out = f.team.t.run(&["token", "audit", "--timeout", "5s"]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(out.stderr.contains("rate limiting"), "{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn revoke_by_base_uuid_through_the_team_admin_api() {
    let f = fixture();
    let team = &f.team;
    let (crm, ops) = (&team.bases[0].0, &team.bases[2].0);
    let pool = team.pool();
    // Vault holds these (a profile's secret; a prefix's secret): refused.
    team.t
        .run(&["token", "revoke", "--base", crm, "--app", "crm-sync"])
        .fails(
            2,
            &format!("is the token secret/it/audit-{}/crm holds", team.id),
        );
    team.t
        .run(&["token", "revoke", "--base", ops, "--app", "etl", &pool])
        .fails(2, "--force");
    // Not held: deleted, whichever UUID form is given.
    let out = team
        .t
        .run(&[
            "token",
            "revoke",
            "--base",
            &crm.replace('-', "").to_uppercase(),
            "--app",
            "loose-reader",
        ])
        .ok();
    assert!(
        out.stdout
            .contains(&format!("API token 'loose-reader' of base {crm} deleted")),
        "{}",
        out.stdout
    );
    assert!(!team.remaining().contains("CRM/loose-reader"));
    // Forced: the held one goes, with a warning about the secret.
    let out = team
        .t
        .run(&[
            "token", "revoke", "--base", ops, "--app", "etl", &pool, "--force",
        ])
        .ok();
    assert!(
        out.stderr.contains("holds a revoked token now"),
        "{}",
        out.stderr
    );
    assert!(!team.remaining().contains("Ops/etl"));
    team.t
        .run(&["token", "revoke", "--base", crm, "--app", "nope"])
        .fails(2, "has no API token named 'nope' (it has: ");
    let stranger = Base::default().dtable_uuid;
    team.t
        .run(&["token", "revoke", "--base", &stranger, "--app", "x"])
        .fails(4, &format!("team 7 has no base {stranger}"));
    team.t
        .run(&["token", "revoke", "--base", "CRM", "--app", "x"])
        .fails(2, "is not a base UUID");
}

/// README's policy for the auditing identity works as written: with only
/// it, the account token and both prefixes (KV v2 and a KV v1 mount `kv`)
/// are read completely — no warning — and the tokens there are found.
#[test]
fn readmes_auditor_policy_works_as_written() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("```hcl\npath \"secret/data/seatable/*\"     { capabilities = [\"read\"] }")
        .expect("README's auditor policy");
    let hcl = &readme[start + "```hcl\n".len()..];
    let hcl = &hcl[..hcl.find("```").unwrap()];
    assert!(hcl.contains("--vault-prefix kv/seatable (KV v1)"), "{hcl}");
    let bao = &shared().bao;
    static KV: OnceLock<()> = OnceLock::new();
    KV.get_or_init(|| {
        let mounts = bao.api("GET", "sys/mounts", None);
        if mounts["data"]["kv/"].is_null() {
            bao.api(
                "POST",
                "sys/mounts/kv",
                Some(json!({"type": "kv", "options": {"version": "1"}})),
            );
        }
    });
    let policy = format!("readme-auditor-{}", random_hex(4));
    bao.api(
        "PUT",
        &format!("sys/policies/acl/{policy}"),
        Some(json!({ "policy": hcl })),
    );
    let team = Team::new();
    let mut t = team.t;
    let vault_token = bao.token(&[&policy], "1h");
    t.case.secrets.push(vault_token.clone());
    t.set("VAULT_TOKEN", vault_token);
    // The account token where README keeps it.
    let admin = t
        .case
        .standin
        .add_team_account("readme@team.local", PASSWORD, ORG, true);
    t.case.secrets.push(admin.clone());
    bao.kv2_put(
        "secret",
        "seatable-admin/team-admin",
        json!({ "account_token": admin }),
    );
    t.set(
        "SEATABLE_CRED_ACCOUNT_SECRET",
        "secret/seatable-admin/team-admin",
    );
    // The case's own profile secret and the team's profiles are outside
    // README's paths: a team admin's audit needs neither.
    t.unset("SEATABLE_CRED_SECRET");
    let config = t.case.dir.path().join("config").join("seatable-cred");
    std::fs::remove_file(config.join("config.toml")).unwrap();
    let team = Team { t, ..team };
    let in_v2 = team.token(0, "crm-sync", "rw", 10, Some(1));
    let in_v1 = team.token(1, "nightly", "r", 10, Some(1));
    team.token(2, "loose", "r", 10, Some(1));
    let id = &team.id;
    bao.kv2_put(
        "secret",
        &format!("seatable/{id}/crm"),
        json!({ "api_token": in_v2 }),
    );
    bao.kv1_put(
        "kv",
        &format!("seatable/{id}/jobs/nightly"),
        json!({ "token": in_v1 }),
    );
    let out = team
        .t
        .run(&[
            "token",
            "audit",
            "-o",
            "json",
            &format!("--vault-prefix=secret/seatable/{id}"),
            &format!("--vault-prefix=kv/seatable/{id}"),
        ])
        .ok();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    let kept: BTreeSet<(String, String)> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["app_name"].as_str().unwrap().to_string(),
                r["vault_secret"].to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("crm-sync", json!(format!("secret/seatable/{id}/crm"))),
        ("loose", Value::Null),
        ("nightly", json!(format!("kv/seatable/{id}/jobs/nightly"))),
    ]
    .into_iter()
    .map(|(app, secret)| (app.to_string(), secret.to_string()))
    .collect();
    assert_eq!(kept, expected);
}
