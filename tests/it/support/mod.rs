//! Test harness: real OpenBao, the SeaTable stand-in, and the helper run as
//! a user runs it — a separate process with a clean environment.

pub mod agent;
pub mod bao;
pub mod bao_agent;
pub mod fake;
pub mod hostile;
pub mod mountns;
pub mod proxy;
pub mod pty;
// The Raft cluster is used by tests/raft.rs, a binary of its own.
#[allow(dead_code)]
pub mod raft;
pub mod sdk;
pub mod seccomp;
pub mod userns;
pub mod users;
pub mod vault_faults;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use seatable_standin::{Base, Standin};
use serde_json::{Value, json};

pub use bao::{Bao, Shared, shared};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A loopback port free a moment ago (for an agent that must listen on a
/// port known in advance).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The helper under test.
pub const HELPER: &str = env!("CARGO_BIN_EXE_seatable-cred");

// ---------------------------------------------------------------------------
// Child processes that die with the test process.

type SpawnRequest = (Command, PathBuf, mpsc::Sender<std::io::Result<u32>>);

static CHILDREN: Mutex<Option<HashMap<u32, Child>>> = Mutex::new(None);

/// Spawns `cmd` (output to `log`) so that it is killed when this test process
/// exits, however it exits: the child gets PR_SET_PDEATHSIG, and its parent
/// is a thread that lives as long as the process.
pub fn spawn_tied_to_process(mut cmd: Command, log: &Path) -> u32 {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut cmd, log, reply) in rx {
                let result = (|| {
                    let out = std::fs::File::create(&log)?;
                    cmd.stdin(Stdio::null())
                        .stdout(out.try_clone()?)
                        .stderr(out);
                    use std::os::unix::process::CommandExt;
                    // SAFETY: prctl is async-signal-safe.
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    let child = cmd.spawn()?;
                    let pid = child.id();
                    CHILDREN
                        .lock()
                        .unwrap()
                        .get_or_insert_with(HashMap::new)
                        .insert(pid, child);
                    Ok(pid)
                })();
                let _ = reply.send(result);
            }
        });
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    cmd.env_remove("RUST_LOG");
    spawner
        .lock()
        .unwrap()
        .send((cmd, log.to_path_buf(), tx))
        .unwrap();
    rx.recv().unwrap().expect("spawn")
}

pub fn kill(pid: u32) {
    let child = CHILDREN
        .lock()
        .unwrap()
        .as_mut()
        .and_then(|m| m.remove(&pid));
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

pub fn alive(pid: u32) -> bool {
    let mut guard = CHILDREN.lock().unwrap();
    match guard.as_mut().and_then(|m| m.get_mut(&pid)) {
        Some(child) => matches!(child.try_wait(), Ok(None)),
        None => false,
    }
}

// ---------------------------------------------------------------------------
// Temporary directories, removed at drop and — for statics — at exit.

pub struct TempDir(Option<tempfile::TempDir>);

impl TempDir {
    /// On /dev/shm (memory-backed, as the file cache requires).
    pub fn new(prefix: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sc-it-{prefix}-"))
            .tempdir_in("/dev/shm")
            .unwrap();
        remove_at_exit(dir.path());
        TempDir(Some(dir))
    }
    pub fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

static AT_EXIT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn remove_at_exit(path: &Path) {
    static REGISTER: OnceLock<()> = OnceLock::new();
    REGISTER.get_or_init(|| {
        extern "C" fn cleanup() {
            if let Ok(paths) = AT_EXIT.lock() {
                for p in paths.iter() {
                    let _ = std::fs::remove_dir_all(p);
                }
            }
        }
        // SAFETY: registering a plain extern "C" fn.
        unsafe { libc::atexit(cleanup) };
    });
    AT_EXIT.lock().unwrap().push(path.to_path_buf());
}

// ---------------------------------------------------------------------------
// One test's world: a stand-in, a secret in the shared OpenBao, a home, a cache.

pub struct Case {
    pub dir: TempDir,
    pub standin: Standin,
    pub base: Base,
    /// `secret/it/<id>` (KV v2) holding the base's API token.
    pub secret: String,
    pub env: BTreeMap<String, String>,
    /// Values that must never appear on stderr.
    pub secrets: Vec<String>,
    /// Where the case's helpers run: their keyring is the case's own.
    pub ns: userns::Namespace,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self
    }

    /// Exit code `code` with exactly one stderr line containing `needle`.
    #[track_caller]
    pub fn fails(self, code: i32, needle: &str) -> Out {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stdout.is_empty(),
            "nothing on stdout on failure: {:?}",
            self.stdout
        );
        // Everything on stderr is either a diagnostic the verbosity asked
        // for, or the one error line.
        let is_log = |l: &&str| {
            ["warning", "info", "debug", "trace"]
                .iter()
                .any(|level| l.starts_with(&format!("seatable-cred: {level}: ")))
        };
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !is_log(l)).collect();
        assert_eq!(
            lines.len(),
            1,
            "exactly one line besides diagnostics: {}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("seatable-cred: "),
            "the error line says who speaks: {}",
            lines[0]
        );
        assert!(
            lines[0].contains(needle),
            "error line should mention {needle:?}: {}",
            lines[0]
        );
        self
    }
}

