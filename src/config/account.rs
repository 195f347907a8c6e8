//! The account settings of the `token` commands (SPEC §12): who they act as
//! on SeaTable's account API, and how old an API token may grow before
//! `doctor` warns. Resolved apart from the profile: only those commands and
//! `doctor` need them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use secrecy::SecretString;

use super::file::profile_table;
use super::flags::GlobalArgs;
use super::origin::{Origins, bad, clap_origin};
use super::{Env, SecretRef};
use crate::error::Failure;

/// Default of `token_max_age`: `doctor` warns about older API tokens.
pub const DEFAULT_TOKEN_MAX_AGE: Duration = Duration::from_secs(90 * 24 * 3600);

/// Who the `token` commands act as on SeaTable's account API (SPEC §12).
pub enum AccountAuth {
    /// An account token kept in Vault: field `account_token` of this secret.
    Vault(SecretRef),
    /// A login as this user; the password (and a two-factor code) from the
    /// environment, else asked on the terminal.
    Login {
        email: String,
        password: Option<SecretString>,
        otp: Option<SecretString>,
    },
}

impl std::fmt::Debug for AccountAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountAuth::Vault(secret) => write!(f, "Vault({secret})"),
            AccountAuth::Login { email, .. } => write!(f, "Login({email})"),
        }
    }
}

/// The settings of the API-token life cycle; resolved apart from
/// [`super::Profile`] because only the `token` commands and `doctor` use them.
#[derive(Debug)]
pub struct AccountSettings {
    /// `None` when neither `account_secret` nor `account` is set.
    pub auth: Option<AccountAuth>,
    pub token_max_age: Duration,
}

/// Resolves `account_secret`, `account` and `token_max_age` (flags > env >
/// file). Setting both account keys at the same level is an error; a flag
/// or variable beats the other key in the file.
pub fn resolve_account(args: &GlobalArgs, env: &dyn Env) -> Result<AccountSettings> {
    let (_, file, place) = profile_table(args, env)?;
    let mut o = Origins {
        sources: &args.sources,
        place: &place,
        seen: BTreeMap::new(),
    };
    enum Chosen {
        Secret(String),
        Email(String),
    }
    let pick = |secret: &Option<String>, email: &Option<String>, place: &str| match (secret, email)
    {
        (Some(_), Some(_)) => Err(Failure::usage(format!(
            "both an account secret and an account are set {place}: keep only one of account_secret and account"
        ))),
        (Some(s), None) => Ok(Some(Chosen::Secret(s.clone()))),
        (None, Some(e)) => Ok(Some(Chosen::Email(e.clone()))),
        (None, None) => Ok(None),
    };
    let in_file = match &place.file {
        Some(file) => format!("in [profiles.{}] of {}", place.profile, file.display()),
        None => "in the config file".to_string(),
    };
    let chosen = match pick(
        &args.account_secret,
        &args.account,
        "(--account-secret/SEATABLE_CRED_ACCOUNT_SECRET and --account/SEATABLE_CRED_ACCOUNT)",
    )? {
        Some(found) => Some(found),
        None => pick(&file.account_secret, &file.account, &in_file)?,
    };
    // Where the chosen key came from, for messages about its value.
    let from_args = args.account_secret.is_some() || args.account.is_some();
    let origin_of = |key: &'static str| {
        if from_args {
            clap_origin(&args.sources, key)
        } else {
            place.file_key(key)
        }
    };
    let auth = match chosen {
        Some(Chosen::Secret(text)) => Some(AccountAuth::Vault(
            SecretRef::parse(&text).ok_or_else(|| {
                bad(
                    &origin_of("account_secret"),
                    "the value is not MOUNT/PATH, e.g. secret/seatable/account".to_string(),
                )
            })?,
        )),
        Some(Chosen::Email(email)) => {
            let email = email.trim().to_string();
            if email.is_empty() || email.chars().any(char::is_control) {
                return Err(bad(
                    &origin_of("account"),
                    "must be the e-mail address of a SeaTable user",
                )
                .into());
            }
            Some(AccountAuth::Login {
                email,
                password: env
                    .var("SEATABLE_CRED_ACCOUNT_PASSWORD")
                    .map(SecretString::from),
                otp: env.var("SEATABLE_CRED_OTP").map(SecretString::from),
            })
        }
        None => None,
    };
    let parsed = file
        .file_token_max_age
        .as_ref()
        .map(|t| crate::time::parse_duration(t));
    let token_max_age = o
        .pick("token_max_age", args.token_max_age.map(Ok), vec![], parsed)
        .transpose()
        .map_err(|e| bad(&o.of("token_max_age"), e))?
        .unwrap_or(DEFAULT_TOKEN_MAX_AGE);
    if token_max_age.is_zero() {
        return Err(bad(&o.of("token_max_age"), "must be more than 0s").into());
    }
    Ok(AccountSettings {
        auth,
        token_max_age,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{args_with, env, write_config};

    #[test]
    fn account_settings() {
        let (_d, path) = write_config(
            "[profiles.default]\naccount_secret = \"secret/seatable/account\"\ntoken_max_age = \"30d\"\n",
        );
        let a = resolve_account(&args_with(&path), &env(&[])).unwrap();
        assert!(
            matches!(&a.auth, Some(AccountAuth::Vault(s)) if s.to_string() == "secret/seatable/account")
        );
        assert_eq!(a.token_max_age, Duration::from_secs(30 * 86_400));
        // A flag beats the file's other key; its password comes from the environment.
        let mut args = args_with(&path);
        args.account = Some("ops@example.com".into());
        let a = resolve_account(
            &args,
            &env(&[
                ("SEATABLE_CRED_ACCOUNT_PASSWORD", "pw"),
                ("SEATABLE_CRED_OTP", "123456"),
            ]),
        )
        .unwrap();
        match &a.auth {
            Some(AccountAuth::Login {
                email,
                password: Some(_),
                otp: Some(_),
            }) => assert_eq!(email, "ops@example.com"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{:?}", a.auth).contains("pw"));
        // Both at one level is an error; nothing set is fine.
        args.account_secret = Some("secret/x".into());
        let e = resolve_account(&args, &env(&[])).unwrap_err();
        assert!(crate::error::one_line(&e).contains("only one"), "{e}");
        let none = resolve_account(&GlobalArgs::default(), &env(&[])).unwrap();
        assert!(none.auth.is_none());
        assert_eq!(none.token_max_age, DEFAULT_TOKEN_MAX_AGE);
        let (_d, path) = write_config("[profiles.default]\naccount_secret = \"nomount\"\n");
        let e = resolve_account(&args_with(&path), &env(&[])).unwrap_err();
        assert!(crate::error::one_line(&e).contains("account_secret"), "{e}");
    }
}
