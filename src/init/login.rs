//! The Vault login's questions: the method, its mount, and what identifies
//! the login — role-id, role, username, and the *files* that hold a
//! secret-id or JWT, never their contents. A userpass password, which the
//! login check needs, comes from `SEATABLE_CRED_PASSWORD` or a prompt
//! without echo and stays in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;

use super::ask::Question;
use super::steps::{Init, round, split};
use crate::cache::Cache;
use crate::checks;
use crate::config::{self, AuthMethod, Env, ProcessEnv};
use crate::error::Failure;

impl Init<'_> {
    pub(super) fn login(&mut self, cache: &Cache) -> Result<()> {
        let g = self.global;
        let (flag, env) = split(g, "auth", &g.auth);
        let method_q = Question::new(
            "Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none",
            "--auth or SEATABLE_CRED_AUTH",
        )
        .given(flag.map(|m| m.name().to_string()), "--auth")
        .proposed(env.map(|m| m.name().to_string()), "SEATABLE_CRED_AUTH")
        .proposed(Some("token".to_string()), "default");
        // After a token `bao login` can put in place: the wait for it.
        let wait_q = Question::new(
            "Enter checks the Vault token again once you are logged in; or another auth method",
            "--auth or SEATABLE_CRED_AUTH",
        );
        let mut previous: BTreeMap<&'static str, String> = Default::default();
        let mut again = false;
        let mut waiting = false;
        loop {
            let q = if waiting { &wait_q } else { &method_q };
            waiting = false;
            let answer = self.need(q, round(again, previous.get("auth")))?;
            previous.remove("auth");
            let was_again = again;
            again = true;
            let Ok(method) = AuthMethod::from_str(&answer.value, true) else {
                self.asker.failed(
                    "login",
                    Failure::usage(format!(
                        "{}: '{}' is not one of token, approle, kubernetes, jwt, userpass, cert, none",
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
            // An agent's token file (--vault-token-file, or its variable)
            // belongs to token auth only.
            a.vault_token_file = g
                .vault_token_file
                .clone()
                .filter(|_| method == AuthMethod::Token);
            // A file that is not there: asked again.
            if let Err(e) = self.login_settings(method, &mut previous, was_again)? {
                self.asker.failed("login", e)?;
                continue;
            }
            let checked = config::resolve_vault_unwritten(&self.answers, &self.env).and_then(|v| {
                let deadline = tokio::time::Instant::now() + self.timeout;
                self.runtime.block_on(async {
                    checks::login(&v, cache, deadline)
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
                Err(e) => {
                    self.asker.failed("login", e)?;
                    if method == AuthMethod::Token
                        && let Some(how) = self.login_elsewhere()
                    {
                        self.asker.tell(&how);
                        waiting = true;
                    }
                }
            }
        }
    }

    /// The settings of `method`: its mount and what identifies the login
    /// (never a secret value — only the files that hold them). The inner
    /// error is an answer to ask again; the outer one ends `init`.
    fn login_settings(
        &mut self,
        method: AuthMethod,
        previous: &mut BTreeMap<&'static str, String>,
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
        if !matches!(method, AuthMethod::Token | AuthMethod::None) {
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
            AuthMethod::Token | AuthMethod::None => {}
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

    /// With token auth from the file `bao login` writes (no VAULT_TOKEN or
    /// BAO_TOKEN here, which would win over it): how to put a token there
    /// while `init` waits — the method question cannot fix a missing or
    /// refused token, a login in another terminal can.
    fn login_elsewhere(&self) -> Option<String> {
        let v = config::resolve_vault_unwritten(&self.answers, &self.env).ok()?;
        let config::Auth::Token(input) = &v.auth else {
            return None;
        };
        match input.source() {
            config::SecretSource::File {
                path,
                named_by: config::Origin::Default,
            } => Some(format!(
                "          log in in another terminal: `bao login -address={}` (or `vault login`) writes {} — then press Enter here to check again",
                v.addr,
                path.display()
            )),
            _ => None,
        }
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
            AuthMethod::Token if a.vault_token_file.is_some() => {
                return Some(
                    "note      the Vault token is not written: the helper reads it from vault_token_file, afresh for every login".into(),
                );
            }
            AuthMethod::Token => {
                return Some(
                    "note      the Vault token is not written: the helper reads VAULT_TOKEN, BAO_TOKEN or ~/.vault-token where it runs".into(),
                );
            }
            AuthMethod::None => {
                return Some(
                    "note      no Vault token is written or sent: the Vault Proxy or Agent at the Vault address adds its own".into(),
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
}

/// A file answer that failed is not proposed again: it may be a secret
/// typed in the wrong place.
fn forget(
    previous: &mut BTreeMap<&'static str, String>,
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
