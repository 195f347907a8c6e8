//! The account the `token` commands act as: an account token from Vault
//! (`account_secret`, field `account_token`), or a login as `account` with
//! its password and, when SeaTable asks, a two-factor code. A login's
//! account token lives in this process's memory only.

use anyhow::Result;
use secrecy::SecretString;
use tracing::{debug, info};

use crate::config::{AccountAuth, Profile};
use crate::error::Failure;
use crate::seatable::account::{self, LoginAnswer};
use crate::vault::Session;

/// The field of `account_secret` that holds the account token.
pub const ACCOUNT_TOKEN_FIELD: &str = "account_token";

/// What getting an account token needs, read before any network work (a
/// password prompt must not eat into `--timeout`).
pub enum Material {
    Vault(crate::config::SecretRef),
    Login {
        email: String,
        password: SecretString,
        otp: Option<SecretString>,
    },
}

/// Reads the password from the environment or asks on the terminal.
pub fn prepare(auth: &AccountAuth) -> Result<Material> {
    Ok(match auth {
        AccountAuth::Vault(secret) => Material::Vault(secret.clone()),
        AccountAuth::Login {
            email,
            password,
            otp,
        } => Material::Login {
            email: email.clone(),
            password: match password {
                Some(p) => SecretString::from(secrecy::ExposeSecret::expose_secret(p).to_owned()),
                None => ask(
                    &format!("SeaTable password for {email}: "),
                    "the SeaTable password",
                    "SEATABLE_CRED_ACCOUNT_PASSWORD",
                )?,
            },
            otp: otp
                .as_ref()
                .map(|o| SecretString::from(secrecy::ExposeSecret::expose_secret(o).to_owned())),
        },
    })
}

fn ask(prompt: &str, what: &str, variable: &str) -> Result<SecretString> {
    let value = rpassword::prompt_password(prompt).map_err(|e| {
        Failure::usage(format!(
            "cannot ask for {what} on the terminal ({e}): set {variable}"
        ))
    })?;
    Ok(SecretString::from(value))
}

/// The account token: read from Vault, or obtained by a login.
pub async fn account_token(
    session: &mut Session<'_>,
    http: &reqwest::Client,
    profile: &Profile,
    material: Material,
) -> Result<SecretString> {
    match material {
        Material::Vault(secret) => {
            let deadline = tokio::time::Instant::now() + profile.timeout;
            super::bounded(
                profile,
                deadline,
                "reading the account token",
                session.read_api_token(crate::vault::Wanted {
                    secret: &secret,
                    field: ACCOUNT_TOKEN_FIELD,
                    kv_version: None,
                    what: "the account token",
                    secret_key: "account_secret",
                    field_key: None,
                }),
            )
            .await
            .map_err(|e| e.context("reading the SeaTable account token (account_secret)"))
        }
        Material::Login {
            email,
            password,
            otp,
        } => login(http, profile, &email, &password, otp).await,
    }
}

async fn login(
    http: &reqwest::Client,
    profile: &Profile,
    email: &str,
    password: &SecretString,
    otp: Option<SecretString>,
) -> Result<SecretString> {
    let server = profile.server_url.as_str();
    let deadline = || tokio::time::Instant::now() + profile.timeout;
    let mut code: Option<SecretString> = None;
    loop {
        match account::login(http, server, email, password, code.as_ref(), deadline()).await? {
            LoginAnswer::Token(token) => {
                info!(account = email, "logged in to SeaTable");
                return Ok(token);
            }
            LoginAnswer::OtpRequired { invalid: false } if code.is_none() => {
                debug!("SeaTable asks for a two-factor code");
                code = Some(match &otp {
                    Some(o) => {
                        SecretString::from(secrecy::ExposeSecret::expose_secret(o).to_owned())
                    }
                    None => ask(
                        &format!("Two-factor code for {email}: "),
                        "the two-factor code",
                        "SEATABLE_CRED_OTP",
                    )?,
                });
            }
            LoginAnswer::OtpRequired { .. } => {
                return Err(Failure::seatable(format!(
                    "SeaTable at {server} refused the two-factor code for {email}: give a current code in SEATABLE_CRED_OTP or on the terminal"
                ))
                .into());
            }
            LoginAnswer::Refused(reason) => {
                return Err(Failure::seatable(format!(
                    "SeaTable at {server} refused the login of {email} ({reason}): check the account and SEATABLE_CRED_ACCOUNT_PASSWORD"
                ))
                .into());
            }
        }
    }
}
