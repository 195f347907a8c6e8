//! `init` and files: a file answer that is not a file is refused without
//! being repeated (it may be a secret typed in the wrong place), and the
//! config file is replaced atomically — written beside it, then renamed.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::support::pty::Pty;
use crate::support::{Case, run_with_input, seccomp, shared};

fn config_path(case: &Case) -> PathBuf {
    case.dir.path().join("config/seatable-cred/config.toml")
}

#[test]
fn a_file_answer_that_is_not_a_file_is_refused_without_being_repeated() {
    let mut case = Case::new();
    let shared = shared();
    let secret_id = shared.secret_id();
    case.secrets.push(secret_id.clone());
    let secret_id_file = case.dir.path().join("secret-id");
    std::fs::write(&secret_id_file, &secret_id).unwrap();
    // A directory where the file was asked for; its name stands for a
    // secret typed by mistake.
    let typed = case.dir.path().join("a1b2c3d4-typed-by-mistake");
    std::fs::create_dir(&typed).unwrap();
    let typed = typed.to_str().unwrap();
    case.unset("VAULT_TOKEN");
    let stdout = case.dir.path().join("init.out");
    let mut pty = Pty::spawn(
        &case,
        &[
            "init",
            "--yes",
            "--auth",
            "approle",
            "--role-id",
            &shared.role_id,
        ],
        &stdout,
    );
    pty.answer("File holding the AppRole secret-id", typed);
    pty.expect(
        "FAIL  login     that is not a file: name the file that holds the AppRole secret-id",
    );
    // The login is asked again; the refused answer is not proposed.
    pty.answer(
        "Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none [approle]",
        "",
    );
    pty.answer("Auth mount path [approle]", "");
    pty.answer(&format!("AppRole role-id [{}]", shared.role_id), "");
    pty.expect("File holding the AppRole secret-id");
    let asked_at = pty.transcript.len();
    pty.answer("", secret_id_file.to_str().unwrap());
    let question = pty.transcript[asked_at..].to_string();
    assert!(!question.contains('['), "nothing proposed: {question:?}");
    pty.expect("ok    login     approle login at auth/approle");
    pty.expect("ok    written   [profiles.default]");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    // Only where it was typed (the terminal's echo): never shown back.
    assert_eq!(transcript.matches(typed).count(), 1, "{transcript}");
    let written = std::fs::read_to_string(config_path(&case)).unwrap();
    assert!(
        written.contains(&format!(
            "secret_id_file = \"{}\"\n",
            secret_id_file.display()
        )),
        "{written}"
    );
    assert!(!written.contains(typed), "{written}");
    assert!(!std::fs::read_to_string(&stdout).unwrap().contains(typed));
}

#[test]
fn the_config_file_is_written_beside_and_renamed_over_the_old_one() {
    let mut case = Case::new();
    // No cache file to write: the config file's is the only rename of init.
    case.set("SEATABLE_CRED_CACHE", "none");
    case.run(&["init", "--yes", "-p", "one"]).ok();
    let config = config_path(&case);
    let dir = config.parent().unwrap().to_path_buf();
    let old = std::fs::read_to_string(&config).unwrap();
    let old_inode = std::fs::metadata(&config).unwrap().ino();

    // Killed at the rename: the file is the old one, whole; the new text
    // lies complete in a file beside it.
    let mut cmd = case.command(&["init", "--yes", "-p", "two"]);
    seccomp::deny(&mut cmd, &seccomp::renames(), seccomp::Action::Kill);
    let killed = run_with_input(cmd, "");
    case.assert_no_secrets(&killed);
    assert_eq!(killed.code, -1, "killed at the rename: {}", killed.stderr);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), old);
    let beside: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| *p != config)
        .collect();
    let [temp] = &beside[..] else {
        panic!("one file beside the config file: {beside:?}")
    };
    let new = std::fs::read_to_string(temp).unwrap();
    assert!(
        new.starts_with(&old) && new.contains("[profiles.two]"),
        "{new}"
    );
    assert_eq!(std::fs::metadata(temp).unwrap().mode() & 0o777, 0o600);
    std::fs::remove_file(temp).unwrap();

    // Run through: the path gets a new file; the old one (here a hard link
    // keeps it) is not written to.
    let link = dir.join("old-config.toml");
    std::fs::hard_link(&config, &link).unwrap();
    case.run(&["init", "--yes", "-p", "two"]).ok();
    let now = std::fs::read_to_string(&config).unwrap();
    assert!(
        now.starts_with(&old) && now.contains("[profiles.two]"),
        "{now}"
    );
    assert_ne!(std::fs::metadata(&config).unwrap().ino(), old_inode);
    assert_eq!(std::fs::read_to_string(&link).unwrap(), old);
    assert_eq!(std::fs::metadata(&config).unwrap().mode() & 0o777, 0o600);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
}
