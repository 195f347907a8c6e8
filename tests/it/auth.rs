//! Every Vault auth method OpenBao's dev server can serve on loopback, and
//! both KV versions.

use serde_json::json;

use crate::support::{Bao, Case, bao, shared};

/// Runs `get` and checks the token opens the case's base.
fn assert_get_works(case: &Case) {
    let v = case.run(&["get", "-o", "json", "-vv"]).ok().json();
    assert!(
        case.standin
            .accepts(v["token"].as_str().unwrap(), &case.base.dtable_uuid)
    );
}

#[test]
fn token_from_bao_token_and_from_vault_token_file() {
    let mut case = Case::new();
    let token = case.env["VAULT_TOKEN"].clone();
    case.unset("VAULT_TOKEN").set("BAO_TOKEN", token.clone());
    assert_get_works(&case);
    case.unset("BAO_TOKEN").set("SEATABLE_CRED_CACHE", "none");
    std::fs::write(
        format!("{}/.vault-token", case.env["HOME"]),
        format!("{token}\n"),
    )
    .unwrap();
    assert_get_works(&case);
    // BAO_ADDR works as well as VAULT_ADDR.
    let addr = case.env["VAULT_ADDR"].clone();
    case.unset("VAULT_ADDR").set("BAO_ADDR", addr);
    assert_get_works(&case);
}

#[test]
fn approle_with_secret_id_file_and_env() {
    let shared = shared();
    let mut case = Case::new();
    let secret_id = shared.secret_id();
    case.secrets.push(secret_id.clone());
    let sid_file = case.dir.path().join("secret-id");
    std::fs::write(&sid_file, &secret_id).unwrap();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "approle")
        .set("SEATABLE_CRED_ROLE_ID", shared.role_id.clone())
        .set("SEATABLE_CRED_CACHE", "none");
    let out = case
        .run(&[
            "get",
            "-o",
            "token",
            "--secret-id-file",
            sid_file.to_str().unwrap(),
            "-vvvv",
        ])
        .ok();
    assert!(!out.stdout.is_empty());
    case.set("SEATABLE_CRED_SECRET_ID", secret_id.clone());
    assert_get_works(&case);
    // A wrong secret-id is a Vault refusal: exit 3.
    case.set(
        "SEATABLE_CRED_SECRET_ID",
        "00000000-0000-0000-0000-000000000000",
    );
    case.run(&["get"]).fails(3, "approle");
}

#[test]
fn userpass_with_password_from_env() {
    let mut case = Case::new();
    case.login_userpass();
    assert_get_works(&case);
    case.set("SEATABLE_CRED_PASSWORD", "wrong-password")
        .set("SEATABLE_CRED_CACHE", "none");
    case.run(&["get", "-vvvv"]).fails(3, "userpass");
}

#[test]
fn userpass_without_password_or_terminal_says_what_to_set() {
    let mut case = Case::new();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "userpass")
        .set("SEATABLE_CRED_USERNAME", bao::USERPASS_USER)
        .set("SEATABLE_CRED_CACHE", "none");
    // The test process has no controlling terminal for the helper to prompt on.
    let mut cmd = case.command(&["get"]);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe; it detaches from any terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    crate::support::run_with_input(cmd, "").fails(2, "SEATABLE_CRED_PASSWORD");
}

#[test]
fn jwt_login_with_a_ci_identity_token() {
    let shared = shared();
    let mut case = Case::new();
    let jwt = case.login_jwt();
    case.set("SEATABLE_CRED_CACHE", "none");
    assert_get_works(&case);
    // From a file, as CI systems mount them.
    let file = case.dir.path().join("id-token");
    std::fs::write(&file, &jwt).unwrap();
    case.unset("SEATABLE_CRED_JWT");
    let out = case
        .run(&[
            "get",
            "-o",
            "token",
            "--jwt-file",
            file.to_str().unwrap(),
            "-vvvv",
        ])
        .ok();
    assert!(!out.stdout.is_empty());
    // A token for another audience is refused.
    let other = shared.jwt_key.sign(&json!({"iss": "https://ci.example", "sub": "x", "aud": "someone-else", "exp": 4_000_000_000u64}));
    case.secrets.push(other.clone());
    case.set("SEATABLE_CRED_JWT", other);
    case.run(&["get"]).fails(3, "jwt");
}

#[test]
fn kubernetes_login_with_a_service_account_token() {
    let shared = shared();
    let mut case = Case::new();
    let sa = shared.service_account_jwt();
    case.secrets.push(sa.clone());
    let file = case.dir.path().join("sa-token");
    std::fs::write(&file, &sa).unwrap();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "kubernetes")
        .set("SEATABLE_CRED_ROLE", bao::K8S_ROLE)
        .set("SEATABLE_CRED_CACHE", "none");
    let out = case
        .run(&[
            "get",
            "-o",
            "json",
            "--jwt-file",
            file.to_str().unwrap(),
            "-vvvv",
        ])
        .ok();
    assert!(case.standin.accepts(
        out.json()["token"].as_str().unwrap(),
        &case.base.dtable_uuid
    ));
    // An unknown service-account token is refused by the TokenReview.
    let stranger = shared.jwt_key.sign(&json!({"sub": "system:serviceaccount:jobs:app", "kubernetes.io/serviceaccount/namespace": "jobs", "kubernetes.io/serviceaccount/service-account.name": "app"}));
    std::fs::write(&file, &stranger).unwrap();
    case.secrets.push(stranger);
    case.run(&["get", "--jwt-file", file.to_str().unwrap()])
        .fails(3, "kubernetes");
}

