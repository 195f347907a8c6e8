//! Vault's settings (SPEC §4): the address and TLS files, read as the vault
//! CLI reads them (`VAULT_*`, then `BAO_*`), and the login — which secret
//! comes from where, read only when a login actually happens.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::Env;
use super::flags::{AuthMethod, GlobalArgs};
use super::origin::{Origin, Origins, SecretSource};
use crate::error::Failure;

/// Where Kubernetes mounts the service-account token.
pub const KUBERNETES_SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Where a secret comes from. Reading happens only when it is needed.
pub enum SecretInput {
    /// Already read from this environment variable.
    Env(&'static str, SecretString),
    /// A file whose content (trimmed) is the secret.
    File(PathBuf),
    /// A file that may not exist; then this hint says what to do.
    FileOr(PathBuf, String),
    /// The Vault token in a file that someone else keeps current — an
    /// agent's sink (`vault_token_file`, set where the origin says). Read
    /// afresh for every login and again when Vault refuses the token in the
    /// middle of a call; refused unless the user (or root) owns it and
    /// only they may write it, as the config file is.
    TokenFile(PathBuf, Origin),
    /// Ask on the terminal with this prompt.
    Prompt(String),
    /// Not configured; the method proceeds without it (e.g. AppRole with
    /// `bind_secret_id = false`) or fails with the contained hint.
    Absent(String),
}

impl std::fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretInput::Env(name, _) => write!(f, "Env({name})"),
            SecretInput::File(path)
            | SecretInput::FileOr(path, _)
            | SecretInput::TokenFile(path, _) => {
                write!(f, "File({})", path.display())
            }
            SecretInput::Prompt(_) => f.write_str("Prompt"),
            SecretInput::Absent(_) => f.write_str("Absent"),
        }
    }
}

impl SecretInput {
    /// Where the secret comes from, for people: never the secret.
    pub fn source(&self) -> SecretSource {
        match self {
            SecretInput::Env(name, _) => SecretSource::Env(name.to_string()),
            SecretInput::File(path) | SecretInput::FileOr(path, _) => SecretSource::File {
                path: path.clone(),
                named_by: Origin::Default,
            },
            SecretInput::TokenFile(path, origin) => SecretSource::File {
                path: path.clone(),
                named_by: origin.clone(),
            },
            SecretInput::Prompt(_) => SecretSource::Prompt,
            SecretInput::Absent(_) => SecretSource::Absent,
        }
    }
}

/// The Vault login of a profile.
#[derive(Debug)]
pub enum Auth {
    Token(SecretInput),
    AppRole {
        role_id: String,
        secret_id: SecretInput,
    },
    Kubernetes {
        role: String,
        jwt: SecretInput,
    },
    Jwt {
        role: Option<String>,
        jwt: SecretInput,
    },
    Userpass {
        username: String,
        password: SecretInput,
    },
    Cert {
        role: Option<String>,
    },
    /// No token at all: a Vault or OpenBao Proxy or Agent at `vault_addr`
    /// adds its own to every request (`use_auto_auth_token`).
    None,
}

/// Everything needed to talk to Vault.
#[derive(Debug)]
pub struct VaultSettings {
    /// Normalised, without a trailing slash.
    pub addr: String,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Set only by an explicit `VAULT_SKIP_VERIFY`/`BAO_SKIP_VERIFY`.
    pub skip_verify: bool,
    pub auth: Auth,
    pub auth_method: AuthMethod,
    pub auth_mount: String,
}

/// `true`/`false` the way Go's strconv.ParseBool reads them, as the vault CLI does.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

