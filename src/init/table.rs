//! The profile's table in the config file, made from the profile `init`
//! checked — so what `get` reads back is what was checked.

use std::path::Path;

use anyhow::Result;
use toml_edit::{Table, value};

use crate::config::{self, Auth, Origin, Profile, SecretInput};
use crate::error::Failure;

/// The profile's table: every setting an answer, a flag or a variable set
/// — never a secret value; files are named instead.
pub(super) fn of(p: &Profile) -> Result<Table> {
    let set = |key: &str| p.origin(key) != Origin::Default;
    let path = |key: &str, path: &Path| -> Result<toml_edit::Item> {
        let absolute = std::path::absolute(path)?;
        let text = absolute.to_str().ok_or_else(|| {
            Failure::usage(format!(
                "{key}: {} is not UTF-8, which TOML cannot hold: use another path",
                absolute.display()
            ))
        })?;
        Ok(value(text))
    };
    let mut t = Table::new();
    t.insert("server_url", value(&p.server_url));
    if let Some(ca) = &p.ca_cert {
        t.insert("ca_cert", path("ca_cert", ca)?);
    }
    t.insert("vault_addr", value(&p.vault.addr));
    if let Some(ns) = &p.vault.namespace {
        t.insert("vault_namespace", value(ns));
    }
    for (key, file) in [
        ("vault_ca_cert", &p.vault.ca_cert),
        ("vault_ca_path", &p.vault.ca_path),
        ("vault_client_cert", &p.vault.client_cert),
        ("vault_client_key", &p.vault.client_key),
    ] {
        if let Some(file) = file {
            t.insert(key, path(key, file)?);
        }
    }
    t.insert("secret", value(p.secret.to_string()));
    t.insert("field", value(&p.field));
    if let Some(v) = p.kv_version {
        t.insert("kv_version", value(i64::from(v)));
    }
    let method = p.vault.auth_method;
    t.insert("auth", value(method.name()));
    if p.vault.auth_mount != method.name() {
        t.insert("auth_mount", value(&p.vault.auth_mount));
    }
    match &p.vault.auth {
        Auth::Token(SecretInput::TokenFile(file, _)) => {
            t.insert("vault_token_file", path("vault_token_file", file)?);
        }
        Auth::Token(_) | Auth::None => {}
        Auth::AppRole { role_id, secret_id } => {
            t.insert("role_id", value(role_id));
            if let SecretInput::File(file) = secret_id {
                t.insert("secret_id_file", path("secret_id_file", file)?);
            }
        }
        Auth::Kubernetes { role, jwt } => {
            t.insert("role", value(role));
            if let SecretInput::File(file) = jwt
                && file != Path::new(config::KUBERNETES_SA_TOKEN)
            {
                t.insert("jwt_file", path("jwt_file", file)?);
            }
        }
        Auth::Jwt { role, jwt } => {
            if let Some(role) = role {
                t.insert("role", value(role));
            }
            if let SecretInput::File(file) = jwt {
                t.insert("jwt_file", path("jwt_file", file)?);
            }
        }
        Auth::Userpass { username, .. } => {
            t.insert("username", value(username));
        }
        Auth::Cert { role } => {
            if let Some(role) = role {
                t.insert("role", value(role));
            }
        }
    }
    t.insert("cache", value(p.cache.backend().name()));
    if let Some(dir) = &p.cache.dir {
        t.insert("cache_dir", path("cache_dir", dir)?);
    }
    if let Some(shared) = &p.cache.shared {
        t.insert("shared_cache", value(shared.to_string()));
    }
    if p.cache.allow_disk {
        t.insert("allow_disk_cache", value(true));
    }
    if p.allow_http.is_some() {
        t.insert("allow_http", value(true));
    }
    if p.allow_long_lifetime.is_some() && p.lifetime.is_some() && set("lifetime") {
        t.insert("allow_long_lifetime", value(true));
    }
    for (key, duration) in [
        ("refresh_before", Some(p.refresh_before)),
        ("lifetime", p.lifetime),
        ("timeout", Some(p.timeout)),
    ] {
        if let Some(d) = duration
            && set(key)
        {
            t.insert(key, value(crate::time::compact(d)));
        }
    }
    // What `get` would make of the table is what was checked.
    Ok(t)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::config::{AuthMethod, CacheBackend, GlobalArgs};
    use crate::config::{Env, resolve_unwritten};

    struct FakeEnv(HashMap<&'static str, &'static str>);
    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn text(args: &GlobalArgs, env: &[(&'static str, &'static str)]) -> String {
        let profile = resolve_unwritten(args, &FakeEnv(env.iter().copied().collect())).unwrap();
        super::of(&profile).unwrap().to_string()
    }

    fn base() -> GlobalArgs {
        GlobalArgs {
            server_url: Some("https://s.example.com/".into()),
            vault_addr: Some("https://v.example.com:8200".into()),
            secret: Some("secret/seatable/crm".into()),
            field: Some("api_token".into()),
            ..GlobalArgs::default()
        }
    }

    #[test]
    fn names_files_never_secret_values() {
        let args = GlobalArgs {
            auth: Some(AuthMethod::Approle),
            auth_mount: Some("team-approle".into()),
            role_id: Some("role-1".into()),
            cache: Some(CacheBackend::File),
            cache_dir: Some(PathBuf::from("relative/cache")),
            lifetime: Some(Duration::from_secs(3600)),
            ..base()
        };
        let env = [
            ("SEATABLE_CRED_SECRET_ID", "SECRET-ID-VALUE"),
            ("VAULT_NAMESPACE", "team"),
            ("VAULT_TOKEN", "VAULT-TOKEN-VALUE"),
        ];
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            text(&args, &env),
            format!(
                "server_url = \"https://s.example.com\"\nvault_addr = \"https://v.example.com:8200\"\nvault_namespace = \"team\"\nsecret = \"secret/seatable/crm\"\nfield = \"api_token\"\nauth = \"approle\"\nauth_mount = \"team-approle\"\nrole_id = \"role-1\"\ncache = \"file\"\ncache_dir = \"{}\"\nlifetime = \"1h\"\n",
                cwd.join("relative/cache").display()
            )
        );
        // With the secret-id in a file, the file is named.
        let args = GlobalArgs {
            secret_id_file: Some(PathBuf::from("/run/secrets/sid")),
            ..args
        };
        assert!(text(&args, &env).contains("secret_id_file = \"/run/secrets/sid\"\n"));
    }

    #[test]
    fn defaults_nobody_set_are_left_out() {
        let args = GlobalArgs {
            auth: Some(AuthMethod::Kubernetes),
            role: Some("app".into()),
            cache: Some(CacheBackend::Auto),
            ..base()
        };
        assert_eq!(
            text(&args, &[]),
            "server_url = \"https://s.example.com\"\nvault_addr = \"https://v.example.com:8200\"\nsecret = \"secret/seatable/crm\"\nfield = \"api_token\"\nauth = \"kubernetes\"\nrole = \"app\"\ncache = \"auto\"\n"
        );
    }
}