#[test]
fn cert_login_over_tls_with_client_certificate() {
    let bao = Bao::start_tls();
    let pki = seatable_standin::pki::Pki::new("client CA");
    let client = pki.client("seatable-job");
    bao.api(
        "PUT",
        &format!("sys/policies/acl/{}", bao::READER_POLICY),
        Some(json!({"policy": "path \"secret/data/*\" { capabilities = [\"read\"] }"})),
    );
    bao.enable_auth("cert", "cert");
    bao.api(
        "POST",
        "auth/cert/certs/job",
        Some(json!({"certificate": pki.ca_pem(), "token_policies": [bao::READER_POLICY]})),
    );

    let shared = shared();
    let standin = seatable_standin::Standin::start();
    let mut case = Case::with_standin(shared, standin);
    bao.kv2_put(
        "secret",
        "seatable/crm",
        json!({"api_token": case.base.api_token}),
    );
    let cert = case.dir.path().join("client.pem");
    let key = case.dir.path().join("client-key.pem");
    std::fs::write(&cert, &client.cert_pem).unwrap();
    std::fs::write(&key, &client.key_pem).unwrap();
    case.unset("VAULT_TOKEN")
        .set("VAULT_ADDR", bao.addr.clone())
        .set("SEATABLE_CRED_SECRET", "secret/seatable/crm")
        .set("SEATABLE_CRED_AUTH", "cert")
        .set("VAULT_CLIENT_CERT", cert.to_str().unwrap())
        .set("VAULT_CLIENT_KEY", key.to_str().unwrap())
        .set("SEATABLE_CRED_CACHE", "none");
    // The dev server's CA is private: without VAULT_CACERT, TLS fails (exit 5).
    case.run(&["get"]).fails(5, "VAULT_CACERT");
    case.set(
        "VAULT_CACERT",
        bao.ca_file.as_ref().unwrap().to_str().unwrap(),
    );
    assert_get_works(&case);
    // The same with the CA given as a directory.
    case.unset("VAULT_CACERT").set(
        "VAULT_CAPATH",
        bao.ca_file
            .as_ref()
            .unwrap()
            .parent()
            .unwrap()
            .to_str()
            .unwrap(),
    );
    assert_get_works(&case);
    bao.stop();
}

#[test]
fn kv_v1_is_detected_and_can_be_forced() {
    let shared = shared();
    let mut case = Case::new();
    let path = format!("it/{}", seatable_standin::random_hex(6));
    shared
        .bao
        .kv1_put("kv1", &path, json!({"token": case.base.api_token}));
    case.set("SEATABLE_CRED_SECRET", format!("kv1/{path}"))
        .set("SEATABLE_CRED_FIELD", "token")
        .set("SEATABLE_CRED_CACHE", "none");
    assert_get_works(&case);
    case.set("SEATABLE_CRED_KV_VERSION", "1");
    assert_get_works(&case);
    // Forcing the wrong version reads the wrong path: a clear Vault error.
    case.set("SEATABLE_CRED_KV_VERSION", "2");
    case.run(&["get"]).fails(3, "kv1/");
}

#[test]
fn kv_v2_can_be_forced() {
    let mut case = Case::new();
    case.set("SEATABLE_CRED_CACHE", "none");
    case.run(&["get", "--kv-version", "2"]).ok();
    // Forcing KV v1 on the v2 mount reads a path the policy does not grant.
    case.run(&["get", "--kv-version", "1"])
        .fails(3, "does not grant read on secret/it/");
}

#[test]
fn secret_in_a_vault_namespace() {
    let shared = shared();
    let mut case = Case::new();
    let ns = format!("team-{}", seatable_standin::random_hex(3));
    shared
        .bao
        .api("POST", &format!("sys/namespaces/{ns}"), None);
    // A KV v2 mount inside the namespace, holding the API token.
    let in_ns = |method: &str, path: &str, body: serde_json::Value| {
        let http = reqwest::blocking::Client::builder()
            .tls_certs_only(Vec::new())
            .build()
            .unwrap();
        let status = http
            .request(
                method.parse().unwrap(),
                format!("{}/v1/{path}", shared.bao.addr),
            )
            .header("X-Vault-Token", bao::ROOT_TOKEN)
            .header("X-Vault-Namespace", &ns)
            .json(&body)
            .send()
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    };
    in_ns(
        "POST",
        "sys/mounts/apps",
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    in_ns(
        "POST",
        "apps/data/seatable",
        json!({"data": {"api_token": case.base.api_token}}),
    );
    case.set("VAULT_TOKEN", bao::ROOT_TOKEN)
        .set("SEATABLE_CRED_SECRET", "apps/seatable")
        .set("SEATABLE_CRED_CACHE", "none");
    // Without the namespace the mount does not exist.
    case.run(&["get"]).fails(3, "apps/seatable");
    case.set("VAULT_NAMESPACE", ns.clone());
    assert_get_works(&case);
    // BAO_NAMESPACE works too.
    case.unset("VAULT_NAMESPACE").set("BAO_NAMESPACE", ns);
    assert_get_works(&case);
}
