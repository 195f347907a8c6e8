//! `get`: the main job, each output format, and the cache hit.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{Case, proxy::Proxy, shared};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn parse_rfc3339(text: &str) -> u64 {
    humantime::parse_rfc3339(text)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The payload of a base token the stand-in issued.
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn get_prints_exec_credential_then_answers_from_cache() {
    let case = Case::new();
    let first = case.run(&["get"]).ok();
    let doc = first.json();
    assert_eq!(doc["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(doc["kind"], "ExecCredential");
    let token = doc["status"]["token"].as_str().unwrap().to_string();
    assert!(
        case.standin.accepts(&token, &case.base.dtable_uuid),
        "the printed token opens the base"
    );
    // Stamped 5 minutes before the token's own expiry (client-go applies no skew).
    let exp = claims(&token)["exp"].as_u64().unwrap();
    assert_eq!(
        parse_rfc3339(doc["status"]["expirationTimestamp"].as_str().unwrap()),
        exp - 300
    );
    assert!(
        exp > now() + 2 * 24 * 3600,
        "SeaTable's default 3-day token"
    );
    assert_eq!(case.standin.exchanges(), 1);
    assert_eq!(case.standin.stats().last_scheme.as_deref(), Some("Token"));

    let second = case.run(&["get"]).ok();
    assert_eq!(second.stdout, first.stdout, "same credential from cache");
    assert_eq!(
        case.standin.exchanges(),
        1,
        "the second call made no exchange"
    );
}

#[test]
fn cache_hit_opens_no_socket() {
    let mut case = Case::new();
    let proxy = Proxy::start(&shared().bao.addr);
    case.set("VAULT_ADDR", proxy.url.clone());
    let first = case.run(&["get", "-o", "json"]).ok();
    assert!(
        proxy.connections() >= 1,
        "the first call went through Vault"
    );
    assert_eq!(first.json()["cached"], false);

    let vault_connections = proxy.connections();
    let requests = case.standin.stats().exchange_requests;
    let second = case.run(&["get", "-o", "json"]).ok();
    assert_eq!(second.json()["cached"], true);
    assert_eq!(
        proxy.connections(),
        vault_connections,
        "a cache hit opens no connection to Vault"
    );
    assert_eq!(
        case.standin.stats().exchange_requests,
        requests,
        "nor to SeaTable"
    );
}

#[test]
fn cache_hit_with_both_services_stopped() {
    let mut case = Case::new();
    let proxy = Proxy::start(&shared().bao.addr);
    case.set("VAULT_ADDR", proxy.url.clone());
    let first = case.run(&["get", "-o", "token"]).ok();
    drop(proxy); // Vault unreachable from now on
    let env = case.env.clone();
    let secrets = case.secrets.clone();
    drop(case.standin); // SeaTable gone
    let mut cmd = std::process::Command::new(crate::support::HELPER);
    cmd.args(["get", "-o", "token"]).env_clear().envs(&env);
    case.ns.join(&mut cmd);
    let second = crate::support::run_with_input(cmd, "");
    assert_eq!(second.code, 0, "stderr: {}", second.stderr);
    assert_eq!(second.stdout, first.stdout);
    for s in secrets {
        assert!(!second.stderr.contains(&s));
    }
}

#[test]
fn refresh_flag_forces_an_exchange() {
    let case = Case::new();
    let first = case.run(&["get", "-o", "token"]).ok();
    let second = case.run(&["get", "-o", "token", "--refresh"]).ok();
    assert_eq!(case.standin.exchanges(), 2);
    assert_ne!(first.stdout, second.stdout);
    // The refreshed token replaced the cached one.
    let third = case.run(&["get", "-o", "token"]).ok();
    assert_eq!(third.stdout, second.stdout);
    assert_eq!(case.standin.exchanges(), 2);
}

#[test]
fn json_output_carries_the_base_context() {
    let case = Case::new();
    let out = case.run(&["get", "-o", "json"]).ok();
    let v = out.json();
    let token = v["token"].as_str().unwrap();
    assert!(case.standin.accepts(token, &case.base.dtable_uuid));
    let exp = claims(token)["exp"].as_u64().unwrap();
    assert_eq!(parse_rfc3339(v["expires_at"].as_str().unwrap()), exp);
    assert_eq!(parse_rfc3339(v["refresh_at"].as_str().unwrap()), exp - 300);
    assert_eq!(v["server_url"], case.standin.url);
    assert_eq!(
        v["api_gateway_url"],
        format!("{}/api-gateway/", case.standin.url)
    );
    assert_eq!(
        v["dtable_server"],
        format!("{}/api-gateway/", case.standin.url)
    );
    assert_eq!(v["dtable_uuid"], case.base.dtable_uuid);
    assert_eq!(v["dtable_name"], case.base.dtable_name);
    assert_eq!(v["workspace_id"], case.base.workspace_id);
    assert_eq!(v["app_name"], case.base.app_name);
    assert_eq!(v["permission"], "rw");
    assert_eq!(v["use_api_gateway"], true);
    assert_eq!(v["cached"], false);
    assert!(out.stdout.ends_with("}\n"));
}

#[test]
fn env_output_sources_into_a_shell() {
    let case = Case::new();
    let out = case.run(&["get", "-o", "env"]).ok();
    let script = format!(
        "{}\nprintf '%s|%s|%s|%s|%s' \"$SEATABLE_SERVER_URL\" \"$SEATABLE_API_GATEWAY_URL\" \"$SEATABLE_BASE_UUID\" \"$SEATABLE_BASE_TOKEN\" \"$SEATABLE_BASE_TOKEN_EXPIRES_AT\"",
        out.stdout
    );
    let shell = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    let text = String::from_utf8(shell.stdout).unwrap();
    let parts: Vec<&str> = text.split('|').collect();
    assert_eq!(parts[0], case.standin.url);
    assert_eq!(parts[1], format!("{}/api-gateway/", case.standin.url));
    assert_eq!(parts[2], case.base.dtable_uuid);
    assert!(case.standin.accepts(parts[3], &case.base.dtable_uuid));
    assert_eq!(
        parse_rfc3339(parts[4]),
        claims(parts[3])["exp"].as_u64().unwrap()
    );
}

#[test]
fn header_and_token_outputs() {
    let case = Case::new();
    let token = case.run(&["get", "-o", "token"]).ok().stdout;
    assert!(token.ends_with('\n') && token.lines().count() == 1);
    let header = case.run(&["get", "-o", "header"]).ok().stdout;
    assert_eq!(header, format!("Authorization: Bearer {}", token));
}

#[test]
fn exec_credential_answers_in_the_callers_api_version() {
    let mut case = Case::new();
    case.set(
        "KUBERNETES_EXEC_INFO",
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#,
    );
    let v = case.run(&["get"]).ok().json();
    assert_eq!(v["apiVersion"], "client.authentication.k8s.io/v1beta1");
}

#[test]
fn lifetime_asks_seatable_for_shorter_tokens() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_LIFETIME", "1h");
    let v = case.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("1h"));
    let exp = parse_rfc3339(v["expires_at"].as_str().unwrap());
    assert!(exp <= now() + 3600 && exp > now() + 3500);
}

