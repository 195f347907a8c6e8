//! The first hour (issue 23): what a newcomer meets when something is set
//! wrong — each diagnosis names the real cause, where the setting came
//! from and what to do, on the first line of stderr and within seconds.
//! Driven as a user meets them: the helper against the real OpenBao and the
//! stand-in. TESTING.md's "Messages" section maps each diagnosis here.

use std::time::{Duration, Instant};

use crate::support::{Case, Out};

/// The first line of stderr that is not a diagnostic the verbosity asked
/// for: the error line.
fn error_line(out: &Out) -> &str {
    out.stderr
        .lines()
        .find(|l| {
            !l.starts_with("seatable-cred: info: ") && !l.starts_with("seatable-cred: debug: ")
        })
        .unwrap_or_else(|| panic!("no error line: {}", out.stderr))
}

/// Runs the helper, and checks that it took less than `limit`.
#[track_caller]
fn run_within(case: &Case, args: &[&str], limit: Duration) -> Out {
    let started = Instant::now();
    let out = case.run(args);
    let took = started.elapsed();
    assert!(
        took < limit,
        "{args:?} took {took:?} (at most {limit:?}): {}",
        out.stderr
    );
    out
}

// --- the process itself -------------------------------------------------------

/// A reader of stderr that went away (a closed pipe) is no reason to abort:
/// the helper exits with the code its failure has, as with stderr closed.
#[test]
fn a_closed_stderr_pipe_is_no_crash() {
    let mut case = Case::new();
    case.set("VAULT_ADDR", "http://127.0.0.1:1");
    for args in [
        &["get", "--refresh", "-vv"][..],
        &["doctor", "-vv"][..],
        &["exec"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = case.command(args);
        cmd.stdout(std::process::Stdio::null())
            .stderr(writer)
            .stdin(std::process::Stdio::null());
        let child = cmd.spawn().unwrap();
        let status = crate::support::wait_bounded(child, Duration::from_secs(60)).status;
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            None,
            "{args:?} died of a signal: {status:?}"
        );
        let expected = match args[0] {
            "exec" => 2,
            "doctor" => 5,
            _ => 5,
        };
        assert_eq!(status.code(), Some(expected), "{args:?}");
    }
}

// --- retries and refused connections ------------------------------------------

/// A retried failure is no warning: a call that succeeded on its second try
/// says nothing at the default verbosity, and shows the retry at -v.
#[test]
fn retries_are_shown_at_v_not_as_warnings() {
    let case = Case::new();
    case.standin
        .push_faults([seatable_standin::Fault::Status { code: 502 }]);
    let out = case.run(&["get", "-o", "token"]).ok();
    assert_eq!(out.stderr, "", "a retry that worked is no warning");
    case.standin
        .push_faults([seatable_standin::Fault::Status { code: 502 }]);
    let out = case.run(&["get", "--refresh", "-o", "token", "-v"]).ok();
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("seatable-cred: info: ")
                && l.contains("failed (502)")
                && l.contains("retrying in")),
        "the retry at -v: {}",
        out.stderr
    );
    assert_eq!(
        case.standin.stats().exchange_requests,
        4,
        "each 502 retried once"
    );
}

/// A refused connection is no passing trouble: one line naming the
/// address, where it was set and what to check — within a few seconds,
/// not after half a minute of retries — for SeaTable and for Vault, with
/// no cache to fall back on.
#[test]
fn a_refused_connection_fails_at_once_naming_the_address_and_its_origin() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let closed = format!("http://{closed}");
    let mut case = Case::new();
    case.set("SEATABLE_CRED_TIMEOUT", "30s");
    let out = run_within(
        &case,
        &["get", "--refresh", "--server-url", &closed],
        Duration::from_secs(5),
    )
    .fails(5, "connection refused");
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!("seatable-cred: cannot reach SeaTable at {closed}: connection refused, nothing listens there"))
            && line.ends_with("(set by --server-url)"),
        "{line}"
    );
    assert!(
        !out.stderr.contains("warning"),
        "no retries warned about: {}",
        out.stderr
    );
    assert_eq!(case.standin.exchanges(), 0);

    case.set("VAULT_ADDR", closed.clone());
    let out = run_within(&case, &["get", "--refresh"], Duration::from_secs(5))
        .fails(5, "connection refused");
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!(
            "seatable-cred: cannot reach Vault at {closed}: connection refused"
        )) && line.ends_with("(set by VAULT_ADDR)"),
        "{line}"
    );
    // A name that does not exist is no passing trouble either.
    case.set("VAULT_ADDR", "https://no-such-host.invalid:8200");
    let out =
        run_within(&case, &["get", "--refresh"], Duration::from_secs(5)).fails(5, "no such host");
    assert!(
        error_line(&out).ends_with("(set by VAULT_ADDR)"),
        "{}",
        out.stderr
    );
}

