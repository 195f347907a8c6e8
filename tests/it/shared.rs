//! `--cache vault`: one entry per key in Vault, shared by every host; a
//! check-and-set claim makes one host of a cold fleet exchange.

use seatable_standin::Fault;

use crate::cache::run_concurrently;
use crate::support::{Case, shared};

/// A "host": its own cache directory (lock files, Vault logins), the same
/// Vault and SeaTable.
fn host(of: &Case, shared_path: &str, name: &str) -> Case {
    let mut host = of.on_another_host(name);
    host.set("SEATABLE_CRED_CACHE", "vault")
        .set("SEATABLE_CRED_SHARED_CACHE", shared_path);
    host
}

fn shared_path() -> String {
    format!(
        "secret/seatable-cred/cache/{}",
        seatable_standin::random_hex(4)
    )
}

#[test]
fn three_hosts_of_eight_processes_make_one_exchange() {
    let case = Case::new();
    let path = shared_path();
    let hosts: Vec<Case> = (0..3)
        .map(|i| host(&case, &path, &format!("host{i}")))
        .collect();
    // A slow exchange: everyone else arrives while the winner is busy.
    case.standin.push_faults([Fault::Slow { millis: 500 }]);
    let refs: Vec<&Case> = hosts.iter().collect();
    let outs = run_concurrently(&refs, 8, &["get", "-o", "token"]);
    for out in &outs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            out.stdout, outs[0].stdout,
            "the whole fleet prints one token"
        );
    }
    assert_eq!(
        case.standin.stats().exchange_requests,
        1,
        "exactly one exchange for 24 processes on 3 hosts"
    );
    assert!(
        case.standin
            .accepts(outs[0].stdout.trim(), &case.base.dtable_uuid)
    );
    // Later calls read the entry from Vault: no exchange.
    hosts[1].run(&["get"]).ok();
    assert_eq!(case.standin.exchanges(), 1);
}

#[test]
fn shared_entry_status_erase_and_stale_if_error() {
    let case = Case::new();
    let path = shared_path();
    let mut a = host(&case, &path, "a");
    let b = host(&case, &path, "b");
    let first = a.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(first["cached"], false);
    let second = b.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(second["cached"], true);
    assert_eq!(second["token"], first["token"]);
    // The entry sits in Vault, where a policy-bound reader can see it.
    let key_entries = shared().bao.api(
        "LIST",
        &format!("secret/metadata/{}", path.trim_start_matches("secret/")),
        None,
    );
    assert_eq!(key_entries["data"]["keys"].as_array().unwrap().len(), 1);

    let v = b.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["backend"], "vault");
    assert_eq!(v["state"], "fresh");

    // SeaTable down: a forced refresh serves the still-valid shared token.
    a.set("SEATABLE_CRED_TIMEOUT", "1s");
    case.standin
        .push_faults(std::iter::repeat_n(Fault::Status { code: 503 }, 50));
    let out = a.run(&["get", "-o", "json", "--refresh"]).ok();
    assert_eq!(out.json()["token"], first["token"]);
    assert!(out.stderr.contains("refresh failed"), "{}", out.stderr);
    case.standin.clear_faults();

    // Erasing drops the shared entry (and a's local one); b keeps its local
    // copy until its refresh window, as any host's local level does.
    a.run(&["erase"]).ok();
    let v = b.run(&["status", "-o", "json"]).ok().json();
    assert_eq!(v["state"], "missing");
    assert_eq!(b.run(&["get", "-o", "json"]).ok().json()["cached"], true);
    let c = host(&case, &path, "c");
    let third = c.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(third["cached"], false, "a new host finds no shared entry");
    assert_eq!(case.standin.exchanges(), 2);
}

/// Two levels: a host's local entry answers without Vault; the shared
/// entry is read only when the local one is missing or due.
#[test]
fn a_fresh_local_entry_is_served_without_vault() {
    let case = Case::new();
    let path = shared_path();
    let mut a = host(&case, &path, "a");
    let vault = crate::support::proxy::Proxy::start(&shared().bao.addr);
    a.set("VAULT_ADDR", vault.url.clone());
    a.run(&["get"]).ok();
    let after_first = vault.connections();
    assert!(after_first >= 1);
    for _ in 0..5 {
        a.run(&["get"]).ok();
    }
    assert_eq!(
        vault.connections(),
        after_first,
        "local hits opened no connection to Vault"
    );
    // A second host reads the shared entry once, then its own local one.
    let mut b = host(&case, &path, "b");
    b.set("VAULT_ADDR", vault.url.clone());
    assert_eq!(b.run(&["get", "-o", "json"]).ok().json()["cached"], true);
    let after_b = vault.connections();
    b.run(&["get"]).ok();
    assert_eq!(vault.connections(), after_b);
    assert_eq!(case.standin.exchanges(), 1);
}

#[test]
fn shared_cache_needs_a_path() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "vault");
    case.run(&["get"]).fails(2, "SEATABLE_CRED_SHARED_CACHE");
}

#[test]
fn shared_cache_without_write_access_is_a_clear_vault_error() {
    let mut case = Case::new();
    // The reader policy reads the API token but grants nothing here.
    case.set("SEATABLE_CRED_CACHE", "vault")
        .set("SEATABLE_CRED_SHARED_CACHE", "secret/elsewhere/cache");
    case.run(&["get"]).fails(3, "shared cache");
}

/// `erase` (git's `reject` of a refused token) drops the local entry even
/// when the shared one cannot be erased (Vault refuses or is down): the
/// rejected token is never served again from this host's cache.
#[test]
fn erase_drops_the_local_entry_even_when_vault_refuses() {
    let case = Case::new();
    let path = shared_path();
    let mut a = host(&case, &path, "a");
    a.run(&["get"]).ok();
    a.set("VAULT_TOKEN", "s.not-a-token-vault-knows");
    let out = a.run(&["erase"]);
    assert_ne!(
        out.code, 0,
        "the shared entry was not erased: {}",
        out.stderr
    );
    // The local level no longer answers: the call needs Vault, which refuses.
    let out = a.run(&["get"]);
    assert_ne!(out.code, 0, "served from the local entry: {}", out.stdout);
    assert_eq!(case.standin.exchanges(), 1);
}