/// SeaTable takes `exp` in whole hours or days (`5h`, `3d`): a lifetime in
/// other units is rounded up, said at `-v`; one under an hour is refused.
#[test]
fn lifetime_is_sent_in_whole_hours_rounded_up() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_LIFETIME", "90m");
    let out = case.run(&["get", "-o", "json", "-v"]).ok();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("2h"));
    assert!(
        out.stderr.contains("rounded up") && out.stderr.contains("2h"),
        "{}",
        out.stderr
    );
    let exp = parse_rfc3339(out.json()["expires_at"].as_str().unwrap());
    assert!(exp <= now() + 7200 && exp > now() + 7100);
    case.set("SEATABLE_CRED_LIFETIME", "48h");
    case.run(&["get", "--refresh"]).ok();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("2d"));
    case.set("SEATABLE_CRED_LIFETIME", "30m");
    let out = case.run(&["get", "--refresh"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("SEATABLE_CRED_LIFETIME: must be at least 1h"),
        "{}",
        out.stderr
    );
}

/// A base token outlives the API token it came from: `--lifetime` is at
/// most SeaTable's default, 3 days, unless `--allow-long-lifetime` (flag,
/// environment or profile key).
#[test]
fn a_lifetime_over_three_days_needs_allow_long_lifetime() {
    let mut case = Case::new();
    let exchanges = case.standin.exchanges();
    let out = case.run(&["get", "--lifetime", "4d"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--lifetime: must be at most 3d")
            && out.stderr.contains("--allow-long-lifetime"),
        "{}",
        out.stderr
    );
    assert_eq!(
        case.standin.exchanges(),
        exchanges,
        "refused before any exchange"
    );
    case.run(&["get", "--lifetime", "3d"]).ok();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("3d"));
    case.run(&[
        "get",
        "--refresh",
        "--lifetime",
        "4d",
        "--allow-long-lifetime",
    ])
    .ok();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("4d"));
    case.set("SEATABLE_CRED_ALLOW_LONG_LIFETIME", "1");
    case.run(&["get", "--refresh", "--lifetime", "5d"]).ok();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("5d"));
    case.unset("SEATABLE_CRED_ALLOW_LONG_LIFETIME");
    let config = case.dir.path().join("long.toml");
    std::fs::write(
        &config,
        "[profiles.default]\nlifetime = \"6d\"\nallow_long_lifetime = true\n",
    )
    .unwrap();
    case.set("SEATABLE_CRED_CONFIG", config.to_str().unwrap());
    case.run(&["get", "--refresh"]).ok();
    assert_eq!(case.standin.stats().last_exp.as_deref(), Some("6d"));
}

