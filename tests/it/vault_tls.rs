//! TLS to Vault: verified unless `VAULT_SKIP_VERIFY` is set explicitly to a
//! true value — and then with a warning on every call, for Vault only.

use serde_json::json;

use crate::support::{Bao, Case, Out, shared};

const WARNING: &str = "seatable-cred: warning: VAULT_SKIP_VERIFY is set: the Vault server's certificate is not checked";

#[track_caller]
fn refused_without_warning(out: Out) {
    let out = out.fails(5, "VAULT_CACERT");
    assert!(!out.stderr.contains("VAULT_SKIP_VERIFY"), "{}", out.stderr);
}

#[test]
fn vault_skip_verify_only_when_set_true_with_a_warning_and_for_vault_only() {
    // A self-signed Vault (bao -dev-tls, its CA not given to the helper) and
    // a SeaTable over TLS with a private CA that the helper is given.
    let bao = Bao::start_tls();
    let mut case = Case::with_standin(shared(), seatable_standin::Standin::start_tls());
    bao.kv2_put(
        "secret",
        "seatable/crm",
        json!({"api_token": case.base.api_token}),
    );
    let ca = case.dir.path().join("seatable-ca.pem");
    std::fs::write(&ca, case.standin.ca_pem.as_ref().unwrap()).unwrap();
    case.set("VAULT_ADDR", bao.addr.clone())
        .set("VAULT_TOKEN", crate::support::bao::ROOT_TOKEN)
        .set("SEATABLE_CRED_SECRET", "secret/seatable/crm")
        .set("SEATABLE_CA_CERT", ca.to_str().unwrap())
        .set("SEATABLE_CRED_CACHE", "none");

    // Not set, set empty, or set to a false value: the certificate is checked.
    refused_without_warning(case.run(&["get"]));
    for value in ["", "false", "0"] {
        case.set("VAULT_SKIP_VERIFY", value);
        refused_without_warning(case.run(&["get"]));
    }
    // Something that is not a boolean is a mistake to point out, not a yes.
    case.set("VAULT_SKIP_VERIFY", "yes-please");
    case.run(&["get"])
        .fails(2, "VAULT_SKIP_VERIFY='yes-please'");

    // Explicitly true: honoured, with the warning (at the default verbosity).
    for value in ["true", "1"] {
        case.set("VAULT_SKIP_VERIFY", value);
        let out = case.run(&["get", "-o", "json"]).ok();
        assert!(case.standin.accepts(
            out.json()["token"].as_str().unwrap(),
            &case.base.dtable_uuid
        ));
        assert_eq!(
            out.stderr,
            format!("{WARNING}\n"),
            "VAULT_SKIP_VERIFY={value}"
        );
    }

    // It is Vault's variable: SeaTable's certificate is still checked.
    case.unset("SEATABLE_CA_CERT");
    let out = case.run(&["get"]).fails(5, "TLS");
    assert!(out.stderr.contains(WARNING), "{}", out.stderr);
    assert_eq!(
        case.standin.exchanges(),
        2,
        "only the two verified calls exchanged"
    );
    bao.stop();
}