/// A server that keeps dropping the connection is retried until the
/// deadline — passing trouble, maybe — and the line then names the
/// address's origin too, the thing to check when it does not pass.
#[test]
fn a_connection_dropped_until_the_deadline_names_the_address_origin() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_TIMEOUT", "2s");
    case.standin
        .push_faults(std::iter::repeat_n(seatable_standin::Fault::Drop, 200));
    let out = case.run(&["get", "--refresh"]).fails(5, "after");
    let line = error_line(&out);
    assert!(
        line.contains("try again later") && line.ends_with("(set by SEATABLE_SERVER_URL)"),
        "{line}"
    );
    assert!(case.standin.stats().exchange_requests > 1, "retried");
}

/// `https://` to a server that speaks plain HTTP says so, and what to type
/// — not a TLS parser's words.
#[test]
fn https_to_a_plain_http_server_says_so() {
    let case = Case::new();
    let https = case.standin.url.replacen("http://", "https://", 1);
    let out = run_within(
        &case,
        &["get", "--refresh", "--server-url", &https],
        Duration::from_secs(5),
    )
    .fails(5, "answers in plain HTTP, not TLS");
    assert!(
        error_line(&out).contains(&format!("use {}", case.standin.url)),
        "{}",
        out.stderr
    );
    let vault = case.env["VAULT_ADDR"].replacen("http://", "https://", 1);
    let out = run_within(
        &case,
        &["get", "--refresh", "--vault-addr", &vault],
        Duration::from_secs(5),
    )
    .fails(5, "answers in plain HTTP, not TLS");
    assert!(
        error_line(&out).ends_with("(set by --vault-addr)"),
        "{}",
        out.stderr
    );
}

// --- the Vault token ------------------------------------------------------------

/// A Vault token from an agent's sink (`vault_token_file`) that Vault
/// refuses is named with the setting that named the file, and the next
/// step is that file's; with `--auth none` the token Vault refused is the
/// one a proxy adds — or none — never "log in again", and the message says
/// where `auth` was set.
#[test]
fn a_refused_token_from_a_token_file_or_a_proxy_names_where_it_came_from() {
    let bao = &crate::support::shared().bao;
    let mut case = Case::new();
    let revoked = bao.token(&[crate::support::bao::READER_POLICY], "1h");
    case.secrets.push(revoked.clone());
    bao.api(
        "POST",
        "auth/token/revoke",
        Some(serde_json::json!({ "token": revoked })),
    );
    let sink = case.dir.path().join("vault-token");
    std::fs::write(&sink, &revoked).unwrap();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_VAULT_TOKEN_FILE", sink.display().to_string());
    let from = format!(
        "refused the Vault token itself (from {} (set by SEATABLE_CRED_VAULT_TOKEN_FILE))",
        sink.display()
    );
    let out = run_within(&case, &["get", "--refresh"], Duration::from_secs(5)).fails(3, &from);
    let line = error_line(&out);
    assert!(
        line.contains(&format!("put a valid token in {}", sink.display()))
            && !line.contains("bao login")
            && !line.contains("policy of the"),
        "{line}"
    );
    let out = case.run(&["doctor"]);
    assert_eq!(out.code, 3, "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("FAIL  login") && l.contains(&from)),
        "{}",
        out.stdout
    );

    // --auth none at Vault itself: no proxy added a token; nothing of the
    // user's to renew.
    case.unset("SEATABLE_CRED_VAULT_TOKEN_FILE")
        .set("SEATABLE_CRED_AUTH", "none");
    let out = run_within(&case, &["get", "--refresh"], Duration::from_secs(5))
        .fails(3, "refused the token itself");
    let line = error_line(&out);
    assert!(
        line.contains(&format!(
            "the token a Vault Proxy or Agent at {} adds, not one of the helper's",
            bao.addr
        )) && line.contains("--auth none sends none")
            && line.ends_with("(set by SEATABLE_CRED_AUTH)")
            && !line.contains("bao login")
            && !line.contains("refused the Vault token itself"),
        "{line}"
    );
}