pub(super) fn resolve_vault(
    args: &GlobalArgs,
    file: &GlobalArgs,
    env: &dyn Env,
    o: &mut Origins<'_>,
    allow_http: Option<&Origin>,
) -> Result<VaultSettings, Failure> {
    // The vault CLI's default address.
    let addr_text = o
        .pick(
            "vault_addr",
            args.vault_addr.clone(),
            vec![
                ("VAULT_ADDR", env.var("VAULT_ADDR")),
                ("BAO_ADDR", env.var("BAO_ADDR")),
            ],
            file.vault_addr.clone(),
        )
        .unwrap_or_else(|| DEFAULT_VAULT_ADDR.to_string());
    let addr = crate::address::check_address(
        &addr_text,
        &o.of("vault_addr"),
        "the Vault token",
        allow_http,
    )?;
    let namespace = o.pick(
        "vault_namespace",
        args.vault_namespace.clone(),
        vec![
            ("VAULT_NAMESPACE", env.var("VAULT_NAMESPACE")),
            ("BAO_NAMESPACE", env.var("BAO_NAMESPACE")),
        ],
        file.vault_namespace.clone(),
    );
    let either = |a: &'static str, b: &'static str| {
        vec![
            (a, env.var(a).map(PathBuf::from)),
            (b, env.var(b).map(PathBuf::from)),
        ]
    };
    let skip_verify = match env
        .var("VAULT_SKIP_VERIFY")
        .or_else(|| env.var("BAO_SKIP_VERIFY"))
    {
        None => false,
        Some(v) => parse_bool(&v).ok_or_else(|| {
            Failure::usage(format!(
                "VAULT_SKIP_VERIFY='{v}' is not a boolean: use true or false"
            ))
        })?,
    };

    let method = setting!(o, args, file, auth).unwrap_or(AuthMethod::Token);
    let auth_mount = setting!(o, args, file, auth_mount)
        .unwrap_or_else(|| method.name().to_string())
        .trim_matches('/')
        .to_string();
    let role = setting!(o, args, file, role);
    // A secret value in the environment or a file that holds it; the flag's
    // file wins over the environment's value, which wins over the config's file.
    let secret_input = |flag: &Option<PathBuf>, env_name: &'static str, key: &Option<PathBuf>| {
        if let Some(path) = flag {
            Some(SecretInput::File(path.clone()))
        } else if let Some(value) = env.var(env_name) {
            Some(SecretInput::Env(env_name, SecretString::from(value)))
        } else {
            key.clone().map(SecretInput::File)
        }
    };
    let place = o.place;
    let required = |value: Option<String>, what: &str, flag: &str, env_name: &str, key: &str| {
        value.ok_or_else(|| {
            Failure::usage(format!(
                "--auth {} needs {what}: {}",
                method.name(),
                place.hint(flag, env_name, key)
            ))
        })
    };

    // A file named for the token (an agent's sink) is where this profile's
    // token comes from, as `auth` says how it logs in: VAULT_TOKEN and
    // BAO_TOKEN are then not looked at.
    let token_file = setting!(o, args, file, vault_token_file);
    if method != AuthMethod::Token && token_file.is_some() {
        return Err(super::origin::bad(
            &o.of("vault_token_file"),
            format!(
                "a Vault token file is for --auth token, not --auth {} (set by {}): drop one of them",
                method.name(),
                o.of("auth")
            ),
        ));
    }
    let auth = match method {
        AuthMethod::Token => Auth::Token(
            if let Some(path) = token_file {
                SecretInput::TokenFile(path, o.of("vault_token_file"))
            } else if let Some(v) = env.var("VAULT_TOKEN") {
                SecretInput::Env("VAULT_TOKEN", SecretString::from(v))
            } else if let Some(v) = env.var("BAO_TOKEN") {
                SecretInput::Env("BAO_TOKEN", SecretString::from(v))
            } else {
                const HINT: &str = "no Vault token: set VAULT_TOKEN or BAO_TOKEN, log in with `bao login`/`vault login`, or choose another --auth";
                match env.var("HOME") {
                    Some(home) => SecretInput::FileOr(Path::new(&home).join(".vault-token"), HINT.into()),
                    None => SecretInput::Absent(HINT.into()),
                }
            },
        ),
        AuthMethod::Approle => Auth::AppRole {
            role_id: required(
                setting!(o, args, file, role_id),
                "a role-id",
                "role-id",
                "SEATABLE_CRED_ROLE_ID",
                "role_id",
            )?,
            secret_id: secret_input(&args.secret_id_file, "SEATABLE_CRED_SECRET_ID", &file.secret_id_file)
                .unwrap_or_else(|| SecretInput::Absent(String::new())),
        },
        AuthMethod::Kubernetes => Auth::Kubernetes {
            role: required(role, "a role", "role", "SEATABLE_CRED_ROLE", "role")?,
            jwt: secret_input(&args.jwt_file, "SEATABLE_CRED_JWT", &file.jwt_file)
                .unwrap_or_else(|| SecretInput::File(PathBuf::from(KUBERNETES_SA_TOKEN))),
        },
        AuthMethod::Jwt => Auth::Jwt {
            role,
            jwt: secret_input(&args.jwt_file, "SEATABLE_CRED_JWT", &file.jwt_file).ok_or_else(|| {
                Failure::usage(format!(
                    "--auth jwt needs a JWT: set --jwt-file, SEATABLE_CRED_JWT (the token itself) or jwt_file in [profiles.{}]",
                    place.profile
                ))
            })?,
        },
        AuthMethod::Userpass => {
            let username = required(
                setting!(o, args, file, username),
                "a username",
                "username",
                "SEATABLE_CRED_USERNAME",
                "username",
            )?;
            let password = match env.var("SEATABLE_CRED_PASSWORD") {
                Some(v) => SecretInput::Env("SEATABLE_CRED_PASSWORD", SecretString::from(v)),
                None => SecretInput::Prompt(format!("Vault password for {username}: ")),
            };
            Auth::Userpass { username, password }
        }
        AuthMethod::Cert => Auth::Cert { role },
        AuthMethod::None => Auth::None,
    };

    let client_cert = o.pick(
        "vault_client_cert",
        None,
        either("VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"),
        file.vault_client_cert.clone(),
    );
    let client_key = o.pick(
        "vault_client_key",
        None,
        either("VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"),
        file.vault_client_key.clone(),
    );
    if method == AuthMethod::Cert && (client_cert.is_none() || client_key.is_none()) {
        return Err(Failure::usage(
            "--auth cert needs a client certificate: set VAULT_CLIENT_CERT and VAULT_CLIENT_KEY (or vault_client_cert and vault_client_key in the profile)",
        ));
    }
    if client_cert.is_some() != client_key.is_some() {
        return Err(Failure::usage(
            "a Vault client certificate needs both VAULT_CLIENT_CERT and VAULT_CLIENT_KEY",
        ));
    }
    let ca_cert = o.pick(
        "vault_ca_cert",
        None,
        either("VAULT_CACERT", "BAO_CACERT"),
        file.vault_ca_cert.clone(),
    );
    let ca_path = o.pick(
        "vault_ca_path",
        None,
        either("VAULT_CAPATH", "BAO_CAPATH"),
        file.vault_ca_path.clone(),
    );

    Ok(VaultSettings {
        addr,
        namespace,
        ca_cert,
        ca_path,
        client_cert,
        client_key,
        skip_verify,
        auth,
        auth_method: method,
        auth_mount,
    })
}

/// The vault CLI's default address, used when nothing sets one.
pub const DEFAULT_VAULT_ADDR: &str = "https://127.0.0.1:8200";
