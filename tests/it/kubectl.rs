//! kubectl accepts our exec-credential output: a kubeconfig `exec` entry
//! against a small TLS server that checks the bearer token.

use base64::Engine;

use crate::support::bao::which;
use crate::support::{Case, shared};

#[test]
fn kubectl_get_raw_api_with_exec_plugin() {
    let Some(kubectl) = which("kubectl") else {
        panic!("kubectl is required for this test (SPEC §11)");
    };
    let standin = seatable_standin::Standin::start_tls();
    let mut case = Case::with_standin(shared(), standin);
    let ca_file = case.dir.path().join("seatable-ca.pem");
    std::fs::write(&ca_file, case.standin.ca_pem.as_ref().unwrap()).unwrap();
    case.set("SEATABLE_CA_CERT", ca_file.to_str().unwrap());
    let ca =
        base64::engine::general_purpose::STANDARD.encode(case.standin.ca_pem.as_ref().unwrap());
    let env_entries: String = case
        .env
        .iter()
        .filter(|(k, _)| k.starts_with("SEATABLE_") || k.starts_with("VAULT_"))
        .map(|(k, v)| format!("      - name: {k}\n        value: \"{v}\"\n"))
        .collect();
    let kubeconfig = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {url}
    certificate-authority-data: {ca}
users:
- name: seatable
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {helper}
      args: ["get"]
      interactiveMode: Never
      env:
{env_entries}contexts:
- name: test
  context: {{cluster: test, user: seatable}}
current-context: test
"#,
        url = case.standin.url,
        helper = crate::support::HELPER,
    );
    let path = case.dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    let run = || {
        let mut cmd = std::process::Command::new(&kubectl);
        case.ns.join(&mut cmd);
        cmd.args([
            "--kubeconfig",
            path.to_str().unwrap(),
            "get",
            "--raw",
            "/api",
            "--request-timeout=30s",
        ])
        .env_clear()
        .env("HOME", &case.env["HOME"])
        .env("PATH", &case.env["PATH"]);
        crate::support::run_with_input(cmd, "")
    };
    let out = run();
    assert_eq!(out.code, 0, "kubectl failed: {}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["kind"], "APIVersions");
    assert_eq!(
        case.standin.stats().gateway_ok,
        1,
        "the server saw a valid bearer token"
    );
    assert_eq!(case.standin.exchanges(), 1);
    // A second kubectl run is served from our cache.
    assert_eq!(run().code, 0);
    assert_eq!(case.standin.exchanges(), 1);
}
