//! Another local user against the cache directory, its locks, the config
//! file — and `erase` deleting what is not the helper's. The victim and the
//! attacker are throwaway users, so that nothing of the developer's (the
//! keyring, /dev/shm/seatable-cred-<uid>) is touched.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use seatable_standin::Fault;

use crate::support::users::{User, chown, helper_for_anyone};
use crate::support::{Case, Out, run_with_input, wait_bounded};

/// A case's helper run as `victim`, with the default cache places: no
/// --cache-dir, no XDG_RUNTIME_DIR, the victim's own HOME.
struct Victim<'a> {
    case: &'a Case,
    user: User,
    env: BTreeMap<String, String>,
}

impl<'a> Victim<'a> {
    fn new(case: &'a Case) -> Victim<'a> {
        let user = User::new("a local-user attack");
        let mut env = case.env.clone();
        env.remove("SEATABLE_CRED_CACHE_DIR");
        env.remove("XDG_RUNTIME_DIR");
        env.insert("HOME".into(), user.home.display().to_string());
        env.insert(
            "XDG_CONFIG_HOME".into(),
            user.home.join(".config").display().to_string(),
        );
        Victim { case, user, env }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.user.command(helper_for_anyone());
        cmd.args(args).envs(&self.env);
        cmd
    }

    fn run(&self, args: &[&str]) -> Out {
        let out = run_with_input(self.command(args), "");
        self.case.assert_no_secrets(&out);
        out
    }

    /// `n` helpers started together.
    fn run_concurrently(&self, n: usize, args: &[&str]) -> Vec<Out> {
        let children: Vec<_> = (0..n)
            .map(|_| {
                let mut cmd = self.user.command("sh");
                cmd.arg("-c")
                    .arg("read go; exec \"$0\" \"$@\"")
                    .arg(helper_for_anyone())
                    .args(args)
                    .envs(&self.env)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        let mut children = children;
        for child in children.iter_mut() {
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(b"go\n");
        }
        children
            .into_iter()
            .map(|child| {
                let o = wait_bounded(child, Duration::from_secs(120));
                Out {
                    code: o.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                }
            })
            .collect()
    }

    /// The cache key file name stem of the case's profile.
    fn key(&self) -> String {
        crate::support::cache_key(&self.env)
    }
}

/// The attacker squats the victim's default directory before the victim's
/// first call: `mkdir -m777 /dev/shm/seatable-cred-<victim uid>`.
fn squat(attacker: &User, victim: &User) {
    attacker.sh(&format!("mkdir -m 777 {}", victim.shm_dir().display()));
}

#[test]
fn a_squatted_default_directory_costs_nothing_with_the_file_cache() {
    let case = Case::new();
    let victim = Victim::new(&case);
    let attacker = User::new("a local-user attack");
    squat(&attacker, &victim.user);
    let first = victim.run(&["get", "--cache", "file", "-o", "token"]).ok();
    let second = victim.run(&["get", "--cache", "file", "-o", "token"]).ok();
    assert_eq!(
        first.stdout, second.stdout,
        "the second call is a cache hit"
    );
    assert_eq!(case.standin.exchanges(), 1);
    // The squatted directory was neither used nor changed.
    let squatted = std::fs::metadata(victim.user.shm_dir()).unwrap();
    assert_eq!(squatted.uid(), attacker.uid);
    assert_eq!(squatted.mode() & 0o777, 0o777);
    assert_eq!(
        std::fs::read_dir(victim.user.shm_dir()).unwrap().count(),
        0,
        "nothing of the victim's was written into the attacker's directory"
    );
}

#[test]
fn a_squatted_default_directory_does_not_disable_the_lock() {
    let case = Case::new();
    let victim = Victim::new(&case);
    let attacker = User::new("a local-user attack");
    squat(&attacker, &victim.user);
    case.standin.push_faults([Fault::Slow { millis: 300 }]);
    let outs = victim.run_concurrently(20, &["get", "--cache", "keyring", "-o", "token"]);
    for out in &outs {
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(out.stdout, outs[0].stdout);
    }
    assert_eq!(
        case.standin.stats().exchange_requests,
        1,
        "one exchange for 20 cold processes"
    );
}

#[test]
fn planted_locks_and_fifos_neither_block_nor_hang() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_TIMEOUT", "20s");
    let victim = Victim::new(&case);
    let attacker = User::new("a local-user attack");
    squat(&attacker, &victim.user);
    let dir = victim.user.shm_dir();
    let key = victim.key();
    // A FIFO where the entry goes, and a lock file the attacker holds.
    attacker.sh(&format!(
        "mkfifo -m 666 {dir}/{key}.json && touch {dir}/{key}.lock && chmod 666 {dir}/{key}.lock",
        dir = dir.display()
    ));
    let mut holder = attacker
        .command("flock")
        .arg(dir.join(format!("{key}.lock")))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let started = Instant::now();
    victim.run(&["get", "--cache", "file"]).ok();
    victim.run(&["get", "--cache", "file"]).ok();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the victim waited on the attacker's lock or FIFO: {:?}",
        started.elapsed()
    );
    assert_eq!(case.standin.exchanges(), 1);
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn a_loose_cache_directory_is_refused_and_left_as_it_is() {
    let mut case = Case::new();
    let dir = case.dir.path().join("shared-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A planted entry that would be served if the directory were trusted.
    case.set("SEATABLE_CRED_CACHE_DIR", dir.to_str().unwrap());
    case.run(&["get"]).fails(2, "chmod");
    assert_eq!(
        std::fs::metadata(&dir).unwrap().mode() & 0o777,
        0o777,
        "a directory the helper did not create is never re-moded"
    );
    assert_eq!(case.standin.stats().exchange_requests, 0);
}

#[test]
fn erase_all_deletes_only_the_helpers_own_files() {
    for place in ["tmpfs", "disk"] {
        let mut case = Case::new();
        let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let project = match place {
            "tmpfs" => case.dir.path().join("proj"),
            _ => disk.path().join("proj"),
        };
        std::fs::create_dir(&project).unwrap();
        std::fs::set_permissions(&project, std::fs::Permissions::from_mode(0o755)).unwrap();
        let keep = [
            ("package.json", "{\"name\":\"proj\"}"),
            ("tsconfig.json", "{}"),
            // Named like an entry, but not shaped like one.
            (
                "0123456789abcdef0123456789abcdef.json",
                "{\"name\":\"mine\"}",
            ),
            (".tmp-notes", "my notes"),
        ];
        for (name, text) in keep {
            std::fs::write(project.join(name), text).unwrap();
        }
        case.set("SEATABLE_CRED_CACHE_DIR", project.to_str().unwrap());
        case.run(&["erase", "--all"]).ok();
        for (name, text) in keep {
            assert_eq!(
                std::fs::read_to_string(project.join(name)).ok().as_deref(),
                Some(text),
                "{place}: erase --all deleted or changed {name}"
            );
        }
        assert_eq!(
            std::fs::metadata(&project).unwrap().mode() & 0o777,
            0o755,
            "{place}: erase --all re-moded a directory it did not create"
        );
    }
}

#[test]
fn erase_all_removes_leftover_temp_files() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let entry = case.entry_files().remove(0);
    // What a refresh killed between write and rename leaves behind.
    let leftover = case.cache_dir().join(".tmp-Ab12Cd");
    std::fs::copy(&entry, &leftover).unwrap();
    std::fs::set_permissions(&leftover, std::fs::Permissions::from_mode(0o600)).unwrap();
    case.run(&["erase", "--all"]).ok();
    assert!(!entry.exists());
    assert!(
        !leftover.exists(),
        "a leftover temp file holding a token was kept"
    );
}

#[test]
fn a_config_file_others_can_write_is_refused() {
    let mut case = Case::new();
    let other = User::new("a foreign config file");
    let config = case.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.default]\nserver_url = \"{}\"\n",
            case.standin.url
        ),
    )
    .unwrap();
    case.unset("SEATABLE_SERVER_URL")
        .set("SEATABLE_CRED_CONFIG", config.to_str().unwrap());
    let set_mode = |mode: u32| {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(0o644);
    case.run(&["get"]).ok();
    set_mode(0o666);
    case.run(&["get"]).fails(2, "chmod");
    set_mode(0o664);
    case.run(&["get"]).fails(2, "chmod");
    set_mode(0o644);
    chown(&config, other.uid, other.gid);
    // (In the case's user namespace the other user shows as unmapped.)
    case.run(&["get"]).fails(2, "belongs to uid");
    assert_eq!(case.standin.exchanges(), 1);
}

