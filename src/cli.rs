//! The command line of SPEC §3: the commands and each one's own arguments.
//! The options every command takes, and the environment variables clap
//! reads for them, are the settings' flag layer ([`crate::config::flags`]),
//! flattened in here.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::flags::duration;
use crate::config::{GlobalArgs, SecretRef, Sources};
use crate::lifecycle::audit::Finding;
use crate::protocol::Format;

/// Where `-h` points for the rest: the options every command takes.
macro_rules! more {
    () => {
        "The options every command takes (SeaTable, Vault, login, cache, token lifetime), grouped: seatable-cred --help"
    };
}

macro_rules! examples {
    () => {
        "Examples:
  seatable-cred init                           write a profile; each answer is checked
  seatable-cred get -o json                    the base token, its expiry and base context
  seatable-cred -p crm exec -- python sync.py  a command with the token in its environment
  seatable-cred doctor                         check each step, one line each"
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "seatable-cred",
    version,
    about = "Reads a SeaTable API token from Vault/OpenBao, trades it for a short-lived base token, caches it in memory and prints it for the calling tool.",
    propagate_version = true,
    max_term_width = 100,
    after_help = concat!(examples!(), "\n\n", more!()),
    after_long_help = concat!(
        examples!(),
        "\n\nEach setting is a flag, an environment variable or a key of the profile in the config file; flags win, then the environment, then the file."
    )
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a working profile: asks what it needs (or takes flags and environment), checks each answer, prints the snippets for kubectl, git and Python.
    #[command(after_help = concat!("Examples:
  seatable-cred init                 ask on the terminal, each answer checked
  seatable-cred init --profile crm   a profile of another name (then: get --profile crm)
  seatable-cred init --yes --server-url https://cloud.seatable.io \\
      --vault-addr https://vault.example.com:8200 --secret secret/seatable/crm

", more!()))]
    Init(InitArgs),
    /// Print the credential (from cache while it is fresh).
    #[command(after_help = concat!("Examples:
  seatable-cred get                          ExecCredential JSON, for kubectl
  seatable-cred get -o json                  the token and what a SeaTable client needs
  eval \"$(seatable-cred get -o env)\"         SEATABLE_BASE_TOKEN and friends in a shell
  seatable-cred get -o header | curl -H @- URL

", more!()))]
    Get(GetArgs),
    /// Show what is cached for the profile — never the token.
    #[command(after_help = more!())]
    Status(StatusArgs),
    /// Drop the cached base token of the profile (or of every profile).
    #[command(after_help = more!())]
    Erase(EraseArgs),
    /// Run CMD with the base token and its context in its environment.
    #[command(after_help = concat!("Examples:
  seatable-cred exec -- python sync.py
  seatable-cred --profile crm exec -- ./job.sh --dry-run

", more!()))]
    Exec(ExecArgs),
    /// git's credential-helper protocol (credential.helper = "!seatable-cred git-credential").
    GitCredential(GitCredentialArgs),
    /// Check each step — config, cache, Vault, login, secret, SeaTable, exchange, clock.
    #[command(after_help = more!())]
    Doctor,
    /// Print shell completions.
    Completions(CompletionsArgs),
    /// Run a local agent: keeps base tokens fresh and lets unmodified SeaTable clients work with a local key.
    Serve(ServeArgs),
    /// The API tokens themselves: minted into Vault, listed, rotated, revoked (needs --account-secret or --account).
    #[command(after_help = concat!("Examples:
  seatable-cred token list
  seatable-cred token create --app crm-sync --permission rw --base CRM
  seatable-cred token rotate --grace 10m
  seatable-cred token audit --vault-prefix secret/seatable

", more!()))]
    Token(TokenArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Replace the profile if the config file has it already (other profiles are kept).
    #[arg(long)]
    pub force: bool,
    /// Take each default (the environment's value, or the built-in one) without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// The options every command takes ([`GlobalArgs`]), grouped under
/// headings for help; `-h` shows those of the first group and of the last
/// (the profile, the verbosity) and leaves the rest to `--help`.
const HEADINGS: [(&str, &[&str]); 8] = [
    ("Profile", &["profile", "config"]),
    ("SeaTable", &["server_url", "ca_cert"]),
    (
        "Vault",
        &[
            "vault_addr",
            "vault_namespace",
            "secret",
            "field",
            "kv_version",
        ],
    ),
    (
        "Vault login",
        &[
            "auth",
            "vault_token_file",
            "auth_mount",
            "role",
            "role_id",
            "secret_id_file",
            "jwt_file",
            "username",
        ],
    ),
    (
        "Cache",
        &["cache", "cache_dir", "shared_cache", "allow_disk_cache"],
    ),
    (
        "Base tokens and the network",
        &[
            "refresh_before",
            "lifetime",
            "allow_long_lifetime",
            "timeout",
            "allow_http",
        ],
    ),
    (
        "Token commands",
        &["account_secret", "account", "token_max_age"],
    ),
    ("Diagnostics", &["verbose", "quiet"]),
];

/// The command line as help shows it: [`Cli`] with the options every
/// command takes grouped under [`HEADINGS`]. Used wherever help is shown —
/// the full parser, the bare usage, the man pages — but not by the flat
/// parser of `get` and `git-credential`, which builds no help: grouping
/// costs a cache hit nothing.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    for (heading, ids) in HEADINGS {
        let short = heading == "Profile" || heading == "Diagnostics";
        for id in ids {
            cmd = cmd.mut_arg(*id, |arg| arg.help_heading(heading).hide_short_help(!short));
        }
    }
    cmd
}

/// What `seatable-cred` alone prints (on stderr, exit 2, as cargo and git
/// do): the usage and the commands, and where to start.
pub fn bare_usage() -> String {
    command()
        .help_template(
            "{about}\n\n{usage-heading} {usage}\n\nCommands:\n{subcommands}\n\n\
             Start with `seatable-cred init`; `seatable-cred --help` lists the options.\n",
        )
        .render_help()
        .to_string()
}

/// clap's error as the one line of SPEC §8: its paragraphs up to the usage
/// folded together, and the help of the command the error is about (the
/// usage's words up to the first option) — `seatable-cred exec --help`,
/// not the main command's.
pub fn usage_line(text: &str) -> String {
    let paragraphs: Vec<String> = text
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect();
    let said: Vec<&str> = paragraphs
        .iter()
        .map(String::as_str)
        .take_while(|p| !p.starts_with("Usage:") && !p.starts_with("For more information"))
        .collect();
    let said = said.join("; ");
    let said = said.strip_prefix("error: ").unwrap_or(&said);
    let command = paragraphs
        .iter()
        .find_map(|p| p.strip_prefix("Usage: "))
        .map_or("seatable-cred".to_string(), |usage| {
            usage
                .split(' ')
                .take_while(|w| !w.starts_with(['-', '[', '<']))
                .collect::<Vec<_>>()
                .join(" ")
        });
    format!("{said}; see '{command} --help'")
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on: HOST:PORT, or unix:PATH for a Unix socket (0600); anything but loopback is warned about. A socket handed over by systemd (LISTEN_FDS) is used instead [default: 127.0.0.1:8799].
    #[arg(long, value_name = "ADDR", value_parser = listen_addr)]
    pub listen: Option<ListenAddr>,
    /// Client connections open at once; more get 503 and are closed.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// Also serve processes of this user (a uid; repeat or separate with commas). By default only the agent's own user is served.
    #[arg(long, value_name = "UID", value_delimiter = ',')]
    pub allow_uid: Vec<u32>,
    /// Also serve processes of this group (a gid; repeat or separate with commas).
    #[arg(long, value_name = "GID", value_delimiter = ',')]
    pub allow_gid: Vec<u32>,
    /// Profiles to serve [default: the current profile].
    #[arg(value_name = "PROFILE")]
    pub profiles: Vec<String>,
}

/// Where `serve` listens: a TCP address, or a Unix socket's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
}