#[test]
fn expired_entry_is_refreshed() {
    let case = Case::new();
    let first = case.run(&["get", "-o", "token"]).ok();
    assert_eq!(case.standin.exchanges(), 1);
    // The cached token expired a minute ago (as far as the helper knows).
    case.edit_entry(false, |v| {
        v["fetched_at"] = (now() - 3600).into();
        v["expires_at"] = (now() - 60).into();
    });
    let second = case.run(&["get", "-o", "token"]).ok();
    assert_eq!(
        case.standin.exchanges(),
        2,
        "an expired entry is not served"
    );
    assert_ne!(first.stdout, second.stdout);
}

#[test]
fn config_file_profile_works_without_env() {
    let mut case = Case::new();
    let config = case.dir.path().join("seatable.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.crm]\nserver_url = \"{}\"\nvault_addr = \"{}\"\nsecret = \"{}\"\ncache = \"file\"\ncache_dir = \"{}\"\nrefresh_before = \"10m\"\n",
            case.standin.url,
            shared().bao.addr,
            case.secret,
            case.cache_dir().display()
        ),
    )
    .unwrap();
    for name in [
        "SEATABLE_SERVER_URL",
        "VAULT_ADDR",
        "SEATABLE_CRED_SECRET",
        "SEATABLE_CRED_CACHE",
        "SEATABLE_CRED_CACHE_DIR",
    ] {
        case.unset(name);
    }
    let v = case
        .run(&["--config", config.to_str().unwrap(), "-p", "crm", "get"])
        .ok()
        .json();
    let token = v["status"]["token"].as_str().unwrap();
    let exp = claims(token)["exp"].as_u64().unwrap();
    assert_eq!(
        parse_rfc3339(v["status"]["expirationTimestamp"].as_str().unwrap()),
        exp - 600
    );
    // The same profile through the environment variables instead of flags.
    case.set("SEATABLE_CRED_CONFIG", config.to_str().unwrap())
        .set("SEATABLE_CRED_PROFILE", "crm");
    case.run(&["get"]).ok();
    assert_eq!(
        case.standin.exchanges(),
        1,
        "second call answered from the profile's cache"
    );
}

#[test]
fn seatable_4x_response_is_understood() {
    let case = Case::new();
    case.standin
        .update_base(&case.base.api_token, |b| b.v4 = true);
    let v = case.run(&["get", "-o", "json"]).ok().json();
    assert_eq!(
        v["dtable_server"],
        format!("{}/dtable-server/", case.standin.url)
    );
    assert!(v["use_api_gateway"].is_null());
    assert!(
        case.standin
            .accepts(v["token"].as_str().unwrap(), &case.base.dtable_uuid)
    );
}

#[test]
fn https_seatable_with_private_ca() {
    let shared = shared();
    let standin = seatable_standin::Standin::start_tls();
    let mut case = Case::with_standin(shared, standin);
    let ca = case.dir.path().join("seatable-ca.pem");
    std::fs::write(&ca, case.standin.ca_pem.as_ref().unwrap()).unwrap();
    // Without the CA, verification fails (exit 5, no retry loop until the deadline).
    let started = std::time::Instant::now();
    case.run(&["get"]).fails(5, "TLS");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "certificate errors are not retried"
    );
    case.set("SEATABLE_CA_CERT", ca.to_str().unwrap());
    let v = case.run(&["get", "-o", "json"]).ok().json();
    assert!(
        case.standin
            .accepts(v["token"].as_str().unwrap(), &case.base.dtable_uuid)
    );
}
