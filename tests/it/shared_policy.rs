//! The shared tier under the policy docs/cache.md prints, taken from there
//! as it is printed (this test breaks when that policy changes): `get`,
//! `status`, `erase` and `erase --all` work with it — and erasing drops this
//! profile's entry only, never the other entries under the shared path,
//! which may be other teams'.

use serde_json::{Value, json};

use crate::support::{Case, shared};

/// The HCL block of docs/cache.md's "The shared Vault tier" section.
fn readme_policy() -> String {
    let page = include_str!("../../docs/cache.md");
    let section = page
        .split_once("## The shared Vault tier")
        .expect("docs/cache.md has a section 'The shared Vault tier'")
        .1;
    let block = section.split_once("```hcl\n").expect("with an hcl block").1;
    let policy = block.split_once("\n```").unwrap().0.to_string();
    // The paths this test's world is built on.
    for path in [
        "path \"secret/data/seatable/crm\"",
        "path \"secret/data/seatable-cred/cache/*\"",
        "path \"secret/metadata/seatable-cred/cache/*\"",
    ] {
        assert!(
            policy.contains(path),
            "docs/cache.md's shared-tier policy no longer has {path}: adapt this test\n{policy}"
        );
    }
    policy
}

/// The keys under `path` (`secret/…`), as root lists them, each with its
/// version and when that was written: what an erase must leave as it is.
fn entries(path: &str) -> Vec<(String, Value, Value)> {
    let bao = &shared().bao;
    let under = path.trim_start_matches("secret/");
    let listed = bao.api("LIST", &format!("secret/metadata/{under}"), None);
    let mut keys: Vec<String> = listed["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let meta =
                &bao.api("GET", &format!("secret/data/{under}/{k}"), None)["data"]["metadata"];
            (k, meta["version"].clone(), meta["created_time"].clone())
        })
        .collect()
}

#[test]
fn readmes_shared_tier_policy_works_and_erase_leaves_other_entries_alone() {
    let bao = &shared().bao;
    let shared_path = format!(
        "secret/seatable-cred/cache/{}",
        seatable_standin::random_hex(4)
    );
    // This team: docs/cache.md's policy, verbatim, and its API token where that
    // policy says (no other test uses secret/seatable/crm).
    let mut team = Case::new();
    bao.kv2_put(
        "secret",
        "seatable/crm",
        json!({"api_token": team.base.api_token}),
    );
    let name = format!("readme-shared-{}", seatable_standin::random_hex(4));
    bao.api(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(json!({ "policy": readme_policy() })),
    );
    let token = bao.token(&[&name], "1h");
    team.secrets.push(token.clone());
    team.set("VAULT_TOKEN", token)
        .set("SEATABLE_CRED_SECRET", "secret/seatable/crm")
        .set("SEATABLE_CRED_CACHE", "vault")
        .set("SEATABLE_CRED_SHARED_CACHE", shared_path.clone());

    // Another team's entry under the same path, and a secret of theirs
    // that is no entry at all.
    let mut other = Case::new();
    other
        .set("SEATABLE_CRED_CACHE", "vault")
        .set("SEATABLE_CRED_SHARED_CACHE", shared_path.clone());
    other.run(&["get"]).ok();
    let under = shared_path.trim_start_matches("secret/");
    bao.kv2_put(
        "secret",
        &format!("{under}/notes"),
        json!({"owner": "billing"}),
    );
    let others = entries(&shared_path);
    assert_eq!(others.len(), 2, "{others:?}");

    // get, from the shared entry on another host too, and status.
    let first = team.run(&["get", "-o", "json"]).ok().json();
    assert!(
        team.standin
            .accepts(first["token"].as_str().unwrap(), &team.base.dtable_uuid)
    );
    assert_eq!(entries(&shared_path).len(), 3);
    team.run(&["erase"]).ok(); // this host's local entry and the shared one
    assert_eq!(
        entries(&shared_path),
        others,
        "erase dropped this team's entry only"
    );
    team.run(&["get"]).ok();
    let second_host = team.on_another_host("host");
    let read = second_host.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(read["cached"], true, "served from the shared entry");
    assert_eq!(team.standin.exchanges(), 2);
    let v = second_host.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(
        (v["backend"].as_str(), v["state"].as_str()),
        (Some("vault"), Some("fresh"))
    );

    // erase --all: this profile's shared entry, and still nobody else's.
    second_host.run(&["erase", "--all"]).ok();
    assert_eq!(
        entries(&shared_path),
        others,
        "erase --all dropped this team's entry only"
    );
    let v = team.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["state"], "missing");
    // The other team's hosts still find its entry.
    let exchanges = other.standin.exchanges();
    let theirs = other
        .on_another_host("host")
        .run(&["get", "-o", "json"])
        .ok()
        .json();
    assert_eq!(theirs["cached"], true);
    assert_eq!(other.standin.exchanges(), exchanges);
}
