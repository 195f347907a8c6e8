//! `serve` (SPEC §13): a local agent for long-running programs, laid out as
//! OpenBao's agent/proxy is —
//!
//! * [`refresher`]: the auth loop, one task per profile, producing base
//!   tokens through the broker (never reaching into cache or Vault);
//! * sinks, where results go: the local cache (the broker writes it) and
//!   the [`env_file`] with the agent's URL and the profile's local key;
//! * the HTTP front: [`listen`] (TCP, a Unix socket, or systemd's socket),
//!   [`listener`] (connections and their limits: the peer's user checked
//!   by [`peer`], keyless and keyed connections by [`budget`]),
//!   [`handler`] (routes), [`exchange`] (SeaTable's token endpoint, answered
//!   locally), [`proxy`] (base operations, forwarded with the real token,
//!   [`headers`] and paths cleaned), [`files`] (SeaTable's file endpoints,
//!   forwarded with the API token in place of a valid local key) through
//!   [`upstream`] (the client for a
//!   profile's SeaTable origin), [`health`] and [`metrics`]; all answer
//!   through [`reply`], a leaf;
//! * [`session`]: local keys and session tokens; [`state`]: what is shared;
//!   [`notify`]: systemd's readiness protocol.
//!
//! The agent runs on a multi-thread tokio runtime of its own; nothing of it
//! is on the path of `get`, which stays runtime-free on a cache hit.

mod budget;
mod env_file;
mod exchange;
mod files;
mod handler;
mod headers;
mod health;
mod listen;
mod listener;
mod metrics;
mod notify;
// Public (hidden) for bench/'s measure of what the check costs per connection.
#[doc(hidden)]
pub mod peer;
mod proxy;
mod refresher;
mod reply;
pub(crate) mod session;
mod state;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::cli::{ListenAddr, ServeArgs};
use crate::config::{self, Auth, GlobalArgs, ProcessEnv, Profile, SecretInput};
use crate::error::Failure;
use listen::Listener;
use metrics::Metrics;
use peer::Trust;
use state::{Agent, Profiles, Served};
use upstream::Upstream;

