//! `init`: driven through a pseudo-terminal as a person answers it, and
//! without a terminal as scripts run it — against the real OpenBao and the
//! stand-in. The written profile must work on its own (`get -p NAME` with
//! nothing else set), the printed snippets must work as printed (kubectl,
//! git, the Python SDK), and no secret may reach the file, stdout, stderr
//! or the terminal.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::bao::which;
use crate::support::pty::Pty;
use crate::support::{Case, HELPER, Out, bao, run_with_input, sdk, shared};

fn config_path(case: &Case) -> PathBuf {
    case.dir.path().join("config/seatable-cred/config.toml")
}

const EXISTING: &str = "# Profiles of this machine.\n\n# billing: read-only, kept as it is\n[profiles.billing]\nserver_url = \"https://billing.example.com\" # the old one\nsecret = \"kv/billing\"\n";

fn write_existing(case: &Case) -> PathBuf {
    let path = config_path(case);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, EXISTING).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The Vault tokens of logins cached in the case's file cache.
fn cached_vault_tokens(case: &Case) -> Vec<String> {
    case.entry_files()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("vault-")
        })
        .map(|p| {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            v["vault_token"].as_str().unwrap().to_string()
        })
        .collect()
}

#[track_caller]
fn assert_no_secret(case: &Case, what: &str, text: &str) {
    let mut secrets = case.secrets.clone();
    secrets.extend(cached_vault_tokens(case));
    for secret in secrets {
        assert!(!text.contains(&secret), "a secret in {what}:\n{text}");
    }
    assert!(!text.contains("eyJ"), "a token in {what}:\n{text}");
}

/// The case's environment without anything that sets a profile's
/// settings: what a tool that knows only the profile's name has.
fn bare(case: &mut Case) {
    for name in [
        "SEATABLE_SERVER_URL",
        "SEATABLE_CRED_SECRET",
        "SEATABLE_CRED_CACHE",
        "SEATABLE_CRED_CACHE_DIR",
        "SEATABLE_CRED_TIMEOUT",
        "SEATABLE_CRED_AUTH",
        "SEATABLE_CRED_ROLE_ID",
        "SEATABLE_CRED_USERNAME",
        "VAULT_ADDR",
    ] {
        case.unset(name);
    }
}

