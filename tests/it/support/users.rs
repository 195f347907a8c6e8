//! Throwaway local users, for the attacks another user of the machine can
//! try (a hostile `mkdir` in /dev/shm, a foreign config file) and for a
//! victim whose keyring and default directories are its own, not the
//! developer's.
//!
//! Creating users needs root. CI runs as root; elsewhere these tests fail
//! with a message saying so — they never skip in silence.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// A user that exists until dropped (and is removed at exit if a test
/// panics before its drop ran).
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// A private home on tmpfs, owned by the user.
    pub home: PathBuf,
}

/// useradd and userdel lock /etc/passwd: one at a time in this process.
static ACCOUNTS: Mutex<()> = Mutex::new(());
static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[track_caller]
pub fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root to create throwaway users (CI runs as root): run the tests as root, e.g. in a VM or container"
    );
}

fn account_tool(args: &[&str]) -> std::process::Output {
    let _guard = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = None;
    for _ in 0..50 {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", args[0]));
        // 10: cannot lock /etc/passwd (another test binary is at it); try again.
        if out.status.code() != Some(10) {
            return out;
        }
        last = Some(out);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    last.unwrap()
}

impl User {
    #[track_caller]
    pub fn new(purpose: &str) -> User {
        require_root(purpose);
        let name = format!("scit{}", seatable_standin::random_hex(5));
        let out = account_tool(&[
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            &name,
        ]);
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        register_cleanup(&name);
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let home = tempfile::Builder::new()
            .prefix(&format!("sc-it-home-{name}-"))
            .tempdir_in("/dev/shm")
            .unwrap()
            .keep();
        chown(&home, uid, gid);
        User {
            name,
            uid,
            gid,
            home,
        }
    }

    /// `program` run as this user, with a clean environment holding only
    /// PATH and HOME.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        cmd.uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .current_dir(&self.home);
        cmd
    }

    /// Runs a shell command as this user; panics unless it succeeds.
    #[track_caller]
    pub fn sh(&self, script: &str) {
        let out = self.command("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "as {}: {script}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The default cache directory the helper would use as this user when
    /// XDG_RUNTIME_DIR is unset.
    pub fn shm_dir(&self) -> PathBuf {
        PathBuf::from(format!("/dev/shm/seatable-cred-{}", self.uid))
    }
}

impl Drop for User {
    fn drop(&mut self) {
        remove_traces(self.uid, &self.home);
        let _ = account_tool(&["userdel", &self.name]);
        CREATED.lock().unwrap().retain(|n| n != &self.name);
    }
}

/// Everything under /dev/shm that a user's helper runs may have left.
fn remove_traces(uid: u32, home: &Path) {
    let _ = std::fs::remove_dir_all(home);
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        let prefix = format!("seatable-cred-{uid}");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == prefix || name.starts_with(&format!("{prefix}.")) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn register_cleanup(name: &str) {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| {
        extern "C" fn cleanup() {
            let names = CREATED.lock().map(|n| n.clone()).unwrap_or_default();
            for name in names {
                let _ = Command::new("userdel").arg(&name).output();
            }
        }
        // SAFETY: registering a plain extern "C" fn.
        unsafe { libc::atexit(cleanup) };
    });
    CREATED.lock().unwrap().push(name.to_string());
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// The helper binary where any user may run it: a copy in a 0755
/// directory on tmpfs (the checkout itself may sit in a private home).
pub fn helper_for_anyone() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = crate::support::TempDir::new("bin");
        let path = dir.path().join("seatable-cred");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(crate::support::HELPER, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::mem::forget(dir); // removed at exit with the other temporary directories
        path
    })
    .clone()
}

/// A group that exists until dropped — as a pod's `fsGroup`, which the
/// containers of a pod hold beside their own groups.
pub struct Group {
    pub name: String,
    pub gid: u32,
}

impl Group {
    #[track_caller]
    pub fn new(purpose: &str) -> Group {
        require_root(purpose);
        let name = format!("scitg{}", seatable_standin::random_hex(4));
        let out = account_tool(&["groupadd", "--system", &name]);
        assert!(
            out.status.success(),
            "groupadd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("getent")
            .args(["group", &name])
            .output()
            .unwrap();
        let gid = String::from_utf8_lossy(&out.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.trim().parse().ok())
            .unwrap_or_else(|| panic!("the gid of {name}"));
        Group { name, gid }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = account_tool(&["groupdel", &self.name]);
    }
}

impl User {
    /// `program` run as this user with `group` as a supplementary group
    /// (as a pod's `fsGroup`), through `setpriv`; a clean environment
    /// holding only PATH and HOME.
    pub fn command_in(&self, group: &Group, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg(format!("--groups={}", group.gid))
            .arg("--")
            .arg(program)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .current_dir(&self.home);
        cmd
    }
}