/// A Vault token that Vault refuses itself — unknown, revoked — is named
/// as such, with where it came from and how to get a new one: by `get`
/// (exit 3, at once) and by `doctor`'s login line — never blamed on a
/// policy. A token Vault knows whose policy lacks the read is the policy.
#[test]
fn a_refused_vault_token_is_named_with_its_origin_not_blamed_on_the_policy() {
    let bao = &crate::support::shared().bao;
    let mut case = Case::new();
    case.set("VAULT_TOKEN", "s.not-a-real-token");
    case.secrets.push("s.not-a-real-token".into());
    let out = run_within(&case, &["get", "--refresh"], Duration::from_secs(5))
        .fails(3, "refused the Vault token itself (from VAULT_TOKEN)");
    let line = error_line(&out);
    assert!(
        line.contains("no policy can fix that")
            && line.contains(&format!("bao login -address={}", bao.addr))
            && line.contains("put the new token in VAULT_TOKEN"),
        "{line}"
    );
    assert!(!line.contains("policy of the"), "{line}");

    // doctor: the login line fails, not the secret's.
    let out = case.run(&["doctor"]);
    assert_eq!(out.code, 3, "{}", out.stdout);
    let login = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL  login"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        login.contains("refused the Vault token itself (from VAULT_TOKEN)"),
        "{login}"
    );
    assert!(out.stdout.contains("skip  secret"), "{}", out.stdout);

    // A revoked token in ~/.vault-token: the file is named, and `bao login`
    // writes a new one there.
    let revoked = bao.token(&[crate::support::bao::READER_POLICY], "1h");
    case.secrets.push(revoked.clone());
    bao.api(
        "POST",
        "auth/token/revoke",
        Some(serde_json::json!({ "token": revoked })),
    );
    let home = std::path::PathBuf::from(&case.env["HOME"]);
    std::fs::write(home.join(".vault-token"), &revoked).unwrap();
    case.unset("VAULT_TOKEN");
    let out = run_within(&case, &["get", "--refresh"], Duration::from_secs(5)).fails(
        3,
        &format!(
            "refused the Vault token itself (from {})",
            home.join(".vault-token").display()
        ),
    );
    assert!(
        error_line(&out).contains("it writes a new token to"),
        "{}",
        out.stderr
    );

    // A token Vault knows, whose policy does not grant the read: the policy.
    let plain = bao.token(&["default"], "1h");
    case.secrets.push(plain.clone());
    case.set("VAULT_TOKEN", plain);
    let out = case
        .run(&["get", "--refresh"])
        .fails(3, "Vault denied reading");
    let line = error_line(&out);
    assert!(
        line.contains("policy does not grant read on secret/data/")
            && line.ends_with("(set by SEATABLE_CRED_SECRET)")
            && !line.contains("refused the Vault token"),
        "{line}"
    );
    let out = case.run(&["doctor"]);
    assert!(
        out.stdout
            .contains("ok    login     token auth, from VAULT_TOKEN"),
        "{}",
        out.stdout
    );
}

// --- origins --------------------------------------------------------------------

