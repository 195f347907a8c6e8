//! `--auth kubernetes` without `--jwt-file`: the pod's service-account
//! token is read where Kubernetes mounts it. The test puts one there in a
//! private mount namespace (a tmpfs over the directory), so the machine's
//! own /var/run is never written — nor, in a pod, its real token read.

use crate::support::{Case, bao, mountns, shared};

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[test]
fn kubernetes_login_reads_the_service_account_token_from_its_default_path() {
    let existed = std::path::Path::new(SA_DIR).exists();
    let mut case = Case::new();
    let sa = shared().service_account_jwt();
    case.secrets.push(sa.clone());
    let source = case.dir.path().join("sa-token");
    std::fs::write(&source, &sa).unwrap();
    case.unset("VAULT_TOKEN")
        .set("SEATABLE_CRED_AUTH", "kubernetes")
        .set("SEATABLE_CRED_ROLE", bao::K8S_ROLE)
        .set("SEATABLE_CRED_CACHE", "none");

    // No token at the default path: a usage error naming it.
    let empty = mountns::empty_directory(SA_DIR);
    let out = mountns::run(&case, &empty, &["get"], |_| {});
    let out = out.fails(2, &format!("{SA_DIR}/token"));
    assert_eq!(case.standin.stats().exchange_requests, 0, "{}", out.stderr);

    // The token where Kubernetes puts it: the login works with nothing else.
    let with_token = format!("{empty}\ncp \"$SA_SOURCE\" '{SA_DIR}/token'");
    let out = mountns::run(&case, &with_token, &["get", "-o", "json", "-vvvv"], |cmd| {
        cmd.env("SA_SOURCE", &source);
    })
    .ok();
    assert!(case.standin.accepts(
        out.json()["token"].as_str().unwrap(),
        &case.base.dtable_uuid
    ));
    assert!(
        out.stderr.contains("kubernetes"),
        "the login said what it did: {}",
        out.stderr
    );
    assert_eq!(
        std::path::Path::new(SA_DIR).exists(),
        existed,
        "the machine's own {SA_DIR} is untouched"
    );
}
