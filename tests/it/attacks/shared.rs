//! Another team's Vault identity against the shared tier. Two identities
//! whose policies follow docs/cache.md's shape: each reads only its own API-token
//! secret; both may create, read and update the shared cache path.

use serde_json::{Value, json};

use crate::support::{Case, shared};

/// One team: its base and API token, and a Vault token whose policy reads
/// only that team's secret (plus the shared cache, as docs/cache.md says).
struct Team {
    case: Case,
    vault_token: String,
}

fn team(shared_path: &str) -> Team {
    let bao = &shared().bao;
    let mut case = Case::new();
    let name = format!("team-{}", seatable_standin::random_hex(4));
    let kv_path = case.secret.trim_start_matches("secret/").to_string();
    let cache_path = shared_path.trim_start_matches("secret/");
    let policy = format!(
        r#"
path "secret/data/{kv_path}" {{ capabilities = ["read"] }}
path "secret/data/{cache_path}/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/{cache_path}/*" {{ capabilities = ["read", "list", "delete"] }}
path "secret/metadata/{cache_path}" {{ capabilities = ["list"] }}
"#
    );
    bao.api(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(json!({ "policy": policy })),
    );
    let vault_token = bao.token(&[&name], "1h");
    case.secrets.push(vault_token.clone());
    case.set("VAULT_TOKEN", vault_token.clone())
        .set("SEATABLE_CRED_CACHE", "vault")
        .set("SEATABLE_CRED_SHARED_CACHE", shared_path)
        .set("SEATABLE_CRED_TIMEOUT", "5s");
    Team { case, vault_token }
}

fn shared_path() -> String {
    format!(
        "secret/seatable-cred/cache/{}",
        seatable_standin::random_hex(4)
    )
}

/// The one entry under the shared path, as the attacker lists and reads it
/// with its own Vault token: (its KV path without the mount, its data).
fn only_entry(attacker: &Team, shared_path: &str) -> (String, Value) {
    let bao = &shared().bao;
    let under = shared_path.trim_start_matches("secret/");
    let listed = bao
        .api_as(
            &attacker.vault_token,
            "LIST",
            &format!("secret/metadata/{under}"),
            None,
        )
        .expect("the policy lets every identity list the shared path");
    let keys = listed["data"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    let path = format!("{under}/{}", keys[0].as_str().unwrap());
    let read = bao
        .api_as(
            &attacker.vault_token,
            "GET",
            &format!("secret/data/{path}"),
            None,
        )
        .expect("the policy lets every identity read the shared path");
    (path, read["data"]["data"].clone())
}

/// Every string in a JSON value that is shaped like a JWT.
fn jwts(v: &Value, found: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for word in s.split(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c))) {
                if word.split('.').count() == 3 && word.len() > 40 {
                    found.push(word.to_string());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| jwts(x, found)),
        Value::Object(o) => o.values().for_each(|x| jwts(x, found)),
        _ => {}
    }
}

#[test]
fn another_identity_cannot_read_a_shared_entry() {
    let path = shared_path();
    let (a, b) = (team(&path), team(&path));
    let token = b.case.run(&["get", "-o", "token"]).ok().stdout;
    let token = token.trim();
    let (_, data) = only_entry(&a, &path);
    let text = data.to_string();
    assert!(
        !text.contains(token),
        "B's base token is readable by A: {text}"
    );
    let mut found = Vec::new();
    jwts(&data, &mut found);
    assert!(found.is_empty(), "a JWT in the shared entry: {found:?}");
    assert!(
        !text.contains(&b.case.base.dtable_uuid),
        "not even the base context is in the clear: {text}"
    );
}

#[test]
fn a_forged_entry_is_never_served() {
    let path = shared_path();
    let (a, b) = (team(&path), team(&path));
    let b_token = b.case.run(&["get", "-o", "token"]).ok().stdout;
    // A's own base token (not through the shared tier).
    let a_token = a
        .case
        .run(&["get", "-o", "token", "--cache", "none"])
        .ok()
        .stdout;
    assert_ne!(a_token, b_token);
    let (entry_path, mut data) = only_entry(&a, &path);
    // In the entry format of old versions: B's key, A's token, an attacker's gateway.
    let key = entry_path.rsplit('/').next().unwrap().to_string();
    let forged = json!({
        "v": 1, "key": key, "token": a_token.trim(),
        "expires_at": 4_000_000_000u64, "fetched_at": 1_700_000_000u64,
        "context": {"server_url": b.case.standin.url, "api_gateway_url": "https://evil.example/",
                    "dtable_uuid": b.case.base.dtable_uuid}
    });
    data["entry"] = forged;
    data["claim"] = Value::Null;
    shared()
        .bao
        .api_as(
            &a.vault_token,
            "POST",
            &format!("secret/data/{entry_path}"),
            Some(json!({ "data": data })),
        )
        .expect("A may write the shared path");
    let out = b
        .case
        .on_another_host("host")
        .run(&["get", "-o", "json"])
        .ok()
        .json();
    assert_eq!(out["cached"], false, "the forged entry was a miss");
    let served = out["token"].as_str().unwrap();
    assert_ne!(served, a_token.trim(), "B was handed A's token");
    assert!(
        b.case.standin.accepts(served, &b.case.base.dtable_uuid),
        "B's token opens B's base"
    );
    assert_eq!(
        out["api_gateway_url"],
        format!("{}/api-gateway/", b.case.standin.url)
    );
}

