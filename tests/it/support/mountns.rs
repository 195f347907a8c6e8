//! A private mount namespace for one run of the helper: what a test mounts
//! there (a tmpfs over a system directory, a disk directory over /dev/shm)
//! only that run sees — the machine's filesystem is never touched.
//!
//! The namespace is made by `unshare --mount` inside the case's user
//! namespace, where the test holds the capabilities mounting needs even
//! when it does not run as root.

use super::{Case, HELPER, Out, run_with_input};

/// Runs `setup` (a shell script: mounts, files) in a fresh private mount
/// namespace, then the helper with `args` there. `cmd` may add environment
/// or a seccomp filter before it runs.
pub fn run(
    case: &Case,
    setup: &str,
    args: &[&str],
    cmd: impl FnOnce(&mut std::process::Command),
) -> Out {
    let mut unshare = case.tool("unshare");
    unshare
        .args(["--mount", "--propagation", "private", "--", "sh", "-euc"])
        .arg(format!("{setup}\nexec \"$0\" \"$@\""))
        .arg(HELPER)
        .args(args);
    cmd(&mut unshare);
    let out = run_with_input(unshare, "");
    assert!(
        !out.stderr.contains("unshare: ") && !out.stderr.contains("mount: "),
        "cannot make a private mount namespace (unshare --mount, mount): {}",
        out.stderr
    );
    case.assert_no_secrets(&out);
    out
}

/// Shell: mounts an empty tmpfs where `path` (a directory, maybe missing)
/// would be — over its deepest existing ancestor — and creates `path` on it.
pub fn empty_directory(path: &str) -> String {
    format!(
        r#"want='{path}'
top="$want"
while [ ! -d "$top" ]; do top="$(dirname "$top")"; done
[ "$(cd "$top" && pwd -P)" != / ] || {{ echo "refusing to mount over /" >&2; exit 97; }}
mount -t tmpfs -o mode=0755 test-tmpfs "$top"
mkdir -p "$want""#
    )
}
