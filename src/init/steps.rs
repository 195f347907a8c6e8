//! The questions of `init` in order — SeaTable, Vault, the cache, the
//! login (in `login.rs`), the secret and its field, the exchange — each
//! answer checked with `doctor`'s own check before the next question.

use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;

use super::InitEnv;
use super::ask::{self, Asker, Question, Round};
use crate::cache::Cache;
use crate::checks;
use crate::config::{
    self, AuthMethod, CacheBackend, CacheSettings, Env, GlobalArgs, Origin, ProcessEnv, Profile,
    SecretRef,
};
use crate::error::{Failure, Kind, kind_of, status_of};

pub(super) struct Init<'a> {
    pub(super) global: &'a GlobalArgs,
    /// The settings answered so far, as if given as flags.
    pub(super) answers: GlobalArgs,
    pub(super) env: InitEnv,
    pub(super) asker: Asker,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) timeout: Duration,
}

impl<'a> Init<'a> {
    pub(super) fn new(
        global: &'a GlobalArgs,
        asker: Asker,
        runtime: tokio::runtime::Runtime,
    ) -> Init<'a> {
        Init {
            global,
            answers: global.clone(),
            env: InitEnv { password: None },
            asker,
            runtime,
            timeout: global.timeout.unwrap_or(config::DEFAULT_TIMEOUT),
        }
    }
}

/// Of an option clap reads from a flag or its variable: the flag's value
/// (an answer) and the variable's (a proposal).
pub(super) fn split<T: Clone>(
    global: &GlobalArgs,
    id: &str,
    value: &Option<T>,
) -> (Option<T>, Option<T>) {
    match global.sources.get(id) {
        Some(Origin::Env(_)) => (None, value.clone()),
        _ => (value.clone(), None),
    }
}

/// What to propose when a question is asked again: the answer that failed
/// its check — worth another try once the server is fixed — unless it was
/// malformed.
pub(super) fn retry_with(err: &anyhow::Error, answer: String) -> Option<String> {
    (kind_of(err) != Kind::Usage).then_some(answer)
}

pub(super) fn round<'p>(again: bool, previous: Option<&'p String>) -> Round<'p> {
    if again {
        Round::Again(previous.map(String::as_str))
    } else {
        Round::First
    }
}

impl Init<'_> {
    pub(super) fn allow_http(&self) -> Option<Origin> {
        self.global.allow_http.then(|| {
            self.global
                .sources
                .get("allow_http")
                .cloned()
                .unwrap_or_else(|| Origin::Flag("--allow-http".into()))
        })
    }

    pub(super) fn ask(&mut self, q: &Question, round: Round<'_>) -> Result<Option<ask::Answer>> {
        self.asker.answer(q, round)
    }

    /// A question that must be answered.
    pub(super) fn need(&mut self, q: &Question, round: Round<'_>) -> Result<ask::Answer> {
        Ok(self
            .ask(q, round)?
            .expect("a question without an empty answer is answered"))
    }

    pub(super) fn server(&mut self) -> Result<()> {
        let (flag, env) = split(self.global, "server_url", &self.global.server_url);
        let q = Question::new("SeaTable server URL", "--server-url or SEATABLE_SERVER_URL")
            .given(flag, "--server-url")
            .proposed(env, "SEATABLE_SERVER_URL")
            .example("https://cloud.seatable.io")
            .url();
        let (mut again, mut previous): (bool, Option<String>) = (false, None);
        loop {
            let answer = self.need(&q, round(again, previous.as_ref()))?;
            again = true;
            let checked = crate::address::check_address(
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
                    .block_on(checks::seatable(&url, ca, self.timeout))?;
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

    pub(super) fn vault(&mut self) -> Result<()> {
        let env = ["VAULT_ADDR", "BAO_ADDR"]
            .into_iter()
            .find_map(|name| ProcessEnv.var(name).map(|v| (v, name)));
        let q = Question::new("Vault address", "--vault-addr, VAULT_ADDR or BAO_ADDR")
            .given(self.global.vault_addr.clone(), "--vault-addr")
            .proposed(
                env.as_ref().map(|(v, _)| v.clone()),
                env.as_ref().map_or("", |(_, n)| n),
            )
            .example("https://vault.example.com:8200")
            .url();
        let (mut again, mut previous): (bool, Option<String>) = (false, None);
        loop {
            let answer = self.need(&q, round(again, previous.as_ref()))?;
            again = true;
            let checked = crate::address::check_address(
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
                let (text, _) = self.runtime.block_on(checks::vault(&v, self.timeout))?;
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

    pub(super) fn cache(&mut self) -> Result<Cache> {
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
        let settings = |backend, shared| {
            CacheSettings::new(
                backend,
                shared,
                self.global.cache_dir.clone(),
                dir_origin.clone(),
                self.global.allow_disk_cache,
            )
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
        .example("secret/seatable-cred/cache")
        .secret_path();
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
            // The backends with a shared tier need its path.
            if backend.tiers().1 {
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
                                "{}: the answer is not MOUNT/PATH of a KV v2 mount, e.g. secret/seatable-cred/cache",
                                answer.from
                            ))
                            .into(),
                        )?;
                        continue;
                    }
                }
            }
            match checks::cache(&settings(backend, shared.clone())) {
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

    /// The secret and its field, then the exchange — which needs the whole
    /// profile, resolved from the answers as `get` will resolve it.
    pub(super) fn secret_and_exchange(&mut self, cache: &Cache) -> Result<Profile> {
        let g = self.global;
        let (flag, env) = split(g, "secret", &g.secret);
        let path_q = Question::new(
            "Secret holding the API token, MOUNT/PATH",
            "--secret or SEATABLE_CRED_SECRET",
        )
        .given(flag, "--secret")
        .proposed(env, "SEATABLE_CRED_SECRET")
        .example("secret/seatable/crm")
        .secret_path();
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
                            "{}: the answer is not MOUNT/PATH, e.g. secret/seatable/crm",
                            answer.from
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
                    let (mut session, _) = checks::login(&v, cache, deadline).await?;
                    checks::secret(&mut session, &secret, &field_text, kv_version).await
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
            match checks::exchange(&profile, cache) {
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