/// Every message about a setting names where its value came from: the
/// variable, the flag, the config file's key and line — never a flag
/// nobody gave.
#[test]
fn messages_name_where_the_secret_the_field_and_the_addresses_came_from() {
    let mut case = Case::new();
    let missing = format!("{}-missing", case.secret);
    case.set("SEATABLE_CRED_SECRET", missing.clone());
    let out = case
        .run(&["get", "--refresh"])
        .fails(3, &format!("no secret at {missing}"));
    let line = error_line(&out);
    assert!(
        line.ends_with("(set by SEATABLE_CRED_SECRET)") && !line.contains("--secret"),
        "{line}"
    );

    // What `bao kv put` prints as "Secret Path": drop `data/`.
    let api_path = case.secret.replacen("secret/", "secret/data/", 1);
    let out = case
        .run(&["get", "--refresh", "--secret", &api_path])
        .fails(3, "drop `data/`");
    assert!(
        error_line(&out).contains(&format!("the secret is {}", case.secret)),
        "{}",
        out.stderr
    );
    assert!(
        error_line(&out).ends_with("(set by --secret)"),
        "{}",
        out.stderr
    );

    // From the config file: its key and line.
    let config = case.dir.path().join("named.toml");
    std::fs::write(
        &config,
        format!(
            "# a profile\n[profiles.crm]\nserver_url = \"{}\"\n\nsecret = \"{}\"\nfield = \"token\"\n",
            case.standin.url, case.secret
        ),
    )
    .unwrap();
    case.unset("SEATABLE_CRED_SECRET")
        .unset("SEATABLE_SERVER_URL");
    let out = case
        .run(&[
            "--config",
            config.to_str().unwrap(),
            "-p",
            "crm",
            "get",
            "--refresh",
        ])
        .fails(3, "has no field 'token'");
    let line = error_line(&out);
    assert!(
        line.ends_with(&format!(
            "(set by field in [profiles.crm] of {}, line 6)",
            config.display()
        )) && !line.contains("--field"),
        "{line}"
    );
    // A field nothing set: the default, and where to set it.
    case.set("SEATABLE_CRED_SECRET", case.secret.clone());
    case.set("SEATABLE_SERVER_URL", case.standin.url.clone());
    crate::support::shared().bao.kv2_put(
        "secret",
        case.secret.trim_start_matches("secret/"),
        serde_json::json!({"token": case.base.api_token}),
    );
    let out = case
        .run(&["get", "--refresh"])
        .fails(3, "has no field 'api_token'");
    assert!(
        error_line(&out).contains("(field: nothing set it, so the default applies; set --field, SEATABLE_CRED_FIELD or field in [profiles.default] of"),
        "{}",
        out.stderr
    );
}

// --- the SeaTable address ---------------------------------------------------------

/// An address that is not SeaTable's is not blamed on the API token: an
/// HTTP service that is not SeaTable (here OpenBao) answers the exchange's
/// path with a 404 of its own — named as the wrong address, where it was
/// set, exit 2, the cached token left alone; a page of SeaTable's web app
/// pasted from the browser is named for what it is, with the address to
/// use; and the exchange's path behind a page's URL gets SeaTable's HTML
/// 404, which is no refused token either.
#[test]
fn a_server_address_that_is_not_seatables_is_not_blamed_on_the_api_token() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let other = case.env["VAULT_ADDR"].clone();
    let out = run_within(
        &case,
        &["get", "--refresh", "--server-url", &other],
        Duration::from_secs(5),
    )
    .fails(2, "is not the address of a SeaTable server");
    let line = error_line(&out);
    assert!(
        line.ends_with("(set by --server-url)") && !line.contains("store a valid API token"),
        "{line}"
    );
    // The profile's own cached token is still there.
    let again = case.run(&["get", "-o", "json"]).ok();
    assert_eq!(again.json()["cached"], true);

    let page = format!(
        "{}/workspace/7/dtable/Demo%20base/?tid=0000&vid=0000",
        case.standin.url
    );
    let out = case
        .run(&["get", "--server-url", &page])
        .fails(2, "is a page of SeaTable's web app");
    assert!(
        error_line(&out).ends_with(&format!("use {}", case.standin.url)),
        "{}",
        out.stderr
    );
    let exchanges = case.standin.stats().exchange_requests;
    let behind_a_path = format!("{}/seatable", case.standin.url);
    let out = case
        .run(&["get", "--refresh", "--server-url", &behind_a_path])
        .fails(
            2,
            "answered the token exchange with 404 but not as SeaTable does",
        );
    assert!(!out.stderr.contains("refused it"), "{}", out.stderr);
    assert_eq!(case.standin.stats().exchange_requests, exchanges);
    // A token SeaTable does refuse is still the token's fault, exit 4.
    case.standin
        .update_base(&case.base.api_token, |b| b.gone = true);
    case.run(&["get", "--refresh"])
        .fails(4, "the API token in Vault was refused");
}

// --- profiles ------------------------------------------------------------------

