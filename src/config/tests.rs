//! The resolution's tests: flags over variables over the file over defaults,
//! each origin named — kept beside `mod.rs` so the resolution reads on its own.

use super::*;
use crate::error::Failure;
use std::collections::HashMap;
use std::path::Path;

pub(super) struct FakeEnv(HashMap<&'static str, String>);
impl Env for FakeEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().filter(|v| !v.is_empty())
    }
}
pub(super) fn env(pairs: &[(&'static str, &str)]) -> FakeEnv {
    FakeEnv(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

pub(super) fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

pub(super) fn args_with(config: &Path) -> GlobalArgs {
    GlobalArgs {
        config: Some(config.to_path_buf()),
        ..GlobalArgs::default()
    }
}

fn err_text(r: Result<Profile>) -> String {
    crate::error::one_line(&r.unwrap_err())
}

const BASIC: &str = r#"
[profiles.default]
server_url = "https://file.example.com/"
vault_addr = "https://vault-file:8200"
secret = "secret/seatable/crm"
refresh_before = "10m"

[profiles.crm]
server_url = "https://crm.example.com"
secret = "kv/crm"
auth = "approle"
role_id = "role-123"
secret_id_file = "/run/secrets/sid"
lifetime = "1h"
"#;

#[test]
fn file_values_apply_and_urls_are_normalised() {
    let (_d, path) = write_config(BASIC);
    let p = resolve(&args_with(&path), &env(&[])).unwrap();
    assert_eq!(p.name, "default");
    assert_eq!(p.server_url, "https://file.example.com");
    assert_eq!(p.vault.addr, "https://vault-file:8200");
    assert_eq!(
        p.secret,
        SecretRef {
            mount: "secret".into(),
            path: "seatable/crm".into()
        }
    );
    assert_eq!(p.field, "api_token");
    assert_eq!(p.refresh_before, Duration::from_secs(600));
    assert_eq!(p.timeout, DEFAULT_TIMEOUT);
    assert_eq!(p.lifetime, None);
    assert_eq!(p.cache.backend(), CacheBackend::Auto);
}

#[test]
fn flags_beat_env_beats_file() {
    let (_d, path) = write_config(BASIC);
    let mut args = args_with(&path);
    // clap has already folded SEATABLE_SERVER_URL into the flag value;
    // the Vault address is merged here.
    let p = resolve(
        &args,
        &env(&[
            ("VAULT_ADDR", "https://env-vault:8200"),
            ("BAO_ADDR", "https://bao:1"),
        ]),
    )
    .unwrap();
    assert_eq!(p.vault.addr, "https://env-vault:8200");
    let p = resolve(&args, &env(&[("BAO_ADDR", "https://bao:1")])).unwrap();
    assert_eq!(p.vault.addr, "https://bao:1");
    args.vault_addr = Some("https://flag-vault:8200".into());
    args.refresh_before = Some(Duration::from_secs(30));
    let p = resolve(&args, &env(&[("VAULT_ADDR", "https://env-vault:8200")])).unwrap();
    assert_eq!(p.vault.addr, "https://flag-vault:8200");
    assert_eq!(p.refresh_before, Duration::from_secs(30));
}

#[test]
fn named_profile_with_approle() {
    let (_d, path) = write_config(BASIC);
    let mut args = args_with(&path);
    args.profile = Some("crm".into());
    let p = resolve(&args, &env(&[])).unwrap();
    assert_eq!(p.lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(p.vault.auth_mount, "approle");
    match &p.vault.auth {
        Auth::AppRole { role_id, secret_id } => {
            assert_eq!(role_id, "role-123");
            assert!(
                matches!(secret_id, SecretInput::File(p) if p == Path::new("/run/secrets/sid"))
            );
        }
        other => panic!("unexpected auth {other:?}"),
    }
    // The environment's value beats the config's file.
    let p = resolve(&args, &env(&[("SEATABLE_CRED_SECRET_ID", "sid-value")])).unwrap();
    assert!(matches!(
        &p.vault.auth,
        Auth::AppRole {
            secret_id: SecretInput::Env("SEATABLE_CRED_SECRET_ID", _),
            ..
        }
    ));
}

#[test]
fn unknown_key_names_key_file_and_line() {
    let (_d, path) =
        write_config("[profiles.default]\nserver_url = \"https://x\"\nsever_url = \"typo\"\n");
    let text = err_text(resolve(&args_with(&path), &env(&[])));
    assert!(text.contains("sever_url"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("line 3"), "{text}");
    // The key that was meant, not all thirty.
    assert!(
        text.ends_with("unknown key `sever_url`: did you mean `server_url`?"),
        "{text}"
    );
    let (_d, path) = write_config("[profile.default]\nserver_url = \"https://x\"\n");
    let text = err_text(resolve(&args_with(&path), &env(&[])));
    assert!(text.ends_with("did you mean `profiles`?"), "{text}");
    let (_d, path) = write_config("[profiles.default]\nzzz = 1\n");
    let text = err_text(resolve(&args_with(&path), &env(&[])));
    assert!(
        text.contains("unknown key `zzz`: `seatable-cred --help` lists the settings")
            && !text.contains("`server_url`"),
        "{text}"
    );
}

#[test]
fn broken_toml_is_one_line_usage_error() {
    let (_d, path) = write_config("[profiles.default\nserver_url = ");
    let err = resolve(&args_with(&path), &env(&[])).unwrap_err();
    assert_eq!(crate::error::kind_of(&err), crate::error::Kind::Usage);
    assert!(!crate::error::one_line(&err).contains('\n'));
}

#[test]
fn missing_default_file_is_fine_missing_explicit_file_is_not() {
    let args = GlobalArgs {
        server_url: Some("https://s".into()),
        secret: Some("secret/x".into()),
        ..GlobalArgs::default()
    };
    let home = tempfile::tempdir().unwrap();
    let e = env(&[("HOME", home.path().to_str().unwrap())]);
    assert!(resolve(&args, &e).is_ok());
    let args = GlobalArgs {
        config: Some(home.path().join("nope.toml")),
        ..args
    };
    assert!(err_text(resolve(&args, &e)).contains("nope.toml"));
}

/// The real cause first: a profile the file does not have (with the
/// ones it has), or no file at all — `init` writes one.
#[test]
fn a_missing_profile_is_the_cause_named() {
    let (_d, path) = write_config("[profiles.crm]\nserver_url = \"https://s\"\n[profiles.ops]\n");
    let text = err_text(resolve(&args_with(&path), &env(&[])));
    assert_eq!(
        text,
        format!(
            "profile 'default' is not in {} (it has 'crm', 'ops'): pick one with --profile NAME or SEATABLE_CRED_PROFILE=NAME — or set --server-url or SEATABLE_SERVER_URL for a call without a profile",
            path.display()
        )
    );
    let mut args = args_with(&path);
    args.profile = Some("billing".into());
    args.sources =
        Sources::from_map([("profile".to_string(), Origin::Flag("--profile".into()))].into());
    assert_eq!(
        err_text(resolve(&args, &env(&[]))),
        format!(
            "profile 'billing' (from --profile) is not in {} (it has 'crm', 'ops'): pick one with --profile NAME or SEATABLE_CRED_PROFILE=NAME",
            path.display()
        )
    );
    let home = tempfile::tempdir().unwrap();
    let e = env(&[("HOME", home.path().to_str().unwrap())]);
    let text = err_text(resolve(&GlobalArgs::default(), &e));
    assert!(
        text.starts_with("no SeaTable server and no config file (")
            && text.contains("write a profile with `seatable-cred init`"),
        "{text}"
    );
}

/// A failure about a setting names where its value came from — the
/// file's key and line — or, for a default, where to set it.
#[test]
fn failures_about_a_setting_name_its_origin() {
    let (_d, path) = write_config(
        "[profiles.default]\n# the server\nserver_url = \"https://s\"\n  secret = \"secret/x\"\n",
    );
    let p = resolve(&args_with(&path), &env(&[("VAULT_ADDR", "https://v")])).unwrap();
    let about = |key| -> anyhow::Error { Failure::vault("it failed").about(key).into() };
    assert_eq!(
        crate::error::one_line(&p.name_origin(about("secret"))),
        format!(
            "it failed (set by secret in [profiles.default] of {}, line 4)",
            path.display()
        )
    );
    assert_eq!(
        crate::error::one_line(&p.name_origin(about("vault_addr"))),
        "it failed (set by VAULT_ADDR)"
    );
    let named = p.name_origin(about("field"));
    assert_eq!(
        crate::error::one_line(&named),
        format!(
            "it failed (field: nothing set it, so the default applies; set --field, SEATABLE_CRED_FIELD or field in [profiles.default] of {})",
            path.display()
        )
    );
    assert_eq!(crate::error::kind_of(&named), crate::error::Kind::Vault);
    assert_eq!(crate::error::setting_of(&named), None, "named once");
    let plain: anyhow::Error = Failure::vault("no setting").into();
    assert_eq!(crate::error::one_line(&p.name_origin(plain)), "no setting");
    assert_eq!(
        Origin::Answer("Vault address".into()).to_string(),
        "your answer to 'Vault address'"
    );
}

#[test]
fn missing_settings_say_where_to_set_them() {
    let (_d, path) = write_config("[profiles.default]\nsecret = \"secret/x\"\n");
    let text = err_text(resolve(&args_with(&path), &env(&[])));
    assert!(
        text.contains("--server-url")
            && text.contains("SEATABLE_SERVER_URL")
            && text.contains("server_url"),
        "{text}"
    );
    let mut args = args_with(&path);
    args.server_url = Some("https://s".into());
    args.auth = Some(AuthMethod::Approle);
    let text = err_text(resolve(&args, &env(&[])));
    assert!(text.contains("role-id"), "{text}");
    args.profile = Some("nope".into());
    assert!(err_text(resolve(&args, &env(&[]))).contains("profile 'nope'"));
}

#[test]
fn bad_values_are_rejected() {
    let base = GlobalArgs {
        server_url: Some("https://s".into()),
        secret: Some("secret/x".into()),
        config: Some(PathBuf::from("/nonexistent-dir/none.toml")),
        ..GlobalArgs::default()
    };
    let mut a = base.clone();
    a.config = None;
    a.server_url = Some("ftp://s".into());
    assert!(err_text(resolve(&a, &env(&[]))).contains("https://"));
    a.server_url = Some("https://user:pw@s".into());
    assert!(err_text(resolve(&a, &env(&[]))).contains("credentials"));
    let mut a = base.clone();
    a.config = None;
    a.secret = Some("justmount".into());
    assert!(err_text(resolve(&a, &env(&[]))).contains("MOUNT/PATH"));
    let mut a = base.clone();
    a.config = None;
    assert!(
        err_text(resolve(&a, &env(&[("VAULT_SKIP_VERIFY", "maybe")])))
            .contains("VAULT_SKIP_VERIFY")
    );
    assert!(
        resolve(&a, &env(&[("VAULT_SKIP_VERIFY", "true")]))
            .unwrap()
            .vault
            .skip_verify
    );
}

#[test]
fn token_auth_sources() {
    let args = GlobalArgs {
        server_url: Some("https://s".into()),
        secret: Some("secret/x".into()),
        ..GlobalArgs::default()
    };
    let p = resolve(&args, &env(&[("BAO_TOKEN", "b"), ("HOME", "/h")])).unwrap();
    assert!(matches!(
        p.vault.auth,
        Auth::Token(SecretInput::Env("BAO_TOKEN", _))
    ));
    let p = resolve(&args, &env(&[("HOME", "/h")])).unwrap();
    assert!(
        matches!(p.vault.auth, Auth::Token(SecretInput::FileOr(ref f, _)) if f == Path::new("/h/.vault-token"))
    );
}

#[test]
fn a_vault_token_file_is_where_the_token_comes_from_and_names_its_origin() {
    let base = GlobalArgs {
        server_url: Some("https://s".into()),
        secret: Some("secret/x".into()),
        ..GlobalArgs::default()
    };
    let sink = Path::new("/run/agent/token");
    // The flag (or its variable, which clap folds into it) — VAULT_TOKEN
    // and BAO_TOKEN are then not looked at.
    let mut args = base.clone();
    args.vault_token_file = Some(sink.into());
    let p = resolve(&args, &env(&[("VAULT_TOKEN", "t"), ("HOME", "/h")])).unwrap();
    match &p.vault.auth {
        Auth::Token(input @ SecretInput::TokenFile(path, origin)) => {
            assert_eq!(path, sink);
            assert_eq!(origin, &Origin::Flag("--vault-token-file".into()));
            assert_eq!(
                format!("from {}", input.source()),
                "from /run/agent/token (set by --vault-token-file)"
            );
        }
        other => panic!("{other:?}"),
    }
    // The profile's key, named with its file.
    let (_d, path) = write_config(
        "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nvault_token_file = \"/run/agent/token\"\n",
    );
    let p = resolve(&args_with(&path), &env(&[("BAO_TOKEN", "b")])).unwrap();
    match &p.vault.auth {
        Auth::Token(input @ SecretInput::TokenFile(..)) => assert_eq!(
            format!("from {}", input.source()),
            format!(
                "from /run/agent/token (set by vault_token_file in [profiles.default] of {}, line 4)",
                path.display()
            )
        ),
        other => panic!("{other:?}"),
    }
    // A token file for another login is a mistake, said with both origins.
    let mut args = args.clone();
    args.auth = Some(AuthMethod::None);
    let text = err_text(resolve(&args, &env(&[])));
    assert_eq!(
        text,
        "--vault-token-file: a Vault token file is for --auth token, not --auth none (set by --auth): drop one of them"
    );
}

#[test]
fn auth_none_reads_no_token() {
    let args = GlobalArgs {
        server_url: Some("https://s".into()),
        secret: Some("secret/x".into()),
        auth: Some(AuthMethod::None),
        ..GlobalArgs::default()
    };
    let p = resolve(&args, &env(&[("VAULT_TOKEN", "t"), ("HOME", "/h")])).unwrap();
    assert!(matches!(p.vault.auth, Auth::None));
    assert_eq!(p.vault.auth_method.name(), "none");
    let (_d, path) = write_config(
        "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nauth = \"none\"\n",
    );
    let p = resolve(&args_with(&path), &env(&[])).unwrap();
    assert!(matches!(p.vault.auth, Auth::None));
}

#[test]
fn plain_http_beyond_loopback_needs_allow_http() {
    let args = |url: &str| GlobalArgs {
        server_url: Some(url.into()),
        secret: Some("secret/x".into()),
        ..GlobalArgs::default()
    };
    let e = env(&[("VAULT_ADDR", "https://v")]);
    let text = err_text(resolve(&args("http://seatable.example.com"), &e));
    assert!(
        text.starts_with("--server-url: 'http://seatable.example.com' is plain HTTP")
            && text.contains("--allow-http")
            && text.contains("SEATABLE_CRED_ALLOW_HTTP"),
        "{text}"
    );
    assert!(resolve(&args("http://127.0.0.1:9"), &e).is_ok());
    assert!(resolve(&args("https://seatable.example.com"), &e).is_ok());
    let mut allowed = args("http://seatable.example.com");
    allowed.allow_http = true;
    let p = resolve(&allowed, &e).unwrap();
    assert_eq!(p.allow_http, Some(Origin::Flag("--allow-http".into())));
    let vault = env(&[("BAO_ADDR", "http://vault.example.com:8200")]);
    let text = err_text(resolve(&args("https://s"), &vault));
    assert!(
        text.starts_with("BAO_ADDR: 'http://vault.example.com:8200'"),
        "{text}"
    );
}

/// `lifetime` is whole hours or days, at least 1h and at most 3d
/// (SeaTable's default) unless `allow_long_lifetime`, from any source.
#[test]
fn lifetime_is_between_an_hour_and_three_days_unless_allowed() {
    let (_d, path) =
        write_config("[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\n");
    let mut a = args_with(&path);
    for ok in [3600, 90 * 60, 3 * 24 * 3600] {
        a.lifetime = Some(Duration::from_secs(ok));
        assert!(resolve(&a, &env(&[])).is_ok(), "{ok}");
    }
    a.lifetime = Some(Duration::from_secs(59 * 60));
    assert!(err_text(resolve(&a, &env(&[]))).contains("at least 1h"));
    a.lifetime = Some(Duration::from_secs(3 * 24 * 3600 + 1));
    let text = err_text(resolve(&a, &env(&[])));
    assert!(
        text.starts_with("--lifetime: must be at most 3d")
            && text.contains("--allow-long-lifetime")
            && text.contains("SEATABLE_CRED_ALLOW_LONG_LIFETIME")
            && text.contains("allow_long_lifetime"),
        "{text}"
    );
    a.allow_long_lifetime = true;
    let p = resolve(&a, &env(&[])).unwrap();
    assert_eq!(
        p.allow_long_lifetime,
        Some(Origin::Flag("--allow-long-lifetime".into()))
    );
    let (_d, path) = write_config(
        "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nlifetime = \"7d\"\nallow_long_lifetime = true\n",
    );
    let p = resolve(&args_with(&path), &env(&[])).unwrap();
    assert_eq!(p.lifetime, Some(Duration::from_secs(7 * 24 * 3600)));
    let (_d, path) = write_config(
        "[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\nlifetime = \"7d\"\n",
    );
    assert!(err_text(resolve(&args_with(&path), &env(&[]))).contains("at most 3d"));
}

#[test]
fn messages_name_the_true_origin() {
    let (_d, path) = write_config(
        "[profiles.default]\nlifetime = \"3s\"\nserver_url = \"https://s\"\nsecret = \"secret/x\"\n",
    );
    let text = err_text(resolve(&args_with(&path), &env(&[])));
    assert_eq!(
        text,
        format!(
            "lifetime in [profiles.default] of {}, line 2: must be at least 1h: SeaTable issues base tokens for whole hours or days",
            path.display()
        )
    );
    let mut args = args_with(&path);
    args.lifetime = Some(Duration::from_secs(3));
    assert_eq!(
        err_text(resolve(&args, &env(&[]))),
        "--lifetime: must be at least 1h: SeaTable issues base tokens for whole hours or days"
    );
    let mut sources = std::collections::BTreeMap::new();
    sources.insert(
        "lifetime".to_string(),
        Origin::Env("SEATABLE_CRED_LIFETIME".into()),
    );
    args.sources = crate::config::Sources::from_map(sources);
    assert_eq!(
        err_text(resolve(&args, &env(&[]))),
        "SEATABLE_CRED_LIFETIME: must be at least 1h: SeaTable issues base tokens for whole hours or days"
    );
    args.lifetime = Some(Duration::from_secs(366 * 24 * 3600));
    args.allow_long_lifetime = true;
    assert!(err_text(resolve(&args, &env(&[]))).contains("at most 365d"));
    let (_d, path) =
        write_config("[profiles.default]\nserver_url = \"https://s\"\nsecret = \"secret/x\"\n");
    let args = args_with(&path);
    let p = resolve(&args, &env(&[("BAO_ADDR", "https://b")])).unwrap();
    assert_eq!(p.origin("vault_addr"), Origin::Env("BAO_ADDR".into()));
    assert_eq!(p.origin("vault_namespace"), Origin::Default);
    assert!(matches!(
        p.origin("server_url"),
        Origin::File {
            key: "server_url",
            ..
        }
    ));
    let p = resolve(&args, &env(&[])).unwrap();
    assert_eq!(p.origin("vault_addr"), Origin::Default);
    assert_eq!(p.vault.addr, DEFAULT_VAULT_ADDR);
}

/// What `init` checks: flags and environment only, never the table it
/// is about to replace.
#[test]
fn unwritten_profiles_ignore_the_file() {
    let (_d, path) = write_config(BASIC);
    let mut args = args_with(&path);
    args.profile = Some("crm".into());
    args.server_url = Some("https://flag.example.com".into());
    args.secret = Some("secret/x".into());
    let p = resolve_unwritten(&args, &env(&[("VAULT_ADDR", "https://v")])).unwrap();
    assert_eq!(p.lifetime, None, "not the file's 1h");
    assert_eq!(
        p.vault.auth_method,
        AuthMethod::Token,
        "not the file's approle"
    );
    assert_eq!(p.origin("server_url"), Origin::Flag("--server-url".into()));
    let v = resolve_vault_unwritten(&args, &env(&[("VAULT_ADDR", "https://v")])).unwrap();
    assert_eq!(v.addr, "https://v");
}

#[test]
fn secret_ref_parsing() {
    assert_eq!(
        SecretRef::parse("/secret/a/b/").unwrap().to_string(),
        "secret/a/b"
    );
    assert!(SecretRef::parse("secret").is_none());
    assert!(SecretRef::parse("secret/").is_none());
    assert!(SecretRef::parse("secret//x").is_none());
}
