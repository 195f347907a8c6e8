//! `init`: a working profile in one go (SPEC §3).
//!
//! It asks, step by step, for what a profile needs — the SeaTable server, the
//! Vault address, the cache, the Vault login, the secret and its field — and
//! checks each answer with `doctor`'s own checks before it moves on, so a
//! wrong answer is asked again with the reason while the user still knows
//! what they typed. Only once the API token has exchanged is the profile
//! written, and the snippets for kubectl, git and Python printed on stdout.
//!
//! No secret value is asked for, shown or written: secret-ids, JWTs and
//! passwords stay in their files or the environment, and the profile names
//! only the files. A userpass login's password, which the login check needs,
//! comes from `SEATABLE_CRED_PASSWORD` or a prompt without echo and lives in
//! memory for the checks only.
//!
//! ```text
//! ask.rs          where answers come from: flags, environment, defaults, the terminal
//! terminal.rs     /dev/tty: prompts and lines, a hidden answer
//! config_file.rs  the config file, edited with toml_edit
//! snippets.rs     kubeconfig, ~/.gitconfig, Python
//! ```

mod ask;
mod config_file;
mod snippets;
mod terminal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use secrecy::{ExposeSecret, SecretString};
use toml_edit::{Table, value};

use crate::cache::Cache;
use crate::cli::{AuthMethod, CacheBackend, GlobalArgs, InitArgs};
use crate::commands::doctor;
use crate::config::{
    self, Auth, CacheSettings, Env, Origin, ProcessEnv, Profile, SecretInput, SecretRef,
};
use crate::error::{Failure, Kind, kind_of, status_of};
use ask::{Asker, Question, Round};
use config_file::ConfigFile;

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<u8> {
    let name = global
        .profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    check_name(&name)?;
    let default_path = config::default_config_path(&ProcessEnv);
    let path = match (&global.config, &default_path) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => path.clone(),
        (None, None) => {
            return Err(Failure::usage(
                "no place for the config file: HOME is not set; name a file with --config",
            )
            .into());
        }
    };
    // Refusals come before any question.
    let file = ConfigFile::load(&path)?;
    if file.has_profile(&name) && !args.force {
        return Err(config_file::exists(&name, &path).into());
    }

    let mut asker = Asker::new(terminal::Terminal::open(), args.yes);
    asker.say(&format!("Writing profile '{name}' to {}.", path.display()));
    asker.tell(
        "Each answer is checked before the next question; Enter takes the value in [brackets].\n\
         No secret is asked for or written: secret-ids, JWTs and passwords stay in files or the environment.",
    );
    crate::http::install_provider();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the network runtime: {e}")))?;
    let mut init = Init {
        global,
        answers: global.clone(),
        env: InitEnv { password: None },
        asker,
        runtime,
        timeout: global.timeout.unwrap_or(config::DEFAULT_TIMEOUT),
    };
    init.server()?;
    init.vault()?;
    let cache = init.cache()?;
    init.login(&cache)?;
    let profile = init.secret_and_exchange(&cache)?;

    // Read again: the file may have changed while the questions were answered.
    let mut file = ConfigFile::load(&path)?;
    file.set_profile(&name, table_of(&profile)?, args.force)?;
    file.save()?;
    init.asker.passed(
        "written",
        &format!("[profiles.{name}] in {} (mode 0600)", file.path().display()),
    );
    let shown_config = match (&global.config, &default_path) {
        (Some(given), Some(default)) if given == default => None,
        (Some(given), _) => Some(std::path::absolute(given).unwrap_or_else(|_| given.clone())),
        (None, _) => None,
    };
    let target = snippets::Target {
        profile: &name,
        config: shown_config.as_deref(),
        server_url: &profile.server_url,
    };
    crate::commands::print(&format!(
        "# [profiles.{name}] written to {}\n\n{}",
        file.path().display(),
        snippets::render(&target)
    ))?;
    Ok(0)
}

/// Profile names appear in the snippets (shell words, YAML, Python): plain
/// names only.
fn check_name(name: &str) -> Result<(), Failure> {
    let plain = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "--profile '{}': init writes profiles named with letters, digits, '.', '_' and '-' (at most 64)",
            name.chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect::<String>()
        )))
    }
}

/// The environment, plus a password typed for the login check — as if it
/// were in `SEATABLE_CRED_PASSWORD`, which is where `get` looks for it.
struct InitEnv {
    password: Option<SecretString>,
}