#[test]
fn asks_step_by_step_and_asks_again_after_a_wrong_answer() {
    let mut case = Case::new();
    let config = write_existing(&case);
    let shared = shared();
    // AppRole, its secret-id in a file; the rest is asked — only the Vault
    // address comes from the environment, as a proposal.
    let secret_id = shared.secret_id();
    case.secrets.push(secret_id.clone());
    let secret_id_file = case.dir.path().join("secret-id");
    std::fs::write(&secret_id_file, &secret_id).unwrap();
    for name in [
        "VAULT_TOKEN",
        "SEATABLE_SERVER_URL",
        "SEATABLE_CRED_SECRET",
        "SEATABLE_CRED_CACHE",
    ] {
        case.unset(name);
    }
    let stdout = case.dir.path().join("init.out");
    let mut pty = Pty::spawn(&case, &["init", "-p", "crm"], &stdout);
    pty.expect("Writing profile 'crm'");
    pty.answer(
        "SeaTable server URL (e.g. https://cloud.seatable.io)",
        "nonsense",
    );
    pty.expect("FAIL  seatable  your answer to 'SeaTable server URL': 'nonsense' is not a URL");
    // A malformed answer is not proposed again.
    pty.answer("SeaTable server URL", &case.standin.url);
    pty.expect(&format!("ok    seatable  {} reachable", case.standin.url));
    pty.answer(&format!("Vault address [{}]", shared.bao.addr), "");
    pty.expect("ok    vault");
    pty.answer("Cache backend", "file");
    pty.expect(&format!(
        "ok    cache     file in {}",
        case.cache_dir().display()
    ));
    pty.answer(
        "Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none [token]",
        "approle",
    );
    pty.answer("Auth mount path [approle]", "");
    pty.answer("AppRole role-id", &shared.role_id);
    // A file that is not there: the login settings are asked again.
    pty.answer(
        "File holding the AppRole secret-id",
        "/nonexistent/secret-id",
    );
    pty.expect("FAIL  login     no readable file there");
    pty.answer(
        "Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none [approle]",
        "",
    );
    pty.answer("Auth mount path [approle]", "");
    pty.answer(&format!("AppRole role-id [{}]", shared.role_id), "");
    pty.answer(
        "File holding the AppRole secret-id",
        secret_id_file.to_str().unwrap(),
    );
    pty.expect("ok    login     approle login at auth/approle");
    // A wrong secret path: Vault says so, and it is asked again.
    pty.answer(
        "Secret holding the API token, MOUNT/PATH (e.g. secret/seatable/crm)",
        "secret/it/nope",
    );
    pty.answer("Field of the API token [api_token]", "");
    pty.expect("FAIL  secret    no secret at secret/it/nope");
    pty.answer(
        "Secret holding the API token, MOUNT/PATH [secret/it/nope]",
        &case.secret,
    );
    pty.expect(&format!(
        "ok    secret    {} has a non-empty string field api_token",
        case.secret
    ));
    pty.expect("ok    exchange  API token accepted: base");
    pty.expect("ok    written   [profiles.crm]");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    // The field was not asked again: only the path was wrong.
    assert_eq!(
        transcript.matches("Field of the API token").count(),
        1,
        "{transcript}"
    );

    // The file: 0600, the other profile and the comments as they were.
    let text = std::fs::read_to_string(&config).unwrap();
    assert_eq!(std::fs::metadata(&config).unwrap().mode() & 0o777, 0o600);
    assert!(text.starts_with(EXISTING), "{text}");
    let table = &text[EXISTING.len()..];
    assert_eq!(
        table,
        format!(
            "\n[profiles.crm]\nserver_url = \"{}\"\nvault_addr = \"{}\"\nsecret = \"{}\"\nfield = \"api_token\"\nauth = \"approle\"\nrole_id = \"{}\"\nsecret_id_file = \"{}\"\ncache = \"file\"\ncache_dir = \"{}\"\ntimeout = \"20s\"\n",
            case.standin.url,
            shared.bao.addr,
            case.secret,
            shared.role_id,
            secret_id_file.display(),
            case.cache_dir().display()
        )
    );
    // stdout: the snippets only; the questions went to the terminal.
    let out = std::fs::read_to_string(&stdout).unwrap();
    assert!(out.starts_with("# [profiles.crm] written to "), "{out}");
    assert!(
        out.contains(r#"args: ["get", "--profile", "crm"]"#),
        "{out}"
    );
    assert!(!out.contains("Vault address"), "{out}");
    assert!(!transcript.contains("# kubeconfig"), "{transcript}");
    for (what, text) in [
        ("the terminal", &transcript),
        ("stdout", &out),
        ("the config file", &text),
    ] {
        assert_no_secret(&case, what, text);
    }

    // The profile works by its name alone — from the cache init filled.
    bare(&mut case);
    let exchanges = case.standin.exchanges();
    let got = case.run(&["get", "-p", "crm", "-o", "json"]).ok().json();
    assert_eq!(got["dtable_uuid"], case.base.dtable_uuid.as_str());
    assert_eq!(
        case.standin.exchanges(),
        exchanges,
        "init's exchange was cached for get"
    );
    // And without it: a fresh login with the secret-id file, a new exchange.
    case.run(&["erase", "-p", "crm", "--all"]).ok();
    case.run(&["get", "-p", "crm", "--refresh"]).ok();
    assert_eq!(case.standin.exchanges(), exchanges + 1);
}

#[test]
fn a_userpass_password_is_asked_without_echo_and_never_written() {
    let mut case = Case::new();
    let password = shared().userpass_password();
    case.secrets.push(password.to_string());
    case.unset("VAULT_TOKEN");
    let stdout = case.dir.path().join("init.out");
    // Flags and the environment answer the rest; --yes takes the proposals.
    let mut pty = Pty::spawn(
        &case,
        &[
            "init",
            "--yes",
            "--auth",
            "userpass",
            "--username",
            bao::USERPASS_USER,
        ],
        &stdout,
    );
    pty.expect(&format!(
        "SeaTable server URL: {} (SEATABLE_SERVER_URL)",
        case.standin.url
    ));
    pty.expect("Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none: userpass (from --auth)");
    // A wrong password first: the login is asked again, the password too.
    pty.answer_hidden(
        "Password of Vault user alice (not shown, never stored): ",
        "wrong-horse-1",
    );
    pty.expect("FAIL  login");
    pty.answer(
        "Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none [userpass]",
        "",
    );
    pty.answer("Auth mount path [userpass]", "");
    pty.answer("Vault username [alice]", "");
    pty.answer_hidden(
        "Password of Vault user alice (not shown, never stored): ",
        password,
    );
    pty.expect("ok    login     userpass login at auth/userpass");
    pty.expect("the password is not written: set SEATABLE_CRED_PASSWORD where the helper runs");
    pty.expect("ok    written   [profiles.default]");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    case.secrets.push("wrong-horse-1".into());
    let text = std::fs::read_to_string(config_path(&case)).unwrap();
    assert!(
        text.contains("auth = \"userpass\"\nusername = \"alice\"\n"),
        "{text}"
    );
    for (what, text) in [("the terminal", &transcript), ("the config file", &text)] {
        assert_no_secret(&case, what, text);
    }
    // The written profile logs in afresh with the password from the environment.
    bare(&mut case);
    case.set("SEATABLE_CRED_CACHE", "none")
        .set("SEATABLE_CRED_PASSWORD", password);
    case.run(&["get", "-vvvv"]).ok();
}

#[test]
fn end_of_input_on_the_terminal_writes_nothing() {
    let mut case = Case::new();
    case.unset("SEATABLE_SERVER_URL");
    let stdout = case.dir.path().join("init.out");
    let mut pty = Pty::spawn(&case, &["init"], &stdout);
    pty.expect("SeaTable server URL (e.g. https://cloud.seatable.io): ");
    pty.session.send_control('d').unwrap();
    pty.expect(
        "seatable-cred: init ended at the end of the terminal's input (^D): nothing was written",
    );
    let (code, transcript) = pty.finish();
    assert_eq!(code, 2, "{transcript}");
    assert!(!config_path(&case).exists());
    assert_eq!(std::fs::read_to_string(&stdout).unwrap(), "");
}

#[test]
fn without_a_terminal_flags_and_environment_answer() {
    let mut case = Case::new();
    let (bao_addr, secret, server) = (
        case.env["VAULT_ADDR"].clone(),
        case.secret.clone(),
        case.standin.url.clone(),
    );
    for name in ["SEATABLE_SERVER_URL", "SEATABLE_CRED_SECRET", "VAULT_ADDR"] {
        case.unset(name);
    }
    let out = case
        .run(&[
            "init",
            "--yes",
            "-p",
            "ci",
            "--server-url",
            &server,
            "--vault-addr",
            &bao_addr,
            "--secret",
            &secret,
            "-vvvv",
        ])
        .ok();
    let config = config_path(&case);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!(
            "[profiles.ci]\nserver_url = \"{server}\"\nvault_addr = \"{bao_addr}\"\nsecret = \"{secret}\"\nfield = \"api_token\"\nauth = \"token\"\ncache = \"file\"\ncache_dir = \"{}\"\ntimeout = \"20s\"\n",
            case.cache_dir().display()
        )
    );
    assert_eq!(std::fs::metadata(&config).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(config.parent().unwrap()).unwrap().mode() & 0o777,
        0o700,
        "the directory it made is the user's alone"
    );
    assert!(
        out.stdout.starts_with(&format!(
            "# [profiles.ci] written to {}\n",
            config.display()
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("ok    exchange  API token accepted"),
        "{}",
        out.stderr
    );
    assert_no_secret(&case, "stdout", &out.stdout);
    assert_no_secret(&case, "stderr", &out.stderr);

    // The profile by its name, with only the Vault token besides.
    bare(&mut case);
    let got = case.run(&["get", "-p", "ci", "-o", "json"]).ok().json();
    assert_eq!(got["cached"], true);

    // Again: refused without --force, the file untouched; replaced with it.
    let before = std::fs::read_to_string(&config).unwrap();
    let args = [
        "init",
        "--yes",
        "-p",
        "ci",
        "--server-url",
        &server,
        "--vault-addr",
        &bao_addr,
        "--secret",
        &secret,
        "--field",
        "api_token",
        "--cache",
        "none",
    ];
    case.run(&args).fails(2, "profile 'ci' exists");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
    let mut forced = args.to_vec();
    forced.push("--force");
    case.run(&forced).ok();
    let after = std::fs::read_to_string(&config).unwrap();
    assert!(
        after.contains("cache = \"none\"") && !after.contains("cache_dir"),
        "{after}"
    );
}

#[test]
fn a_kubernetes_login_is_written_as_its_role_and_token_file() {
    let mut case = Case::new();
    let sa = shared().service_account_jwt();
    case.secrets.push(sa.clone());
    let file = case.dir.path().join("sa-token");
    std::fs::write(&file, &sa).unwrap();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "kubernetes")
        .set("SEATABLE_CRED_ROLE", bao::K8S_ROLE);
    let out = case
        .run(&["init", "--jwt-file", file.to_str().unwrap(), "-vvvv"])
        .ok();
    assert_no_secret(&case, "stdout", &out.stdout);
    let text = std::fs::read_to_string(config_path(&case)).unwrap();
    assert!(
        text.contains(&format!(
            "auth = \"kubernetes\"\nrole = \"{}\"\njwt_file = \"{}\"\n",
            bao::K8S_ROLE,
            file.display()
        )),
        "{text}"
    );
    assert_no_secret(&case, "the config file", &text);
    bare(&mut case);
    case.unset("SEATABLE_CRED_ROLE")
        .set("SEATABLE_CRED_CACHE", "none");
    case.run(&["get", "-vvvv"]).ok();
}

#[test]
fn missing_answers_without_a_terminal_name_the_flag() {
    let mut case = Case::new();
    case.unset("SEATABLE_SERVER_URL");
    case.run(&["init"])
        .fails(2, "set --server-url or SEATABLE_SERVER_URL");
    case.set("SEATABLE_SERVER_URL", case.standin.url.clone());
    let vault = case.env["VAULT_ADDR"].clone();
    case.unset("VAULT_ADDR");
    case.run(&["init"])
        .fails(2, "set --vault-addr, VAULT_ADDR or BAO_ADDR");
    case.set("VAULT_ADDR", vault);
    case.unset("SEATABLE_CRED_SECRET");
    case.run(&["init"])
        .fails(2, "set --secret or SEATABLE_CRED_SECRET");
    case.set("SEATABLE_CRED_SECRET", case.secret.clone());
    case.set("SEATABLE_CRED_AUTH", "approle");
    case.run(&["init"])
        .fails(2, "set --role-id or SEATABLE_CRED_ROLE_ID");
    case.set("SEATABLE_CRED_AUTH", "userpass")
        .set("SEATABLE_CRED_USERNAME", bao::USERPASS_USER);
    case.run(&["init"]).fails(2, "SEATABLE_CRED_PASSWORD");
    assert!(!config_path(&case).exists(), "nothing was written");
}

#[test]
fn a_failed_check_without_a_terminal_ends_with_its_own_error() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_SECRET", "secret/it/nope");
    case.run(&["init"]).fails(3, "no secret at secret/it/nope");
    case.set("SEATABLE_CRED_SECRET", case.secret.clone());
    case.set("SEATABLE_SERVER_URL", "http://127.0.0.1:9");
    case.run(&["init", "--timeout", "2s"])
        .fails(5, "127.0.0.1:9");
    case.set("SEATABLE_SERVER_URL", "http://seatable.example.com");
    case.run(&["init"]).fails(
        2,
        "SEATABLE_SERVER_URL: 'http://seatable.example.com' is plain HTTP",
    );
    case.set("SEATABLE_SERVER_URL", case.standin.url.clone());
    case.run(&[
        "init",
        "--secret-id-file",
        "/nonexistent",
        "--auth",
        "approle",
        "--role-id",
        "x",
    ])
    .fails(2, "no readable file there");
    assert!(!config_path(&case).exists(), "nothing was written");
}