impl ListenAddr {
    pub const DEFAULT: ListenAddr = ListenAddr::Tcp(std::net::SocketAddr::V4(
        std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8799),
    ));
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

fn listen_addr(text: &str) -> Result<ListenAddr, String> {
    match text.strip_prefix("unix:") {
        Some(path) if path.starts_with('/') => Ok(ListenAddr::Unix(PathBuf::from(path))),
        Some(_) => Err("a Unix socket's path must be absolute: unix:/run/…/agent.sock".into()),
        None => text.parse().map(ListenAddr::Tcp).map_err(|_| {
            "expected HOST:PORT (an IP address, e.g. 127.0.0.1:8799 or [::1]:8799) or unix:PATH"
                .to_string()
        }),
    }
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub action: TokenAction,
}

/// The API-token life cycle (SPEC §12). Each needs SeaTable account
/// credentials: --account-secret or --account.
#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create an API token for the base and write it to the profile's secret (never printed).
    Create(TokenCreateArgs),
    /// The base's API tokens and which one Vault holds — never a token value.
    List(TokenListArgs),
    /// Replace the token in Vault by a new one of the same permission, then delete the old one.
    Rotate(TokenRotateArgs),
    /// Delete an API token in SeaTable.
    Revoke(TokenRevokeArgs),
    /// Finish or undo a half-done rotation: delete the family's tokens that Vault does not hold.
    Prune,
    /// A team admin's view: every API token of the team, where Vault keeps it, and what is wrong with it.
    Audit(TokenAuditArgs),
}

/// What an API token may do on its base.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// Read-only.
    R,
    /// Read-write.
    Rw,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::R => "r",
            Permission::Rw => "rw",
        }
    }
}

