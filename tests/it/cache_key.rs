//! The cache key: a hash of exactly the settings docs/cache.md lists — server,
//! Vault address and namespace, secret path, field, lifetime — and of no
//! secret. A listed setting changed finds another entry; anything else
//! (the Vault token, a login's secret-id, the API token itself, settings
//! that do not change the token) finds the same one.

use serde_json::json;

use crate::support::{Case, run_with_input, shared};

/// `status`' view of the cache under the case's settings with `changes`:
/// `fresh` when it finds the entry the case cached, `missing` when it looks
/// under another key. `status` reads the cache and nothing else.
fn state_with(case: &Case, changes: &[(&str, &str)]) -> String {
    let mut cmd = case.command(&["status", "-o", "json"]);
    for (name, value) in changes {
        cmd.env(name, value);
    }
    let out = run_with_input(cmd, "");
    case.assert_no_secrets(&out);
    out.ok().json()["state"].as_str().unwrap().to_string()
}

#[test]
fn the_key_is_made_of_the_listed_settings_and_no_secret() {
    let mut case = Case::new();
    case.run(&["get"]).ok();
    let [entry] = &case.entry_files()[..] else {
        panic!("one entry: {:?}", case.entry_files())
    };
    let entry = entry.clone();
    let localhost = |url: &str| url.replace("127.0.0.1", "localhost");

    // Each listed setting: another key.
    let other_secret = format!("{}-other", case.secret);
    for (name, value) in [
        ("SEATABLE_SERVER_URL", localhost(&case.standin.url)),
        ("VAULT_ADDR", localhost(&case.env["VAULT_ADDR"])),
        ("VAULT_NAMESPACE", "team-a".to_string()),
        ("SEATABLE_CRED_SECRET", other_secret),
        ("SEATABLE_CRED_FIELD", "token".to_string()),
        ("SEATABLE_CRED_LIFETIME", "1h".to_string()),
    ] {
        assert_eq!(
            state_with(&case, &[(name, &value)]),
            "missing",
            "{name} is part of the key"
        );
    }
    // Secrets and settings that do not change the token: the same key.
    let shared = shared();
    let other_token = shared
        .bao
        .token(&[crate::support::bao::READER_POLICY], "1h");
    let secret_id = shared.secret_id();
    case.secrets
        .extend([other_token.clone(), secret_id.clone()]);
    for changes in [
        vec![("VAULT_TOKEN", other_token.as_str())],
        vec![
            ("SEATABLE_CRED_AUTH", "approle"),
            ("SEATABLE_CRED_ROLE_ID", shared.role_id.as_str()),
            ("SEATABLE_CRED_SECRET_ID", secret_id.as_str()),
        ],
        vec![("SEATABLE_CRED_TIMEOUT", "7s")],
        vec![("SEATABLE_CRED_REFRESH_BEFORE", "10m")],
        vec![("SEATABLE_CRED_KV_VERSION", "2")],
    ] {
        assert_eq!(
            state_with(&case, &changes),
            "fresh",
            "{changes:?} is not part of the key"
        );
    }

    // A field of the same secret is another entry, fetched and kept beside the first.
    let path = case.secret.trim_start_matches("secret/").to_string();
    let api_token = case.base.api_token.clone();
    shared.bao.kv2_put(
        "secret",
        &path,
        json!({"api_token": api_token, "token": api_token}),
    );
    case.run(&["get", "--field", "token"]).ok();
    assert_eq!(case.entry_files().len(), 2);
    assert_eq!(case.standin.exchanges(), 2);
    case.run(&["get", "--field", "token"]).ok();
    case.run(&["get"]).ok();
    assert_eq!(
        case.standin.exchanges(),
        2,
        "each field answered from its entry"
    );

    // The API token replaced in Vault (the same secret, field and base): a
    // refresh lands in the same entry — the token is no part of the key.
    let successor = case.standin.add_base(seatable_standin::Base {
        api_token: seatable_standin::random_hex(20),
        ..case.base.clone()
    });
    case.secrets.push(successor.api_token.clone());
    shared.bao.kv2_put(
        "secret",
        &path,
        json!({"api_token": successor.api_token, "token": api_token}),
    );
    let before = std::fs::read(&entry).unwrap();
    case.run(&["get", "--refresh"]).ok();
    assert_eq!(case.standin.exchanges(), 3);
    assert_ne!(
        std::fs::read(&entry).unwrap(),
        before,
        "the same entry, refreshed"
    );
    assert_eq!(case.entry_files().len(), 2);

    // No secret in any name in the cache directory: entries and locks are
    // named by the 32-hex key alone.
    for file in std::fs::read_dir(case.cache_dir()).unwrap().flatten() {
        let name = file.file_name().to_string_lossy().into_owned();
        let stem = name.trim_end_matches(".json").trim_end_matches(".lock");
        assert!(
            stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()),
            "{name}"
        );
        for secret in &case.secrets {
            assert!(
                !name.contains(secret.as_str()),
                "a secret in the name {name}"
            );
        }
    }
}