#[test]
fn config_files_it_would_not_read_are_left_alone() {
    let case = Case::new();
    let config = write_existing(&case);
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    case.run(&["init"]).fails(2, "writable by others");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&config, format!("{EXISTING}sever_url = \"typo\"\n")).unwrap();
    case.run(&["init"])
        .fails(2, "fix it before init adds a profile");
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .ends_with("sever_url = \"typo\"\n")
    );
    case.run(&["init", "-p", "a b"]).fails(2, "letters, digits");
}

/// The snippets, pasted as printed: kubectl with the kubeconfig entry, git
/// with the credential section, Python with its lines — each with only the
/// profile's name (and the Vault token) to go on.
#[test]
fn printed_snippets_work_as_printed() {
    let standin = seatable_standin::Standin::start_tls();
    let mut case = Case::with_standin(shared(), standin);
    let ca_file = case.dir.path().join("seatable-ca.pem");
    std::fs::write(&ca_file, case.standin.ca_pem.as_ref().unwrap()).unwrap();
    case.set("SEATABLE_CA_CERT", ca_file.to_str().unwrap());
    let out = case.run(&["init", "--yes", "-p", "tools"]).ok();
    let snippet = |start: &str| -> String {
        let from = out
            .stdout
            .find(start)
            .unwrap_or_else(|| panic!("{start}: {}", out.stdout));
        let rest = &out.stdout[from..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    let config = std::fs::read_to_string(config_path(&case)).unwrap();
    assert!(
        config.contains(&format!("ca_cert = \"{}\"", ca_file.display())),
        "{config}"
    );

    // Only what a user's shell has: the helper on PATH, HOME, the config
    // directory, the Vault token.
    let helper_dir = Path::new(HELPER).parent().unwrap();
    let path = format!("{}:{}", helper_dir.display(), case.env["PATH"]);
    let keep = ["HOME", "XDG_CONFIG_HOME", "VAULT_TOKEN"];
    let env: Vec<(String, String)> = keep
        .iter()
        .map(|k| (k.to_string(), case.env[*k].clone()))
        .chain([("PATH".to_string(), path)])
        .collect();
    let tool = |program: &Path| {
        let mut cmd = std::process::Command::new(program);
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        case.ns.join(&mut cmd);
        cmd
    };

    // kubectl
    let kubectl = which("kubectl").expect("kubectl is required for this test (SPEC §11)");
    let users = snippet("users:");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n{users}\ncontexts:\n- name: test\n  context: {{cluster: test, user: seatable-tools}}\ncurrent-context: test\n",
        case.standin.url,
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            case.standin.ca_pem.as_ref().unwrap()
        ),
    );
    let kubeconfig_path = case.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig_path, kubeconfig).unwrap();
    let mut cmd = tool(&kubectl);
    cmd.args([
        "--kubeconfig",
        kubeconfig_path.to_str().unwrap(),
        "get",
        "--raw",
        "/api",
        "--request-timeout=30s",
    ]);
    let out_k = run_with_input(cmd, "");
    assert_eq!(out_k.code, 0, "kubectl: {}", out_k.stderr);
    assert_eq!(
        case.standin.stats().gateway_ok,
        1,
        "kubectl sent a base token"
    );

    // git
    std::fs::write(
        Path::new(&case.env["HOME"]).join(".gitconfig"),
        snippet("[credential"),
    )
    .unwrap();
    let mut cmd = tool(&which("git").expect("git is required"));
    cmd.args(["credential", "fill"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1");
    let host = case.standin.url.trim_start_matches("https://").to_string();
    let out_g = run_with_input(cmd, &format!("protocol=https\nhost={host}\n\n"));
    assert_eq!(out_g.code, 0, "git: {}", out_g.stderr);
    let password = out_g
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap_or_else(|| panic!("no password from git: {}", out_g.stdout));
    assert!(case.standin.accepts(password, &case.base.dtable_uuid));

    // Python: the plugin from this checkout, the SDK from PyPI.
    let lines = snippet("# Python");
    let mut cmd = tool(&sdk::python());
    cmd.arg("-c")
        .arg(&lines)
        .env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/python"),
        )
        .env("REQUESTS_CA_BUNDLE", &ca_file);
    let out_p = run_with_input(cmd, "");
    assert_eq!(out_p.code, 0, "python: {}{}", out_p.stdout, out_p.stderr);
    assert!(out_p.stdout.contains("Table1"), "{}", out_p.stdout);
    assert_eq!(
        case.standin.exchanges(),
        1,
        "every tool used the token init cached"
    );
}