/// After `init --profile crm`, a plain `get` names the real cause: there is
/// no profile `default` in the file — which ones there are, and how to
/// pick one. With no config file at all: `seatable-cred init` writes one.
/// A profile asked for by name that is not there names where the name came
/// from and lists the file's.
#[test]
fn a_missing_profile_is_named_with_the_ones_there_are() {
    let mut case = Case::new();
    case.unset("SEATABLE_SERVER_URL")
        .unset("SEATABLE_CRED_SECRET");
    let dir = case.dir.path().join("config/seatable-cred");
    let config = dir.join("config.toml");
    let out = run_within(&case, &["get"], Duration::from_secs(5))
        .fails(2, "no SeaTable server and no config file");
    assert!(
        error_line(&out).contains(&format!("({})", config.display()))
            && error_line(&out).contains("write a profile with `seatable-cred init`"),
        "{}",
        out.stderr
    );
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &config,
        format!(
            "[profiles.crm]\nserver_url = \"{}\"\nsecret = \"{}\"\n",
            case.standin.url, case.secret
        ),
    )
    .unwrap();
    let out = run_within(&case, &["get"], Duration::from_secs(5)).fails(
        2,
        &format!(
            "profile 'default' is not in {} (it has 'crm'): pick it with --profile crm or SEATABLE_CRED_PROFILE=crm",
            config.display()
        ),
    );
    assert!(
        error_line(&out).starts_with("seatable-cred: profile 'default'"),
        "{}",
        out.stderr
    );
    case.run(&["get", "--profile", "crm"]).ok();
    case.set("SEATABLE_CRED_PROFILE", "billing");
    case.run(&["get"]).fails(
        2,
        &format!(
            "profile 'billing' (from SEATABLE_CRED_PROFILE) is not in {} (it has 'crm')",
            config.display()
        ),
    );
    // Flags and the environment still make a profile of their own.
    case.unset("SEATABLE_CRED_PROFILE");
    let (url, secret) = (case.standin.url.clone(), case.secret.clone());
    case.set("SEATABLE_SERVER_URL", url)
        .set("SEATABLE_CRED_SECRET", secret);
    case.run(&["get"]).ok();
}

/// A machine without CA certificates (no system bundle; SSL_CERT_FILE
/// naming an empty file) cannot check any server: one line at once saying
/// so and what to do — not retries until the deadline.
#[test]
fn no_ca_certificates_fail_at_once_saying_what_to_do() {
    let shared = crate::support::shared();
    let mut case = Case::with_standin(shared, seatable_standin::Standin::start_tls());
    let empty = case.dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let no_dir = case.dir.path().join("no-certs");
    case.set("SSL_CERT_FILE", empty.to_str().unwrap())
        .set("SSL_CERT_DIR", no_dir.to_str().unwrap())
        .set("SEATABLE_CRED_TIMEOUT", "30s");
    let out = run_within(&case, &["get", "--refresh"], Duration::from_secs(5))
        .fails(5, "this machine has no CA certificates to check it with");
    let line = error_line(&out);
    assert!(
        line.contains(&format!("SSL_CERT_FILE={}", empty.display()))
            && line.contains(
                "install the ca-certificates package or point SSL_CERT_FILE at a CA bundle"
            )
            && !line.contains("attempts"),
        "{line}"
    );
    assert_eq!(case.standin.stats().exchange_requests, 0);
}

// --- serve ----------------------------------------------------------------------

/// `serve` says where it listens and where each profile's env file is, once,
/// without -v — named for the profile it serves, not `default.env` — and
/// nothing more; -q keeps it quiet.
#[test]
fn serve_says_where_it_listens_and_where_the_env_file_is() {
    let case = Case::new();
    for (quiet, verbosity) in [(false, None), (true, Some("-q"))] {
        let log = case.dir.path().join(format!("serve-{quiet}.log"));
        let mut cmd = case.command(&["serve", "--listen", "127.0.0.1:0", "default"]);
        cmd.args(verbosity)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let env_file = case.cache_dir().join("serve/default.env");
        let _ = std::fs::remove_file(&env_file);
        let mut child = cmd.spawn().unwrap();
        crate::support::agent::wait_for("the env file", Duration::from_secs(60), || {
            std::fs::read_to_string(&env_file).is_ok_and(|t| t.contains("SEATABLE_SERVER_URL="))
        });
        let url = std::fs::read_to_string(&env_file)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("SEATABLE_SERVER_URL="))
            .unwrap()
            .to_string();
        let health = || {
            reqwest::blocking::get(format!("{url}/health")).is_ok_and(|r| r.status().is_success())
        };
        crate::support::agent::wait_for("a healthy agent", Duration::from_secs(60), health);
        // SAFETY: signalling a child we spawned.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert!(child.wait().unwrap().success());
        let said = std::fs::read_to_string(&log).unwrap();
        if quiet {
            assert_eq!(said, "", "-q");
            continue;
        }
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(
            lines,
            [format!(
                "seatable-cred: serving profile default on {url}; its clients' env file: {} (SIGTERM stops it)",
                env_file.display()
            )],
            "one line, nothing else"
        );
    }
}

