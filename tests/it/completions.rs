//! Shell completions, driven in the shells themselves — bash's completion
//! function as readline calls it, zsh's completion system on a terminal,
//! fish's `complete -C` — past the first word: a subcommand's options, an
//! option's values, a nested subcommand. (With clap_complete 4.6.11 the
//! bash script's function names did not match its case labels for a
//! hyphenated binary name, so only the first word completed.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Case, TempDir};

/// The script for `shell`, written where that shell looks for it.
fn script(case: &Case, shell: &str, dir: &Path) -> std::path::PathBuf {
    let text = case.run(&["completions", shell]).ok().stdout;
    let name = match shell {
        "zsh" => "_seatable-cred",
        "fish" => "seatable-cred.fish",
        _ => "seatable-cred",
    };
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A shell with a clean environment of its own, bounded in time.
fn shell(program: &str, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TERM", "dumb");
    cmd
}

fn run(mut cmd: Command) -> String {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = crate::support::wait_bounded(cmd.spawn().unwrap(), Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bash offers for the words of `line` (the cursor at its end): the
/// completion function the script registered, called as readline calls it.
fn bash_offers(script: &Path, home: &Path, line: &str) -> Vec<String> {
    let driver = r#"
source "$1"
spec=$(complete -p seatable-cred) || exit 3
fn=${spec##*-F }; fn=${fn%% *}
read -ra COMP_WORDS <<< "$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}
"$fn" seatable-cred "$cur" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let mut cmd = shell("bash", home);
    cmd.args(["--norc", "--noprofile", "-c", driver, "bash"])
        .arg(script)
        .arg(line);
    run(cmd).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_past_the_first_word() {
    let case = Case::new();
    let dir = TempDir::new("bash-completion");
    let script = script(&case, "bash", dir.path());
    let offers = |line: &str| bash_offers(&script, dir.path(), line);
    // The first word.
    let first = offers("seatable-cred g");
    assert!(
        first.contains(&"get".into()) && first.contains(&"git-credential".into()),
        "{first:?}"
    );
    // A subcommand's options, and an option's values.
    let options = offers("seatable-cred get --");
    assert!(
        options.contains(&"--refresh".into()) && options.contains(&"--output".into()),
        "{options:?}"
    );
    let formats = offers("seatable-cred get -o ");
    for format in ["exec-credential", "json", "env", "header", "token"] {
        assert!(formats.contains(&format.into()), "{format}: {formats:?}");
    }
    // A nested subcommand, and its own options.
    let actions = offers("seatable-cred token ");
    for action in ["create", "list", "rotate", "revoke", "prune", "audit"] {
        assert!(actions.contains(&action.into()), "{action}: {actions:?}");
    }
    let audit = offers("seatable-cred token audit --f");
    assert!(
        audit.contains(&"--findings-only".into()) && audit.contains(&"--fail-on".into()),
        "{audit:?}"
    );
    let shells = offers("seatable-cred completions ");
    assert!(shells.contains(&"fish".into()), "{shells:?}");
}

#[test]
fn fish_completes_past_the_first_word() {
    let case = Case::new();
    let dir = TempDir::new("fish-completion");
    let script = script(&case, "fish", dir.path());
    let offers = |line: &str| -> Vec<String> {
        let mut cmd = shell("fish", dir.path());
        cmd.env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .args(["--no-config", "-c"])
            .arg(format!("source {}; complete -C '{line}'", script.display()));
        run(cmd)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    let formats = offers("seatable-cred get -o ");
    for format in ["exec-credential", "json", "env", "header", "token"] {
        assert!(formats.contains(&format.into()), "{format}: {formats:?}");
    }
    let actions = offers("seatable-cred token ");
    for action in ["create", "list", "rotate", "revoke", "prune", "audit"] {
        assert!(actions.contains(&action.into()), "{action}: {actions:?}");
    }
    let options = offers("seatable-cred get --re");
    assert!(options.contains(&"--refresh".into()), "{options:?}");
}

/// zsh's completion system on a terminal, as a person meets it: Tab after
/// an option lists its values; after `token`, its subcommands.
#[test]
fn zsh_completes_past_the_first_word() {
    let case = Case::new();
    let dir = TempDir::new("zsh-completion");
    let functions = dir.path().join("functions");
    std::fs::create_dir_all(&functions).unwrap();
    script(&case, "zsh", &functions);
    // `seatable-cred` on PATH, as after installing it.
    let bin = Path::new(crate::support::HELPER).parent().unwrap();
    let mut cmd = shell("zsh", dir.path());
    cmd.env(
        "PATH",
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
    .env("TERM", "xterm")
    .env("ZDOTDIR", dir.path())
    .args(["-f", "-i"]);
    let mut zsh = rexpect::session::spawn_command(cmd, Some(30_000)).expect("zsh on a pty");
    let setup = format!(
        "PS1='%% '; fpath=({} $fpath); autoload -U compinit; compinit -u -d {}/zcompdump; zstyle ':completion:*' list-prompt ''; zstyle ':completion:*' menu no; echo READY",
        functions.display(),
        dir.path().display()
    );
    zsh.send_line(&setup).unwrap();
    zsh.exp_string("READY").expect("zsh set up");
    let tab = |zsh: &mut rexpect::session::PtySession, line: &str, want: &[&str]| {
        zsh.send(line).unwrap();
        zsh.send("\t").unwrap();
        zsh.flush().unwrap();
        for w in want {
            if let Err(e) = zsh.exp_string(w) {
                panic!("{line:?}<Tab>: no {w:?} ({e})");
            }
        }
        // Clear the line for the next one.
        zsh.send_control('u').unwrap();
        zsh.send_line("").unwrap();
    };
    tab(
        &mut zsh,
        "seatable-cred get -o ",
        &["exec-credential", "header"],
    );
    // (zsh lists them in order.)
    tab(&mut zsh, "seatable-cred token ", &["prune", "rotate"]);
    tab(
        &mut zsh,
        "seatable-cred token audit --fi",
        &["--findings-only"],
    );
    zsh.send_line("exit").unwrap();
}

/// A shell the helper has no script for is a usage error naming it.
#[test]
fn an_unknown_shell_is_a_usage_error() {
    let case = Case::new();
    case.run(&["completions", "tcsh"]).fails(2, "tcsh");
}