impl Case {
    /// The same profile on another host: the same environment (so the same
    /// base, stand-in and Vault) with a keyring and cache directory of its
    /// own, so that what it is served comes from the shared tier.
    pub fn on_another_host(&self, name: &str) -> Case {
        let mut host = Case {
            dir: TempDir::new(name),
            // Unused: the environment points at `self`'s.
            standin: Standin::start(),
            base: self.base.clone(),
            secret: self.secret.clone(),
            env: self.env.clone(),
            secrets: self.secrets.clone(),
            ns: userns::Namespace::new(),
        };
        let dir = host.dir.path().join("cache");
        host.set("SEATABLE_CRED_CACHE_DIR", dir.to_str().unwrap());
        host
    }

    /// A base in a fresh stand-in, its API token at a new KV v2 path, token auth
    /// with a token holding only the reader policy.
    pub fn new() -> Case {
        let shared = shared();
        let standin = Standin::start();
        Self::with_standin(shared, standin)
    }

    pub fn with_standin(shared: &Shared, standin: Standin) -> Case {
        let base = standin.add_base(Base::default());
        let id = seatable_standin::random_hex(6);
        let secret = format!("secret/it/{id}");
        shared.bao.kv2_put(
            "secret",
            &format!("it/{id}"),
            json!({"api_token": base.api_token}),
        );
        let token = shared.bao.token(&[bao::READER_POLICY], "1h");
        let dir = TempDir::new("case");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
        env.insert("HOME".into(), home.display().to_string());
        env.insert(
            "XDG_CONFIG_HOME".into(),
            dir.path().join("config").display().to_string(),
        );
        env.insert("VAULT_ADDR".into(), shared.bao.addr.clone());
        env.insert("VAULT_TOKEN".into(), token.clone());
        env.insert("SEATABLE_SERVER_URL".into(), standin.url.clone());
        env.insert("SEATABLE_CRED_SECRET".into(), secret.clone());
        env.insert("SEATABLE_CRED_CACHE".into(), "file".into());
        env.insert(
            "SEATABLE_CRED_CACHE_DIR".into(),
            dir.path().join("cache").display().to_string(),
        );
        env.insert("SEATABLE_CRED_TIMEOUT".into(), "20s".into());
        let secrets = vec![base.api_token.clone(), token, bao::ROOT_TOKEN.to_string()];
        Case {
            dir,
            standin,
            base,
            secret,
            env,
            secrets,
            ns: userns::Namespace::new(),
        }
    }

    /// Log in with AppRole (the reader role, a fresh secret-id in the
    /// environment) instead of a Vault token. Returns the secret-id.
    pub fn login_approle(&mut self) -> String {
        let shared = shared();
        let secret_id = shared.secret_id();
        self.secrets.push(secret_id.clone());
        self.unset("VAULT_TOKEN")
            .set("SEATABLE_CRED_AUTH", "approle")
            .set("SEATABLE_CRED_ROLE_ID", shared.role_id.clone())
            .set("SEATABLE_CRED_SECRET_ID", secret_id.clone());
        secret_id
    }

    /// Log in with userpass, the password in the environment.
    pub fn login_userpass(&mut self) {
        let password = shared().userpass_password();
        self.secrets.push(password.to_string());
        self.unset("VAULT_TOKEN")
            .set("SEATABLE_CRED_AUTH", "userpass")
            .set("SEATABLE_CRED_USERNAME", bao::USERPASS_USER)
            .set("SEATABLE_CRED_PASSWORD", password);
    }

    /// Log in with a CI identity token (JWT) in the environment. Returns it.
    pub fn login_jwt(&mut self) -> String {
        let jwt = shared().ci_jwt();
        self.secrets.push(jwt.clone());
        self.unset("VAULT_TOKEN")
            .set("SEATABLE_CRED_AUTH", "jwt")
            .set("SEATABLE_CRED_ROLE", bao::JWT_ROLE)
            .set("SEATABLE_CRED_JWT", jwt.clone());
        jwt
    }