/// Runs the agent until SIGTERM or SIGINT; the exit code.
pub fn run(global: &GlobalArgs, args: &ServeArgs) -> Result<u8> {
    let mut names: Vec<String> = Vec::new();
    for name in &args.profiles {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    if names.is_empty() {
        names.push(
            global
                .profile
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        );
    }
    // Every profile is checked before anything listens: a typo is exit 2.
    let profiles = resolve(global, &names)?;
    // Before any thread exists: taking it clears systemd's variables.
    let inherited = listen::inherited()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .enable_all()
        .thread_name("seatable-cred-serve")
        .build()
        .map_err(|e| Failure::internal(format!("cannot start the agent's runtime: {e}")))?;
    let context = Context {
        global: global.clone(),
        names,
        max_connections: args.max_connections as usize,
        trust: Trust {
            own: crate::cache::own::euid(),
            uids: args.allow_uid.clone(),
            gids: args.allow_gid.clone(),
        },
    };
    let listen = args.listen.clone().unwrap_or(ListenAddr::DEFAULT);
    if inherited.is_some() && args.listen.is_some() {
        info!("serving on the socket systemd passed; --listen {listen} is not used");
    }
    let result = runtime.block_on(agent(context, listen, inherited, profiles));
    // Refreshes still waiting on the network are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// Half the cores, at least one: the agent shares its machine with the
/// programs it serves (it is their local agent), and its work per request is
/// small next to theirs and SeaTable's. More workers than that only hand
/// requests between threads — a wake-up of another thread for each — and
/// compete with the clients for the cores; one worker proxies tens of
/// thousands of requests a second.
fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// What a reload needs to resolve the profiles again.
struct Context {
    global: GlobalArgs,
    names: Vec<String>,
    max_connections: usize,
    /// Whom the agent serves.
    trust: Trust,
}

async fn agent(
    context: Context,
    listen: ListenAddr,
    inherited: Option<listen::Inherited>,
    profiles: Vec<Profile>,
) -> Result<u8> {
    let signal_failure =
        |e: std::io::Error| Failure::internal(format!("cannot handle signals: {e}"));
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_failure)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_failure)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_failure)?;

    let listener = Listener::open(&listen, inherited).await?;
    let url = listener.url()?;
    if let Some(addr) = listener.beyond_loopback() {
        warn!(
            "listening on {addr}, which is not a loopback address: whoever can reach it from another host and holds a local key or a session token can use the bases; keep it behind a firewall or in a private network",
        );
    }
    not_itself(&profiles, &url)?;
    let metrics = Metrics::default();
    let env_files: Vec<(String, std::path::PathBuf)> = profiles
        .iter()
        .map(|p| {
            Ok((
                p.name.clone(),
                env_file::EnvFile::for_profile(p)?.path().into(),
            ))
        })
        .collect::<Result<_>>()?;
    let served = prepare_all(profiles, &url, None, &metrics)?;
    let agent = Arc::new(Agent::new(
        url.clone(),
        Profiles::new(served),
        metrics,
        proxy::MAX_BODIES_HELD,
    ));
    let mut refreshers = spawn_refreshers(&agent);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(listener::serve(
        listener,
        agent.clone(),
        context.max_connections,
        context.trust.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    info!(url = %url, "listening");
    // Said without -v (not with -q): where clients connect, and the files
    // that tell them.
    if tracing::level_filters::LevelFilter::current() >= tracing::Level::WARN {
        crate::process::say(&started(&url, &env_files));
    }
    notify::notify("READY=1");

    let why = loop {
        tokio::select! {
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => {
                notify::reloading();
                reload(&context, &agent, &mut refreshers).await;
                notify::notify("READY=1");
            }
        }
    };
    notify::notify("STOPPING=1");
    info!("{why}: no new connections; finishing the requests in flight");
    for refresher in &refreshers {
        refresher.abort();
    }
    let _ = stop.send(());
    let cut = server.await.unwrap_or(0);
    if cut == 0 {
        info!("stopped");
    }
    Ok(0)
}

fn spawn_refreshers(agent: &Agent) -> Vec<JoinHandle<()>> {
    agent
        .profiles()
        .list
        .iter()
        .map(|served| refresher::spawn(served.clone()))
        .collect()
}

/// SIGHUP: the config file is read again and every profile rebuilt; a
/// profile whose token-determining settings did not change keeps its
/// token. A config that does not resolve leaves the agent as it was.
async fn reload(context: &Context, agent: &Arc<Agent>, refreshers: &mut Vec<JoinHandle<()>>) {
    info!("SIGHUP: reloading the configuration");
    let global = context.global.clone();
    let names = context.names.clone();
    let for_blocking = agent.clone();
    let rebuilt = tokio::task::spawn_blocking(move || {
        let profiles = resolve(&global, &names)?;
        not_itself(&profiles, &for_blocking.url)?;
        let previous = for_blocking.profiles();
        prepare_all(
            profiles,
            &for_blocking.url,
            Some(&previous),
            &for_blocking.metrics,
        )
    })
    .await;
    match rebuilt {
        Ok(Ok(list)) => {
            agent.replace(Profiles::new(list));
            for old in refreshers.drain(..) {
                old.abort();
            }
            *refreshers = spawn_refreshers(agent);
            info!("reloaded the configuration");
        }
        Ok(Err(err)) => error!(
            "reload failed, keeping the running configuration: {}",
            crate::error::one_line(&err)
        ),
        Err(err) => error!("reload failed, keeping the running configuration: {err}"),
    }
}

fn resolve(global: &GlobalArgs, names: &[String]) -> Result<Vec<Profile>> {
    names
        .iter()
        .map(|name| {
            let mut args = global.clone();
            args.profile = Some(name.clone());
            let profile = config::resolve(&args, &ProcessEnv)?;
            if let Auth::Userpass {
                password: SecretInput::Prompt(_),
                ..
            } = &profile.vault.auth
            {
                return Err(Failure::usage(format!(
                    "profile {name}: serve cannot ask for the Vault password at every refresh: set SEATABLE_CRED_PASSWORD or use another --auth"
                ))
                .into());
            }
            Ok(profile)
        })
        .collect()
}

/// The line `serve` starts with: the profiles, where it listens, and each
/// profile's env file (named for the profile, not always `default.env`).
fn started(url: &str, env_files: &[(String, std::path::PathBuf)]) -> String {
    let names: Vec<&str> = env_files.iter().map(|(n, _)| n.as_str()).collect();
    let files: Vec<String> = env_files
        .iter()
        .map(|(_, f)| f.display().to_string())
        .collect();
    let (profiles, files_are) = match names.len() {
        1 => ("profile", "its clients' env file"),
        _ => ("profiles", "its clients' env files"),
    };
    format!(
        "seatable-cred: serving {profiles} {} on {url}; {files_are}: {} (SIGTERM stops it)\n",
        names.join(", "),
        files.join(", ")
    )
}

/// A profile whose SeaTable is the agent itself would send its API token
/// to the agent (an agent started from a shell that loaded its own env
/// file, or pointed at its port): refused.
fn not_itself(profiles: &[Profile], url: &str) -> Result<()> {
    let origin = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
    match profiles.iter().find(|p| origin(&p.server_url) == origin(url)) {
        Some(p) => Err(Failure::usage(format!(
            "profile {}: its server_url {} is this agent's own address: set the profile's SeaTable server",
            p.name, p.server_url
        ))
        .into()),
        None => Ok(()),
    }
}

/// Each profile's key (reused from its env file), env file and upstream.
fn prepare_all(
    profiles: Vec<Profile>,
    url: &str,
    previous: Option<&Profiles>,
    metrics: &Metrics,
) -> Result<Vec<Arc<Served>>> {
    profiles
        .into_iter()
        .map(|profile| {
            let env_file = env_file::EnvFile::for_profile(&profile)?;
            let key = env_file.key();
            env_file.write(url, &key, &profile.name)?;
            info!(profile = %profile.name, file = %env_file.path().display(), "wrote the env file");
            let upstream = Upstream::for_profile(&profile)?;
            let carried = previous
                .and_then(|p| p.by_name(&profile.name))
                .filter(|p| crate::broker::same_token(&p.profile, &profile))
                .and_then(|p| p.current());
            let counters = metrics.profile(&profile.name);
            Ok(Arc::new(Served::new(
                profile, key, upstream, counters, carried,
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_names_the_address_and_each_env_file() {
        let one = [("crm".to_string(), "/run/sc/serve/crm.env".into())];
        assert_eq!(
            started("http://127.0.0.1:8799", &one),
            "seatable-cred: serving profile crm on http://127.0.0.1:8799; its clients' env file: /run/sc/serve/crm.env (SIGTERM stops it)\n"
        );
        let two = [
            one[0].clone(),
            ("ops".to_string(), "/run/sc/serve/ops.env".into()),
        ];
        assert!(
            started("http://h:1", &two).starts_with(
                "seatable-cred: serving profiles crm, ops on http://h:1; its clients' env files: /run/sc/serve/crm.env, /run/sc/serve/ops.env"
            )
        );
    }
}