#[test]
fn the_bare_command_shows_how_to_start() {
    let case = Case::new();
    let out: Out = case.run(&[]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("Usage: seatable-cred [OPTIONS] <COMMAND>"),
        "{}",
        out.stderr
    );
    for command in ["init", "get", "doctor", "token", "serve"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} is listed: {}",
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("Start with `seatable-cred init`"),
        "{}",
        out.stderr
    );
    // An unknown command stays one line, with clap's suggestion.
    case.run(&["gett"])
        .fails(2, "a similar subcommand exists: 'get'");
    // With none of the helper's settings in the environment either (the
    // case's own home and config directory stay).
    let mut bare = case.command(&[]);
    bare.env_clear();
    for name in ["PATH", "HOME", "XDG_CONFIG_HOME"] {
        if let Some(value) = case.env.get(name) {
            bare.env(name, value);
        }
    }
    let out = crate::support::run_with_input(bare, "");
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("Start with `seatable-cred init`"),
        "{}",
        out.stderr
    );
}

/// A password inside an address, or an API token pasted where the secret's
/// path belongs, is refused without being shown: not at -vvvv on stderr,
/// not in the error.
#[test]
fn a_secret_in_an_answer_is_never_shown() {
    let mut case = Case::new();
    let url = url::Url::parse(&case.env["VAULT_ADDR"]).unwrap();
    let with_password = format!(
        "http://vault-user:PW-in-the-address@{}",
        url.host_str().unwrap()
    );
    case.set(
        "VAULT_ADDR",
        format!("{with_password}:{}", url.port().unwrap()),
    );
    let out = case.run(&["init", "-vvvv"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("PW-in-the-address"), "{}", out.stderr);

    let mut case = Case::new();
    let api_token = case.base.api_token.clone();
    case.set("SEATABLE_CRED_SECRET", api_token.clone());
    let out = case.run(&["init", "-vvvv"]);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains(&api_token), "{}", out.stderr);
    assert!(!config_path(&case).exists(), "nothing was written");
}