/// A Vault token file (an agent's sink, `vault_token_file`, and
/// `~/.vault-token`) that another user owns, or that group or others may
/// write, is refused as the config file is — whoever could write it would
/// choose the Vault identity the helper acts as — and its token never
/// reaches Vault. A FIFO planted in its place neither hangs the helper nor
/// is read.
#[test]
fn a_vault_token_file_others_own_or_can_write_is_refused() {
    let mut case = Case::new();
    let other = User::new("a foreign Vault token file");
    let vault =
        crate::support::vault_faults::VaultFaults::start(&crate::support::shared().bao.addr);
    let token = case.env["VAULT_TOKEN"].clone();
    let file = case.dir.path().join("vault-token");
    std::fs::write(&file, format!("{token}\n")).unwrap();
    case.unset("VAULT_TOKEN")
        .set("VAULT_ADDR", vault.url.as_str())
        .set("SEATABLE_CRED_CACHE", "none")
        .set("SEATABLE_CRED_VAULT_TOKEN_FILE", file.to_str().unwrap());
    let set_mode =
        |mode: u32| std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    // The agent's default mode, and a private one: fine.
    set_mode(0o640);
    case.run(&["get"]).ok();
    set_mode(0o600);
    case.run(&["get"]).ok();
    let asked = vault.connections();
    assert!(asked > 0);
    set_mode(0o620);
    case.run(&["get"])
        .fails(2, "is writable by others (mode 620)");
    set_mode(0o602);
    case.run(&["get"]).fails(2, "chmod go-w");
    // Readable, so that what refuses it is the owner check (a 0600 file of
    // another user cannot even be opened).
    set_mode(0o644);
    chown(&file, other.uid, other.gid);
    // (In the case's user namespace the other user shows as unmapped.)
    let out = case.run(&["get"]).fails(2, "belongs to uid");
    assert!(out.stderr.contains("Vault token file"), "{}", out.stderr);
    // ~/.vault-token, what `bao login` writes, by the same rules.
    let home_token = std::path::Path::new(&case.env["HOME"]).join(".vault-token");
    std::fs::rename(&file, &home_token).unwrap();
    case.unset("SEATABLE_CRED_VAULT_TOKEN_FILE");
    case.run(&["get"]).fails(2, "belongs to uid");
    chown(&home_token, 0, 0);
    std::fs::set_permissions(&home_token, std::fs::Permissions::from_mode(0o666)).unwrap();
    case.run(&["get"]).fails(2, "is writable by others");
    assert_eq!(
        vault.connections(),
        asked,
        "a refused file's token never reached Vault"
    );

    // Another user's FIFO where the sink should be: refused at once.
    let shared_dir = case.dir.path().join("shared");
    std::fs::create_dir(&shared_dir).unwrap();
    std::fs::set_permissions(&shared_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fifo = shared_dir.join("vault-token");
    other.sh(&format!("mkfifo -m 644 {}", fifo.display()));
    case.set("SEATABLE_CRED_VAULT_TOKEN_FILE", fifo.to_str().unwrap());
    let started = Instant::now();
    case.run(&["get"]).fails(2, "belongs to uid");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the helper waited on the FIFO"
    );
    assert_eq!(vault.connections(), asked);
}