// --- the smaller things ---------------------------------------------------------

/// `-h` is a page, not 160 lines: a subcommand's own options and where the
/// rest are; `--help` groups the options every command takes under
/// headings and shows examples.
#[test]
fn help_is_grouped_and_short_help_is_short() {
    let case = Case::new();
    let short = case.run(&["get", "-h"]).ok().stdout;
    assert!(short.lines().count() < 40, "{short}");
    assert!(
        short.contains("--refresh")
            && short.contains("--profile")
            && !short.contains("--vault-addr"),
        "{short}"
    );
    assert!(short.contains("Examples:\n  seatable-cred get"), "{short}");
    assert!(short.contains("grouped: seatable-cred --help"), "{short}");
    let long = case.run(&["--help"]).ok().stdout;
    for heading in [
        "Profile:",
        "SeaTable:",
        "Vault:",
        "Vault login:",
        "Cache:",
        "Base tokens and the network:",
        "Token commands:",
        "Examples:",
    ] {
        assert!(long.lines().any(|l| l == heading), "{heading}:\n{long}");
    }
    let vault = long.split("\nVault:\n").nth(1).unwrap();
    assert!(vault.trim_start().starts_with("--vault-addr"), "{vault}");
    // `exec` without its command points at exec's own help.
    case.run(&["exec"])
        .fails(2, "not provided: <CMD>...; see 'seatable-cred exec --help'");
}

/// `erase` says what it did; `status` says the time left as people read
/// it; a typo in a config key names the key that was meant, not all thirty.
#[test]
fn erase_status_and_a_key_typo_say_it_plainly() {
    let case = Case::new();
    case.run(&["get"]).ok();
    let status = case.run(&["status"]).ok().stdout;
    let expires = status
        .lines()
        .find(|l| l.starts_with("expires at"))
        .unwrap();
    let left = expires.split("(in ").nth(1).unwrap().trim_end_matches(')');
    // The stand-in's tokens live 3 days; a moment of it has gone by.
    assert!(["3d", "2d 23h 59m"].contains(&left), "{expires}");
    let erased = case.run(&["erase"]).ok().stdout;
    assert_eq!(
        erased,
        "erased the cached base token of profile 'default'; the next get exchanges anew\n"
    );
    let again = case.run(&["erase"]).ok().stdout;
    assert_eq!(
        again,
        "profile 'default' had no cached base token; nothing to erase\n"
    );
    assert!(
        case.run(&["erase", "--all"])
            .ok()
            .stdout
            .starts_with("erased ")
    );

    let config = case.dir.path().join("typo.toml");
    std::fs::write(&config, "[profiles.default]\nsever_url = \"https://s\"\n").unwrap();
    let out = case
        .run(&["--config", config.to_str().unwrap(), "get"])
        .fails(2, "unknown key `sever_url`: did you mean `server_url`?");
    assert!(!out.stderr.contains("`ca_cert`"), "{}", out.stderr);
}

/// At -vv a read from Vault says what it reads: the account token from the
/// account secret, the API token from the profile's — not "the API token"
/// for both.
#[test]
fn debug_lines_name_what_is_read_from_vault() {
    let t = crate::token::TokenCase::new();
    let out = t.run(&["token", "list", "-vv"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let account = &t.case.env["SEATABLE_CRED_ACCOUNT_SECRET"];
    let reads: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("seatable-cred: debug: reading the "))
        .collect();
    assert!(
        reads.iter().any(
            |l| l.starts_with("seatable-cred: debug: reading the account token")
                && l.contains(&format!("secret={account}"))
        ),
        "{reads:?}"
    );
    assert!(
        reads.iter().any(
            |l| l.starts_with("seatable-cred: debug: reading the API token")
                && l.contains(&format!("secret={}", t.case.secret))
        ),
        "{reads:?}"
    );
    assert!(
        !reads
            .iter()
            .any(|l| l.contains("the API token") && l.contains(&format!("secret={account}"))),
        "{reads:?}"
    );
}