impl Env for InitEnv {
    fn var(&self, name: &str) -> Option<String> {
        match &self.password {
            Some(p) if name == "SEATABLE_CRED_PASSWORD" => Some(p.expose_secret().to_string()),
            _ => ProcessEnv.var(name),
        }
    }
}

struct Init<'a> {
    global: &'a GlobalArgs,
    /// The settings answered so far, as if given as flags.
    answers: GlobalArgs,
    env: InitEnv,
    asker: Asker,
    runtime: tokio::runtime::Runtime,
    timeout: Duration,
}

/// Of an option clap reads from a flag or its variable: the flag's value
/// (an answer) and the variable's (a proposal).
fn split<T: Clone>(global: &GlobalArgs, id: &str, value: &Option<T>) -> (Option<T>, Option<T>) {
    match global.sources.get(id) {
        Some(Origin::Env(_)) => (None, value.clone()),
        _ => (value.clone(), None),
    }
}

/// What to propose when a question is asked again: the answer that failed
/// its check — worth another try once the server is fixed — unless it was
/// malformed.
fn retry_with(err: &anyhow::Error, answer: String) -> Option<String> {
    (kind_of(err) != Kind::Usage).then_some(answer)
}

fn round<'p>(again: bool, previous: Option<&'p String>) -> Round<'p> {
    if again {
        Round::Again(previous.map(String::as_str))
    } else {
        Round::First
    }
}

