//! The unmodified SeaTable SDKs, installed on first use under the target
//! directory (like OpenBao's venv): PyPI `seatable-api` 4.0.0 (with
//! `prometheus-client`, the reference parser of the metrics text) in a venv,
//! and npm `seatable-api` 1.0.46 in a directory of its own. A missing
//! python3 or npm fails the test that needs it, loudly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

pub const PYTHON_PACKAGES: [&str; 2] = ["seatable-api==4.0.0", "prometheus-client==0.21.1"];
pub const NPM_PACKAGE: &str = "seatable-api@1.0.46";

fn tmp() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("tmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot {what}: {e}"));
    assert!(
        out.status.success(),
        "cannot {what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The venv's python, with the SDK importable.
pub fn python() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = tmp().join("sdk-venv");
        let python = root.join("bin").join("python");
        // Test binaries run in parallel: one installs, the others wait.
        let lock = std::fs::File::create(root.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let stamp = root.join("installed.txt");
        let wanted = PYTHON_PACKAGES.join("\n");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            run(
                Command::new("python3").args(["-m", "venv"]).arg(&root),
                "create the SDK venv (python3 -m venv)",
            );
            run(
                Command::new(root.join("bin").join("pip"))
                    .args(["install", "--quiet"])
                    .args(PYTHON_PACKAGES),
                "pip install the Python SDK",
            );
            std::fs::write(&stamp, &wanted).unwrap();
        }
        python
    })
    .clone()
}

/// A directory whose `node_modules` holds the npm SDK.
pub fn node_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = tmp().join("npm-seatable-api");
        std::fs::create_dir_all(&root).unwrap();
        let lock = std::fs::File::create(root.with_extension("lock")).unwrap();
        lock.lock().unwrap();
        let stamp = root.join("installed.txt");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(NPM_PACKAGE) {
            if !root.join("package.json").is_file() {
                std::fs::write(root.join("package.json"), "{\"private\":true}\n").unwrap();
            }
            run(
                Command::new("npm").current_dir(&root).args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--silent",
                    NPM_PACKAGE,
                ]),
                "npm install the npm SDK",
            );
            std::fs::write(&stamp, NPM_PACKAGE).unwrap();
        }
        root.join("node_modules")
    })
    .clone()
}

/// The language of an SDK script.
#[derive(Clone, Copy, Debug)]
pub enum Lang {
    /// The venv's python, the PyPI SDK importable.
    Python,
    /// node, the npm SDK on `NODE_PATH`.
    Node,
}

/// A script run with one of the SDKs — `python -c` or `node -e` — with only
/// `env` in its environment (node also gets `PATH`).
pub fn script(lang: Lang, code: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = match lang {
        Lang::Python => {
            let mut cmd = Command::new(python());
            cmd.arg("-c").arg(code).env_clear();
            cmd
        }
        Lang::Node => {
            let mut cmd = Command::new("node");
            cmd.arg("-e")
                .arg(code)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("NODE_PATH", node_modules());
            cmd
        }
    };
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs an SDK script to its end; what it printed on stdout, as JSON. A
/// failed script, or one that printed no JSON, fails the test with what it
/// said.
pub fn json(lang: Lang, code: &str, env: &[(&str, &str)]) -> Value {
    let out = script(lang, code, env).output().unwrap();
    assert!(
        out.status.success(),
        "{lang:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{lang:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