/// A FIFO planted as the config file (in a directory others may write)
/// neither hangs the helper nor escapes the owner check.
#[test]
fn a_planted_fifo_config_is_refused_at_once() {
    let mut case = Case::new();
    let other = User::new("a FIFO planted as the config file");
    let shared_dir = case.dir.path().join("shared");
    std::fs::create_dir(&shared_dir).unwrap();
    std::fs::set_permissions(&shared_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let fifo = shared_dir.join("config.toml");
    other.sh(&format!("mkfifo -m 644 {}", fifo.display()));
    case.unset("SEATABLE_SERVER_URL")
        .set("SEATABLE_CRED_CONFIG", fifo.to_str().unwrap())
        .set("SEATABLE_CRED_TIMEOUT", "2s");
    let started = Instant::now();
    case.run(&["get"]).fails(2, "belongs to uid");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the helper waited on the FIFO"
    );
}

#[test]
fn the_victims_own_config_is_fine() {
    let case = Case::new();
    let mut victim = Victim::new(&case);
    let dir = victim.user.home.join(".config/seatable-cred");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.default]\nserver_url = \"{}\"\n",
            case.standin.url
        ),
    )
    .unwrap();
    for p in [
        victim.user.home.join(".config").as_path(),
        dir.as_path(),
        config.as_path(),
    ] {
        chown(p, victim.user.uid, victim.user.gid);
    }
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    victim.env.remove("SEATABLE_SERVER_URL");
    victim.run(&["get", "--cache", "file"]).ok();
    let _ = Path::new(&config);
}