#[test]
fn an_entry_sealed_with_another_teams_key_is_never_served() {
    use seatable_cred::cache::seal::{Kind, SealKey};
    use secrecy::SecretString;
    let path = shared_path();
    let (a, b) = (team(&path), team(&path));
    b.case.run(&["get"]).ok();
    let a_token = a
        .case
        .run(&["get", "-o", "token", "--cache", "none"])
        .ok()
        .stdout;
    let (entry_path, _) = only_entry(&a, &path);
    let key = entry_path.rsplit('/').next().unwrap().to_string();
    // A seals its own token for B's cache key — with the key A can derive:
    // from A's API token, the only one A can read.
    let forged_entry = json!({
        "v": 1, "key": key, "token": a_token.trim(),
        "expires_at": 4_000_000_000u64, "fetched_at": 3_990_000_000u64,
        "context": {"server_url": b.case.standin.url, "api_gateway_url": "https://evil.example/"}
    });
    let seal = SealKey::derive(
        &SecretString::from(a.case.base.api_token.clone()),
        &seatable_cred::cache::Key::from_id(&key),
    );
    let data = json!({
        "v": 2,
        "entry": seal.seal(Kind::Entry, forged_entry.to_string().as_bytes()),
        "claim": null,
    });
    shared()
        .bao
        .api_as(
            &a.vault_token,
            "POST",
            &format!("secret/data/{entry_path}"),
            Some(json!({ "data": data })),
        )
        .expect("A may write the shared path");
    let out = b
        .case
        .on_another_host("host")
        .run(&["get", "-o", "json"])
        .ok()
        .json();
    assert_ne!(out["token"].as_str().unwrap(), a_token.trim());
    assert!(
        b.case
            .standin
            .accepts(out["token"].as_str().unwrap(), &b.case.base.dtable_uuid)
    );
    assert_eq!(out["cached"], false, "the forged entry was a miss");
}

#[test]
fn a_forged_claim_blocks_nobody() {
    let path = shared_path();
    let (a, b) = (team(&path), team(&path));
    b.case.run(&["get"]).ok();
    let (entry_path, _) = only_entry(&a, &path);
    // A claim "held" until the year 2100, with the entry emptied.
    let claim =
        json!({"entry": null, "claim": {"holder": "evil:1:00000000", "until": 4_102_444_800u64}});
    shared()
        .bao
        .api_as(
            &a.vault_token,
            "POST",
            &format!("secret/data/{entry_path}"),
            Some(json!({ "data": claim })),
        )
        .expect("A may write the shared path");
    let started = std::time::Instant::now();
    let b2 = b.case.on_another_host("host");
    let out = b2.run(&["get", "-o", "json"]).ok().json();
    assert!(
        b.case
            .standin
            .accepts(out["token"].as_str().unwrap(), &b.case.base.dtable_uuid)
    );
    assert_eq!(out["cached"], false, "B exchanged instead of waiting");
    b.case.run(&["get", "--refresh"]).ok();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "nobody waited for the forged claim"
    );
}

/// Another identity writing garbage into an entry and deleting it, over and
/// over, costs the victim at most a direct exchange — never a failure.
#[test]
fn an_entry_kept_in_flux_by_another_identity_blocks_nobody() {
    let path = shared_path();
    let (a, b) = (team(&path), team(&path));
    b.case.run(&["get"]).ok();
    let (entry_path, _) = only_entry(&a, &path);
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (stop, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let attack = {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        let (token, entry_path) = (a.vault_token.clone(), entry_path.clone());
        std::thread::spawn(move || {
            let bao = &shared().bao;
            while !stop.load(Ordering::SeqCst) {
                let junk = json!({"data": {"v": 2, "entry": "AAAA", "claim": "AAAA"}});
                let _ = bao.api_as(
                    &token,
                    "POST",
                    &format!("secret/data/{entry_path}"),
                    Some(junk),
                );
                let _ = bao.api_as(
                    &token,
                    "DELETE",
                    &format!("secret/metadata/{entry_path}"),
                    None,
                );
                rounds.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // The attack is under way before the victim's call starts.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rounds.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < until,
            "the attack did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let mut victim = b.case.on_another_host("host");
    // The bound below leaves room for starting the process beside the
    // attack on a loaded machine.
    victim.set("SEATABLE_CRED_TIMEOUT", "5s");
    let before = rounds.load(Ordering::SeqCst);
    let started = std::time::Instant::now();
    let out = victim.run(&["get", "-o", "json"]);
    let during = rounds.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    attack.join().unwrap();
    assert!(during > before, "the attack went on during the call");
    let out = out.ok().json();
    assert!(
        b.case
            .standin
            .accepts(out["token"].as_str().unwrap(), &b.case.base.dtable_uuid),
        "the victim got a token of its own base"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "served within --timeout (5 s) and the process start"
    );
}

#[test]
fn erasing_a_shared_entry_destroys_its_history() {
    let path = shared_path();
    let (a, b) = (team(&path), team(&path));
    let first = b.case.run(&["get", "-o", "token"]).ok().stdout;
    b.case.run(&["get", "--refresh"]).ok();
    let (entry_path, _) = only_entry(&a, &path);
    b.case.run(&["erase"]).ok();
    let bao = &shared().bao;
    for version in 1..=4 {
        let old = bao.api_as(
            bao::ROOT,
            "GET",
            &format!("secret/data/{entry_path}?version={version}"),
            None,
        );
        if let Ok(v) = old {
            assert!(
                !v.to_string().contains(first.trim()),
                "version {version} still holds the first token"
            );
            assert!(v["data"]["data"].is_null(), "version {version}: {v}");
        }
    }
    assert!(
        bao.api_as(
            bao::ROOT,
            "GET",
            &format!("secret/metadata/{entry_path}"),
            None
        )
        .is_err(),
        "the entry's metadata (and with it every version) is gone"
    );
}

mod bao {
    pub const ROOT: &str = crate::support::bao::ROOT_TOKEN;
}