    /// Starts a `get` whose exchange SeaTable holds for 20 s, and returns
    /// once it is in flight — holding the refresh lock.
    pub fn spawn_stuck_refresh(&self) -> Child {
        self.standin
            .push_faults([seatable_standin::Fault::Slow { millis: 20_000 }]);
        let holder = self
            .command(&["get"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.standin.stats().exchange_requests == 0 {
            assert!(
                std::time::Instant::now() < until,
                "the refresh never reached SeaTable"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        holder
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.env.insert(name.into(), value.into());
        self
    }

    pub fn unset(&mut self, name: &str) -> &mut Self {
        self.env.remove(name);
        self
    }

    pub fn cache_dir(&self) -> PathBuf {
        PathBuf::from(&self.env["SEATABLE_CRED_CACHE_DIR"])
    }

    /// Changes the cached base-token entry (`login`: the cached Vault
    /// login instead) in place — how tests move a token into its refresh
    /// window or past its expiry without waiting for the clock.
    #[track_caller]
    pub fn edit_entry(&self, login: bool, edit: impl FnOnce(&mut Value)) {
        let path = self
            .entry_files()
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("vault-")
                    == login
            })
            .expect("a cached entry to edit");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
    }

    /// The cache entries (not lock files) in the file cache directory.
    pub fn entry_files(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.cache_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
    }

    /// The helper as a command with this case's environment (for spawning).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HELPER);
        cmd.args(args).env_clear().envs(&self.env);
        self.ns.join(&mut cmd);
        cmd
    }

    /// Any other program (git, kubectl, sh) with this case's environment,
    /// in this case's namespace — the helpers it starts too.
    pub fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear().envs(&self.env);
        self.ns.join(&mut cmd);
        cmd
    }

    /// Runs the helper with this case's environment only; also checks that
    /// no secret known to the case (nor any base token the run printed)
    /// reached stderr.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        let out = run_with_input(self.command(args), stdin);
        self.assert_no_secrets(&out);
        out
    }

    /// Fails the test if stderr holds a secret of this case or a base token.
    #[track_caller]
    pub fn assert_no_secrets(&self, out: &Out) {
        for s in &self.secrets {
            assert!(
                !out.stderr.contains(s.as_str()),
                "a secret leaked to stderr: {}",
                out.stderr
            );
        }
        // Any JWT on stdout is a base token; it must not be on stderr either.
        for word in out
            .stdout
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_'))
        {
            if word.matches('.').count() == 2 && word.len() > 40 {
                assert!(
                    !out.stderr.contains(word),
                    "the base token leaked to stderr: {}",
                    out.stderr
                );
            }
        }
        assert!(!out.stderr.contains("panicked"), "panic: {}", out.stderr);
    }
}

/// Fails the test if any file under `root` holds one of `secrets` — the
/// directory `skip` aside, the cache, where tokens belong. The heart of the
/// hygiene tests: whatever a command wrote (a config file, a temp file, a
/// log), no secret is in it.
#[track_caller]
pub fn assert_no_secret_in_files(root: &Path, skip: &Path, secrets: &[String]) {
    fn files(dir: &Path, skip: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.starts_with(skip) {
                continue;
            }
            if path.is_dir() {
                files(&path, skip, found);
            } else {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    files(root, skip, &mut found);
    for file in found {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in {}",
                file.display()
            );
        }
    }
}

pub fn run_with_input(mut cmd: Command, stdin: &str) -> Out {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn helper");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let output = wait_bounded(child, std::time::Duration::from_secs(120));
    let _ = writer.join();
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Waits for a child, killing it after `limit` so that no test hangs.
pub fn wait_bounded(child: Child, limit: std::time::Duration) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // SAFETY: signalling a child we spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().expect("wait");
    let _ = tx.send(());
    out
}

/// The cache key (the entry's file stem) of the profile an environment
/// describes, computed by the helper's own library.
pub fn cache_key(env: &BTreeMap<String, String>) -> String {
    struct MapEnv<'a>(&'a BTreeMap<String, String>);
    impl seatable_cred::config::Env for MapEnv<'_> {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned().filter(|v| !v.is_empty())
        }
    }
    let args = seatable_cred::config::GlobalArgs {
        server_url: env.get("SEATABLE_SERVER_URL").cloned(),
        secret: env.get("SEATABLE_CRED_SECRET").cloned(),
        ..Default::default()
    };
    let profile = seatable_cred::config::resolve(&args, &MapEnv(env)).unwrap();
    seatable_cred::cache::Key::for_profile(&profile)
        .as_str()
        .to_string()
}