#[derive(Args, Debug)]
pub struct TokenCreateArgs {
    /// The token's app name (one token per application).
    #[arg(long, value_name = "NAME")]
    pub app: String,
    /// Read-only (r) or read-write (rw).
    #[arg(long, value_enum, default_value_t = Permission::R)]
    pub permission: Permission,
    /// The base, by name [default: the one the profile's secret opens].
    #[arg(long, value_name = "NAME")]
    pub base: Option<String>,
    /// The workspace of --base, when the name is in more than one.
    #[arg(long, value_name = "ID", requires = "base")]
    pub workspace: Option<i64>,
    /// Write even though the secret exists (its current version stays in the history).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct TokenListArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

#[derive(Args, Debug)]
pub struct TokenRotateArgs {
    /// Keep the old token this long after the new one is in Vault.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s")]
    pub grace: Duration,
}

#[derive(Args, Debug)]
pub struct TokenRevokeArgs {
    /// The app name of the token to delete.
    #[arg(long, value_name = "NAME")]
    pub app: String,
    /// Delete it even if it is the token the profile's secret holds (with --base: any Vault secret token audit looks at).
    #[arg(long)]
    pub force: bool,
    /// The base, by UUID: delete through SeaTable's team-admin API (a team admin's account), any base of the team.
    #[arg(long, value_name = "UUID", value_parser = base_uuid)]
    pub base: Option<String>,
    /// With --base: secrets under this Vault path count as holding the token too (repeatable).
    #[arg(long, value_name = "MOUNT/PATH", value_parser = kv_path, requires = "base")]
    pub vault_prefix: Vec<SecretRef>,
}

#[derive(Args, Debug)]
pub struct TokenAuditArgs {
    /// Secrets under this Vault path count as holding a token too, read recursively, KV v1 or v2 (repeatable); the config's profiles' secrets always do.
    #[arg(long, value_name = "MOUNT/PATH", value_parser = kv_path)]
    pub vault_prefix: Vec<SecretRef>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
    /// Only the tokens with findings.
    #[arg(long)]
    pub findings_only: bool,
    /// Exit 1 when any token has one of these findings (for cron and CI).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FINDING,…")]
    pub fail_on: Vec<Finding>,
    /// Revoke every token with one of these findings — never one Vault holds — after showing the list and asking.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "FINDING,…")]
    pub revoke: Vec<Finding>,
    /// Revoke without asking.
    #[arg(short = 'y', long, requires = "revoke")]
    pub yes: bool,
    /// A token without access for this long is `unused`.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "90d")]
    pub unused_after: Duration,
}

/// `MOUNT/PATH`, or a whole `MOUNT`: where Vault secrets are looked for.
fn kv_path(text: &str) -> Result<SecretRef, String> {
    let trimmed = text.trim().trim_matches('/');
    let (mount, path) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if mount.is_empty() || trimmed.contains("//") || trimmed.chars().any(char::is_control) {
        return Err(format!(
            "'{}' is not MOUNT/PATH of a KV mount, e.g. secret/seatable",
            text.chars().filter(|c| !c.is_control()).collect::<String>()
        ));
    }
    Ok(SecretRef {
        mount: mount.to_string(),
        path: path.to_string(),
    })
}

/// A base's UUID (32 hex digits or hyphenated), hyphenated.
fn base_uuid(text: &str) -> Result<String, String> {
    uuid::Uuid::try_parse(text.trim())
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| {
            "is not a base UUID (e.g. 3c899a81-6a0c-4111-bb19-288ebf8442fd; `token audit -o json` shows them as base_uuid)".to_string()
        })
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Args, Debug)]
pub struct GitCredentialArgs {
    #[arg(value_enum)]
    pub action: GitAction,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitAction {
    /// Answer with the base token as the password.
    Get,
    /// Accepted and ignored: the cache is the helper's own.
    Store,
    /// Drop the cached token (git calls this when the server rejected it).
    Erase,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct EraseArgs {
    /// Every cached token of every profile, and cached Vault logins.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::ExecCredential)]
    pub format: Format,
    /// Ignore the cache and exchange a new base token.
    #[arg(long)]
    pub refresh: bool,
}

/// Parses the command line. The two commands other tools run on every
/// request — `get` and `git-credential` — are parsed first by a flat command
/// made of the same definitions (the subcommand's options and the global
/// ones) without building every other subcommand and copying the global
/// options into each, which is most of clap's cost. Anything that does not
/// parse there (help, errors, options before the subcommand) goes through
/// the full parser, so what users see is the same.
pub fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(name) = args.get(1).and_then(|a| a.to_str())
        && let Some(cli) = parse_hot(name, &args[1..])
    {
        return Ok(cli);
    }
    parse_full(args)
}

fn parse_full(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.global.sources = Sources::of(&cmd, &matches, &[]);
    Ok(cli)
}

fn parse_hot(name: &str, args: &[std::ffi::OsString]) -> Option<Cli> {
    use clap::FromArgMatches;
    let flat = clap::Command::new("seatable-cred");
    let flat = match name {
        "get" => GetArgs::augment_args(flat),
        "git-credential" => GitCredentialArgs::augment_args(flat),
        _ => return None,
    };
    // The subcommand's own options are not settings with an origin.
    let own: Vec<clap::Id> = flat.get_arguments().map(|a| a.get_id().clone()).collect();
    let mut flat = GlobalArgs::augment_args(flat).mut_args(|a| a.global(false));
    let matches = flat.try_get_matches_from_mut(args).ok()?;
    let command = match name {
        "get" => Command::Get(GetArgs::from_arg_matches(&matches).ok()?),
        _ => Command::GitCredential(GitCredentialArgs::from_arg_matches(&matches).ok()?),
    };
    let mut global = GlobalArgs::from_arg_matches(&matches).ok()?;
    global.sources = Sources::of(&flat, &matches, &own);
    Some(Cli { global, command })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
        args.iter().map(Into::into).collect()
    }