impl Init<'_> {
    fn allow_http(&self) -> Option<Origin> {
        self.global.allow_http.then(|| {
            self.global
                .sources
                .get("allow_http")
                .cloned()
                .unwrap_or_else(|| Origin::Flag("--allow-http".into()))
        })
    }

    fn ask(&mut self, q: &Question, round: Round<'_>) -> Result<Option<ask::Answer>> {
        self.asker.answer(q, round)
    }

    /// A question that must be answered.
    fn need(&mut self, q: &Question, round: Round<'_>) -> Result<ask::Answer> {
        Ok(self
            .ask(q, round)?
            .expect("a question without an empty answer is answered"))
    }

    fn server(&mut self) -> Result<()> {
        let (flag, env) = split(self.global, "server_url", &self.global.server_url);
        let q = Question::new("SeaTable server URL", "--server-url or SEATABLE_SERVER_URL")
            .given(flag, "--server-url")
            .proposed(env, "SEATABLE_SERVER_URL")
            .example("https://cloud.seatable.io");
        let (mut again, mut previous): (bool, Option<String>) = (false, None);
        loop {
            let answer = self.need(&q, round(again, previous.as_ref()))?;
            again = true;
            let checked = config::check_address(
                &answer.value,
                &answer.origin(),
                "the API token",
                self.allow_http().as_ref(),
            )
            .map_err(anyhow::Error::from)
            .and_then(|url| {
                let ca = self.global.ca_cert.as_deref();
                let (text, _) = self
                    .runtime
                    .block_on(doctor::seatable(&url, ca, self.timeout))?;
                Ok((url, text))
            });
            match checked {
                Ok((url, text)) => {
                    self.asker.passed("seatable", &text);
                    self.answers.server_url = Some(url);
                    return Ok(());
                }
                Err(e) => {
                    previous = retry_with(&e, answer.value);
                    self.asker.failed("seatable", e)?;
                }
            }
        }
    }

    fn vault(&mut self) -> Result<()> {
        let env = ["VAULT_ADDR", "BAO_ADDR"]
            .into_iter()
            .find_map(|name| ProcessEnv.var(name).map(|v| (v, name)));
        let q = Question::new("Vault address", "--vault-addr, VAULT_ADDR or BAO_ADDR")
            .given(self.global.vault_addr.clone(), "--vault-addr")
            .proposed(
                env.as_ref().map(|(v, _)| v.clone()),
                env.as_ref().map_or("", |(_, n)| n),
            )
            .example("https://vault.example.com:8200");
        let (mut again, mut previous): (bool, Option<String>) = (false, None);
        loop {
            let answer = self.need(&q, round(again, previous.as_ref()))?;
            again = true;
            let checked = config::check_address(
                &answer.value,
                &answer.origin(),
                "the Vault token",
                self.allow_http().as_ref(),
            )
            .map_err(anyhow::Error::from)
            .and_then(|url| {
                // Only the address and its TLS settings matter here; the
                // login is the next step's.
                let mut probe = self.answers.clone();
                probe.vault_addr = Some(url.clone());
                probe.auth = Some(AuthMethod::Token);
                probe.auth_mount = None;
                let v = config::resolve_vault_unwritten(&probe, &self.env)?;
                let (text, _) = self.runtime.block_on(doctor::vault(&v, self.timeout))?;
                Ok((url, text))
            });
            match checked {
                Ok((url, text)) => {
                    self.asker.passed("vault", &text);
                    self.answers.vault_addr = Some(url);
                    return Ok(());
                }
                Err(e) => {
                    previous = retry_with(&e, answer.value);
                    self.asker.failed("vault", e)?;
                }
            }
        }
    }

    fn cache(&mut self) -> Result<Cache> {
        let (flag, env) = split(self.global, "cache", &self.global.cache);
        let (flag_shared, env_shared) =
            split(self.global, "shared_cache", &self.global.shared_cache);
        let dir_origin = match &self.global.cache_dir {
            Some(_) => self
                .global
                .sources
                .get("cache_dir")
                .cloned()
                .unwrap_or_else(|| Origin::Flag("--cache-dir".into())),
            None => Origin::Default,
        };
        let settings = |backend, shared| CacheSettings {
            backend,
            dir: self.global.cache_dir.clone(),
            dir_origin: dir_origin.clone(),
            allow_disk: self.global.allow_disk_cache,
            shared,
        };
        let auto_here =
            Cache::open(&settings(CacheBackend::Auto, None)).map_or("nothing usable", |c| c.name());
        let q = Question::new(
            format!("Cache backend: auto ({auto_here} here), keyring, file, vault or none"),
            "--cache or SEATABLE_CRED_CACHE",
        )
        .given(flag.map(|b| b.name().to_string()), "--cache")
        .proposed(env.map(|b| b.name().to_string()), "SEATABLE_CRED_CACHE")
        .proposed(Some("auto".to_string()), "default");
        let shared_q = Question::new(
            "Shared cache in Vault, a KV v2 MOUNT/PATH",
            "--shared-cache or SEATABLE_CRED_SHARED_CACHE",
        )
        .given(flag_shared, "--shared-cache")
        .proposed(env_shared, "SEATABLE_CRED_SHARED_CACHE")
        .example("secret/seatable-cred/cache");
        let (mut again, mut previous) = (false, None);
        let (mut shared_again, mut previous_shared) = (false, None);
        loop {
            let answer = self.need(&q, round(again, previous.as_ref()))?;
            again = true;
            previous = None;
            let Ok(backend) = CacheBackend::from_str(&answer.value, true) else {
                self.asker.failed(
                    "cache",
                    Failure::usage(format!(
                        "{}: '{}' is not one of auto, keyring, file, vault, none",
                        answer.from, answer.value
                    ))
                    .into(),
                )?;
                continue;
            };
            previous = Some(answer.value);
            let mut shared = None;
            if backend == CacheBackend::Vault {
                let answer = self.need(&shared_q, round(shared_again, previous_shared.as_ref()))?;
                shared_again = true;
                previous_shared = None;
                match SecretRef::parse(&answer.value) {
                    Some(path) => {
                        shared = Some(path);
                        previous_shared = Some(answer.value);
                    }
                    None => {
                        self.asker.failed(
                            "cache",
                            Failure::usage(format!(
                                "{}: '{}' is not MOUNT/PATH of a KV v2 mount, e.g. secret/seatable-cred/cache",
                                answer.from, answer.value
                            ))
                            .into(),
                        )?;
                        continue;
                    }
                }
            }
            match doctor::cache(&settings(backend, shared.clone())) {
                Ok((cache, text)) => {
                    self.asker.passed("cache", &text);
                    self.answers.cache = Some(backend);
                    self.answers.shared_cache = shared.map(|s| s.to_string());
                    return Ok(cache);
                }
                Err(e) => self.asker.failed("cache", e)?,
            }
        }
    }

    fn login(&mut self, cache: &Cache) -> Result<()> {
        let g = self.global;
        let (flag, env) = split(g, "auth", &g.auth);
        let method_q = Question::new(
            "Vault auth method: token, approle, kubernetes, jwt, userpass or cert",
            "--auth or SEATABLE_CRED_AUTH",
        )
        .given(flag.map(|m| m.name().to_string()), "--auth")
        .proposed(env.map(|m| m.name().to_string()), "SEATABLE_CRED_AUTH")
        .proposed(Some("token".to_string()), "default");
        let mut previous: std::collections::BTreeMap<&'static str, String> = Default::default();
        let mut again = false;
        loop {
            let answer = self.need(&method_q, round(again, previous.get("auth")))?;
            previous.remove("auth");
            let was_again = again;
            again = true;
            let Ok(method) = AuthMethod::from_str(&answer.value, true) else {
                self.asker.failed(
                    "login",
                    Failure::usage(format!(
                        "{}: '{}' is not one of token, approle, kubernetes, jwt, userpass, cert",
                        answer.from, answer.value
                    ))
                    .into(),
                )?;
                continue;
            };
            previous.insert("auth", answer.value.clone());
            let a = &mut self.answers;
            a.auth = Some(method);
            a.auth_mount = None;
            a.role = None;
            a.role_id = None;
            a.secret_id_file = None;
            a.jwt_file = None;
            a.username = None;
            // A file that is not there: asked again.
            if let Err(e) = self.login_settings(method, &mut previous, was_again)? {
                self.asker.failed("login", e)?;
                continue;
            }
            let checked = config::resolve_vault_unwritten(&self.answers, &self.env).and_then(|v| {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.runtime.block_on(async {
                    doctor::login(&v, cache, deadline)
                        .await
                        .map(|(_, text)| text)
                })
            });
            match checked {
                Ok(text) => {
                    self.asker.passed("login", &text);
                    if let Some(note) = self.runtime_only_secret(method) {
                        self.asker.say(&note);
                    }
                    return Ok(());
                }
                Err(e) => self.asker.failed("login", e)?,
            }
        }
    }

    /// The settings of `method`: its mount and what identifies the login
    /// (never a secret value — only the files that hold them). The inner
    /// error is an answer to ask again; the outer one ends `init`.
    fn login_settings(
        &mut self,
        method: AuthMethod,
        previous: &mut std::collections::BTreeMap<&'static str, String>,
        again: bool,
    ) -> Result<Result<()>> {
        let g = self.global;
        let mut ask = |this: &mut Self, key: &'static str, q: Question| -> Result<Option<String>> {
            let answer = this.ask(&q, round(again, previous.get(key)))?;
            match &answer {
                Some(a) => previous.insert(key, a.value.clone()),
                None => previous.remove(key),
            };
            Ok(answer.map(|a| a.value))
        };
        if method != AuthMethod::Token {
            let (flag, env) = split(g, "auth_mount", &g.auth_mount);
            let mount = ask(
                self,
                "auth_mount",
                Question::new(
                    "Auth mount path",
                    "--auth-mount or SEATABLE_CRED_AUTH_MOUNT",
                )
                .given(flag, "--auth-mount")
                .proposed(env, "SEATABLE_CRED_AUTH_MOUNT")
                .proposed(Some(method.name().to_string()), "default"),
            )?;
            self.answers.auth_mount = mount.filter(|m| m.trim_matches('/') != method.name());
        }
        let (role_flag, role_env) = split(g, "role", &g.role);
        let role_q = |prompt: &str| {
            Question::new(prompt, "--role or SEATABLE_CRED_ROLE")
                .given(role_flag.clone(), "--role")
                .proposed(role_env.clone(), "SEATABLE_CRED_ROLE")
        };
        let file_q = |prompt: &str, flag: &Option<PathBuf>, set_with: &str, flag_name: &str| {
            Question::new(prompt, set_with)
                .given(flag.as_ref().map(|p| p.display().to_string()), flag_name)
        };
        let secret_env = |name: &str| ProcessEnv.var(name).is_some();
        match method {
            AuthMethod::Token => {}
            AuthMethod::Approle => {
                let (flag, env) = split(g, "role_id", &g.role_id);
                self.answers.role_id = ask(
                    self,
                    "role_id",
                    Question::new("AppRole role-id", "--role-id or SEATABLE_CRED_ROLE_ID")
                        .given(flag, "--role-id")
                        .proposed(env, "SEATABLE_CRED_ROLE_ID"),
                )?;
                let empty = if secret_env("SEATABLE_CRED_SECRET_ID") {
                    "the secret-id in SEATABLE_CRED_SECRET_ID, where the helper runs"
                } else {
                    "none, for a role with bind_secret_id = false"
                };
                let file = ask(
                    self,
                    "secret_id_file",
                    file_q(
                        "File holding the AppRole secret-id",
                        &g.secret_id_file,
                        "--secret-id-file (or the secret-id in SEATABLE_CRED_SECRET_ID)",
                        "--secret-id-file",
                    )
                    .optional(empty),
                )?;
                match file
                    .map(|f| secret_file(&f, "the AppRole secret-id"))
                    .transpose()
                {
                    Ok(file) => self.answers.secret_id_file = file,
                    Err(e) => return Ok(Err(forget(previous, "secret_id_file", e))),
                }
            }
            AuthMethod::Kubernetes => {
                self.answers.role = ask(self, "role", role_q("Kubernetes role"))?;
                let file = ask(
                    self,
                    "jwt_file",
                    file_q(
                        "File holding the service-account token",
                        &g.jwt_file,
                        "--jwt-file",
                        "--jwt-file",
                    )
                    .proposed(Some(config::KUBERNETES_SA_TOKEN.to_string()), "default"),
                )?;
                match file
                    .map(|f| secret_file(&f, "the service-account token"))
                    .transpose()
                {
                    Ok(file) => self.answers.jwt_file = file,
                    Err(e) => return Ok(Err(forget(previous, "jwt_file", e))),
                }
            }
            AuthMethod::Jwt => {
                self.answers.role = ask(
                    self,
                    "role",
                    role_q("JWT role").optional("the mount's default role"),
                )?;
                let mut q = file_q(
                    "File holding the JWT",
                    &g.jwt_file,
                    "--jwt-file (or the JWT in SEATABLE_CRED_JWT)",
                    "--jwt-file",
                );
                if secret_env("SEATABLE_CRED_JWT") {
                    q = q.optional("the JWT in SEATABLE_CRED_JWT, where the helper runs");
                }
                let file = ask(self, "jwt_file", q)?;
                match file.map(|f| secret_file(&f, "the JWT")).transpose() {
                    Ok(file) => self.answers.jwt_file = file,
                    Err(e) => return Ok(Err(forget(previous, "jwt_file", e))),
                }
            }
            AuthMethod::Userpass => {
                let (flag, env) = split(g, "username", &g.username);
                let username = ask(
                    self,
                    "username",
                    Question::new("Vault username", "--username or SEATABLE_CRED_USERNAME")
                        .given(flag, "--username")
                        .proposed(env, "SEATABLE_CRED_USERNAME"),
                )?;
                // The password: SEATABLE_CRED_PASSWORD, else asked without
                // echo — and asked again when the login failed.
                if again || !secret_env("SEATABLE_CRED_PASSWORD") {
                    let user = username.clone().unwrap_or_default();
                    let password = self.asker.hidden(
                        &format!("Password of Vault user {user} (not shown, never stored): "),
                        "the password in SEATABLE_CRED_PASSWORD",
                    )?;
                    self.env.password = Some(password);
                }
                self.answers.username = username;
            }
            AuthMethod::Cert => {
                self.answers.role = ask(
                    self,
                    "role",
                    role_q("Cert role").optional("any role whose certificate matches"),
                )?;
            }
        }
        Ok(Ok(()))
    }

    /// What the written profile leaves to the environment where the helper
    /// runs (the secret values themselves), said once the login worked.
    fn runtime_only_secret(&self, method: AuthMethod) -> Option<String> {
        let a = &self.answers;
        let (what, variable) = match method {
            AuthMethod::Approle if a.secret_id_file.is_none() => {
                ("AppRole secret-id", "SEATABLE_CRED_SECRET_ID")
            }
            AuthMethod::Jwt if a.jwt_file.is_none() => ("JWT", "SEATABLE_CRED_JWT"),
            AuthMethod::Userpass => ("password", "SEATABLE_CRED_PASSWORD"),
            AuthMethod::Token => {
                return Some(
                    "note      the Vault token is not written: the helper reads VAULT_TOKEN, BAO_TOKEN or ~/.vault-token where it runs".into(),
                );
            }
            _ => return None,
        };
        (what != "AppRole secret-id" || ProcessEnv.var(variable).is_some()).then(|| {
            format!(
                "note      the {what} is not written: set {variable} where the helper runs{}",
                if method == AuthMethod::Userpass {
                    ", or it asks on the terminal"
                } else {
                    ""
                }
            )
        })
    }

    /// The secret and its field, then the exchange — which needs the whole
    /// profile, resolved from the answers as `get` will resolve it.
    fn secret_and_exchange(&mut self, cache: &Cache) -> Result<Profile> {
        let g = self.global;
        let (flag, env) = split(g, "secret", &g.secret);
        let path_q = Question::new(
            "Secret holding the API token, MOUNT/PATH",
            "--secret or SEATABLE_CRED_SECRET",
        )
        .given(flag, "--secret")
        .proposed(env, "SEATABLE_CRED_SECRET")
        .example("secret/seatable/crm");
        let (flag, env) = split(g, "field", &g.field);
        let field_q = Question::new("Field of the API token", "--field or SEATABLE_CRED_FIELD")
            .given(flag, "--field")
            .proposed(env, "SEATABLE_CRED_FIELD")
            .proposed(Some("api_token".to_string()), "default");
        let (mut path, mut field): (Option<String>, Option<String>) = (None, None);
        let (mut path_again, mut field_again) = (false, false);
        loop {
            if path.is_none() || path_again {
                let answer = self.need(&path_q, round(path_again, path.as_ref()))?;
                path_again = true;
                path = None;
                if SecretRef::parse(&answer.value).is_none() {
                    self.asker.failed(
                        "secret",
                        Failure::usage(format!(
                            "{}: '{}' is not MOUNT/PATH, e.g. secret/seatable/crm",
                            answer.from, answer.value
                        ))
                        .into(),
                    )?;
                    continue;
                }
                path = Some(answer.value);
            }
            if field.is_none() || field_again {
                let answer = self.need(&field_q, round(field_again, field.as_ref()))?;
                field = Some(answer.value);
            }
            let (path_text, field_text) = (path.clone().unwrap(), field.clone().unwrap());
            let secret = SecretRef::parse(&path_text).expect("checked above");
            self.answers.secret = Some(secret.to_string());
            self.answers.field = Some(field_text.clone());
            let kv_version = self.answers.kv_version;
            let checked = config::resolve_vault_unwritten(&self.answers, &self.env).and_then(|v| {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.runtime.block_on(async {
                    let (mut session, _) = doctor::login(&v, cache, deadline).await?;
                    doctor::secret(&mut session, &secret, &field_text, kv_version).await
                })
            });
            match checked {
                Ok(text) => self.asker.passed("secret", &text),
                Err(e) => {
                    // Vault answered about the secret itself (403, 404) or
                    // about its field.
                    let the_field = status_of(&e).is_none() && kind_of(&e) == Kind::Vault;
                    (path_again, field_again) = (!the_field, the_field);
                    self.asker.failed("secret", e)?;
                    continue;
                }
            }
            let profile = config::resolve_unwritten(&self.answers, &self.env)?;
            match doctor::exchange(&profile, cache) {
                Ok(text) => {
                    self.asker.passed("exchange", &text);
                    return Ok(profile);
                }
                Err(e) => {
                    // The API token in that secret is not this server's.
                    (path_again, field_again) = (true, false);
                    self.asker.failed("exchange", e)?;
                }
            }
        }
    }
}

/// A file answer that failed is not proposed again: it may be a secret
/// typed in the wrong place.
fn forget(
    previous: &mut std::collections::BTreeMap<&'static str, String>,
    key: &str,
    e: anyhow::Error,
) -> anyhow::Error {
    previous.remove(key);
    e
}

/// A file that holds a secret: it must be there. Never named back — a
/// secret typed here by mistake is not repeated — and written absolute.
fn secret_file(answer: &str, what: &str) -> Result<PathBuf> {
    let path = Path::new(answer);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(std::path::absolute(path)?),
        Ok(_) => Err(Failure::usage(format!(
            "that is not a file: name the file that holds {what}"
        ))
        .into()),
        Err(e) => Err(Failure::usage(format!(
            "no readable file there ({}): name the file that holds {what}, never {what} itself",
            e.kind()
        ))
        .into()),
    }
}

/// The profile's table: every setting an answer, a flag or a variable set
/// — never a secret value; files are named instead.
fn table_of(p: &Profile) -> Result<Table> {
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
        Auth::Token(_) => {}
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
    t.insert("cache", value(p.cache.backend.name()));
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