/// The dead ends a newcomer met in `init` (issue 23): each failed answer
/// says what to type, and a missing Vault token is waited for while the
/// user logs in elsewhere — not answered by asking the auth method again
/// forever. An address without a scheme; `https://` to an OpenBao that
/// speaks plain HTTP; no Vault token, then `bao login` in "another
/// terminal" and Enter; the `MOUNT/data/PATH` that `bao kv put` prints.
#[test]
fn dead_ends_say_what_to_type_and_a_missing_token_is_waited_for() {
    let mut case = Case::new();
    let shared = shared();
    let host = shared.bao.addr.trim_start_matches("http://").to_string();
    for name in ["VAULT_TOKEN", "VAULT_ADDR", "SEATABLE_CRED_SECRET"] {
        case.unset(name);
    }
    let home = PathBuf::from(&case.env["HOME"]);
    let stdout = case.dir.path().join("init.out");
    let mut pty = Pty::spawn(&case, &["init", "--cache", "file"], &stdout);
    pty.answer(&format!("SeaTable server URL [{}]", case.standin.url), "");
    pty.expect("ok    seatable");
    // No scheme: what to type.
    pty.answer("Vault address", &host);
    // (rexpect reads bytes one by one: what is matched is ASCII.)
    pty.expect(&format!(
        "FAIL  vault     your answer to 'Vault address': '{host}' is not a URL: it needs a scheme"
    ));
    pty.expect(&format!(
        "type https://{host} (or http://{host} for a server on this machine)"
    ));
    // https:// to a plain-HTTP server: says so, not a TLS parser's words.
    pty.answer("Vault address", &format!("https://{host}"));
    pty.expect(&format!(
        "FAIL  vault     Vault at https://{host} answers in plain HTTP, not TLS: use http://{host}"
    ));
    pty.answer("Vault address", &shared.bao.addr);
    pty.expect("ok    vault");
    pty.expect("ok    cache");
    // No Vault token anywhere: how to log in, and init waits for it.
    pty.answer(
        "Vault auth method: token, approle, kubernetes, jwt, userpass, cert or none [token]",
        "",
    );
    pty.expect("FAIL  login     no Vault token");
    pty.expect(&format!(
        "log in in another terminal: `bao login -address={}` (or `vault login`) writes {}",
        shared.bao.addr,
        home.join(".vault-token").display()
    ));
    pty.expect("then press Enter here to check again");
    // The other terminal: the real `bao login`, which writes ~/.vault-token.
    let token = shared.bao.token(&[bao::READER_POLICY], "1h");
    case.secrets.push(token.clone());
    let login = std::process::Command::new(bao::bao_bin())
        .args([
            "login",
            "-no-print",
            &format!("-address={}", shared.bao.addr),
            &token,
        ])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", &case.env["PATH"])
        .output()
        .unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    pty.answer(
        "Enter checks the Vault token again once you are logged in; or another auth method [token]",
        "",
    );
    pty.expect(&format!(
        "ok    login     token auth, from {}",
        home.join(".vault-token").display()
    ));
    // What `bao kv put` prints as "Secret Path": drop `data/`.
    let api_path = case.secret.replacen("secret/", "secret/data/", 1);
    pty.answer("Secret holding the API token, MOUNT/PATH", &api_path);
    pty.answer("Field of the API token [api_token]", "");
    pty.expect(&format!("the secret is {}", case.secret));
    pty.expect("drop `data/`, the helper adds it");
    pty.answer("Secret holding the API token, MOUNT/PATH", &case.secret);
    pty.expect("ok    exchange  API token accepted");
    let (code, transcript) = pty.finish();
    assert_eq!(code, 0, "{transcript}");
    assert_no_secret(&case, "the terminal", &transcript);
    assert_eq!(
        transcript.matches("Vault auth method").count(),
        1,
        "the method was not asked again: {transcript}"
    );
}