    /// The hot path reads exactly what the full parser reads.
    #[test]
    fn hot_path_agrees_with_the_full_parser() {
        for args in [
            &["seatable-cred", "get"][..],
            &[
                "seatable-cred",
                "get",
                "-o",
                "json",
                "--refresh",
                "-p",
                "crm",
                "-vv",
            ],
            &[
                "seatable-cred",
                "get",
                "--server-url",
                "https://s",
                "--lifetime",
                "1h",
                "--cache",
                "none",
            ],
            &["seatable-cred", "git-credential", "get", "--profile", "x"],
            &["seatable-cred", "git-credential", "erase"],
        ] {
            let hot = parse_hot(args[1], &os(&args[1..])).expect("hot path parses");
            let full = parse_full(os(args)).unwrap();
            assert_eq!(format!("{hot:?}"), format!("{full:?}"), "{args:?}");
        }
    }

    /// Every option every command takes has its heading: none is left
    /// under plain "Options" for `--help`, none names an argument that is
    /// not there.
    #[test]
    fn every_global_option_is_grouped() {
        use clap::CommandFactory;
        let globals: std::collections::BTreeSet<String> = Cli::command()
            .get_arguments()
            .filter(|a| {
                a.get_long().is_some() && !["help", "version"].contains(&a.get_id().as_str())
            })
            .map(|a| a.get_id().to_string())
            .collect();
        let grouped: std::collections::BTreeSet<String> = HEADINGS
            .iter()
            .flat_map(|(_, ids)| ids.iter().map(|id| id.to_string()))
            .collect();
        assert_eq!(globals, grouped);
        let cmd = command();
        assert!(
            cmd.get_arguments()
                .filter(|a| a.get_id() == "vault_addr")
                .all(|a| a.get_help_heading() == Some("Vault") && a.is_hide_short_help_set())
        );
    }

    /// A usage error points at the help of the command that was run.
    #[test]
    fn usage_errors_name_the_commands_own_help() {
        let line = |args: &[&str]| {
            let e = parse_full(os(args)).unwrap_err();
            usage_line(&e.to_string())
        };
        assert_eq!(
            line(&["seatable-cred", "exec"]),
            "the following required arguments were not provided: <CMD>...; see 'seatable-cred exec --help'"
        );
        assert!(
            line(&["seatable-cred", "-p", "x", "token", "create"])
                .ends_with("; see 'seatable-cred token create --help'")
        );
        assert_eq!(
            line(&["seatable-cred", "--bogus", "get"]),
            "unexpected argument '--bogus' found; see 'seatable-cred --help'"
        );
    }

    #[test]
    fn hot_path_declines_what_it_cannot_parse() {
        assert!(parse_hot("get", &os(&["get", "--help"])).is_none());
        assert!(parse_hot("get", &os(&["get", "--bogus"])).is_none());
        assert!(parse_hot("status", &os(&["status"])).is_none());
        assert!(parse_hot("git-credential", &os(&["git-credential"])).is_none());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            listen_addr("127.0.0.1:9000"),
            Ok(ListenAddr::Tcp("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            listen_addr("unix:/run/user/1000/agent.sock"),
            Ok(ListenAddr::Unix("/run/user/1000/agent.sock".into()))
        );
        assert!(listen_addr("unix:agent.sock").is_err());
        assert!(listen_addr("localhost:8799").is_err());
        assert_eq!(ListenAddr::DEFAULT.to_string(), "127.0.0.1:8799");
        assert_eq!(
            ListenAddr::Unix("/a.sock".into()).to_string(),
            "unix:/a.sock"
        );
    }
}
