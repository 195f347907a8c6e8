//! README's examples run as README prints them — the lines are read from
//! README.md, so that a change there is tested here.

use crate::support::{Case, HELPER};

/// The first line of README.md that starts with `start`.
fn readme_line(start: &str) -> &'static str {
    include_str!("../../README.md")
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("README.md has no line starting with {start:?}"))
}

#[test]
fn the_use_sections_header_pipe_into_curl_works_in_a_shell() {
    let case = Case::new();
    // The Use section: the environment first, then the header through curl.
    let script = [
        readme_line("eval \"$(seatable-cred get -o env)\""),
        readme_line("seatable-cred get -o header | curl -H @- "),
    ]
    .join("\n");
    assert!(script.contains("SEATABLE_API_GATEWAY_URL"), "{script}");
    // `seatable-cred` on PATH, as after `cargo install`.
    let bin = std::path::Path::new(HELPER).parent().unwrap();
    let path = format!("{}:{}", bin.display(), case.env["PATH"]);
    let mut sh = case.tool("sh");
    sh.arg("-euc").arg(&script).env("PATH", path);
    let out = crate::support::run_with_input(sh, "");
    case.assert_no_secrets(&out);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not the base's metadata ({e}): {}", out.stdout));
    assert_eq!(
        v["metadata"]["base_name"], case.base.dtable_name,
        "{}",
        out.stdout
    );
    assert_eq!(
        case.standin.exchanges(),
        1,
        "the second call was a cache hit"
    );
}

/// The Kubernetes sidecar of docs/serve.md, `contrib/kubernetes/sidecar.yaml`: kubectl
/// reads it (offline: `label --local`; checking it against the API's schema
/// would need an API server), and it holds what the page says of it — a
/// native sidecar (an init container with `restartPolicy: Always`) logging
/// in with the pod's service account, its cache and env file in a
/// memory-backed `emptyDir` shared with the app, a startup probe on
/// `/health`, an app of another uid that the agent lets in, and that loads
/// the env file where `serve` writes it.
#[test]
fn the_kubernetes_sidecar_example_is_what_readme_says() {
    use serde_json::Value;
    let yaml = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/kubernetes/sidecar.yaml"
    );
    let home = crate::support::TempDir::new("kubectl");
    let out = std::process::Command::new("kubectl")
        .args(["label", "--local", "-o", "json", "-f", yaml, "checked=yes"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl (the tests need it)");
    assert!(
        out.status.success(),
        "kubectl cannot read {yaml}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ConfigMap", "Deployment"]);
    let (config_map, deployment) = (&objects[0], &objects[1]);

    // The profile in the ConfigMap is one the helper accepts: kubernetes
    // login with the default service-account token, the file cache in the
    // memory-backed volume.
    let dir = crate::support::TempDir::new("sidecar");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_map["data"]["config.toml"].as_str().unwrap()).unwrap();
    let args = seatable_cred::config::GlobalArgs {
        config: Some(config),
        ..Default::default()
    };
    struct NoEnv;
    impl seatable_cred::config::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }
    let profile = seatable_cred::config::resolve(&args, &NoEnv).unwrap();
    assert_eq!(profile.vault.auth_method.name(), "kubernetes");
    match &profile.vault.auth {
        seatable_cred::config::Auth::Kubernetes { jwt, .. } => assert!(
            matches!(jwt, seatable_cred::config::SecretInput::File(p)
                if p.to_str() == Some(seatable_cred::config::KUBERNETES_SA_TOKEN)),
            "the pod's service-account token"
        ),
        _ => unreachable!(),
    }
    assert_eq!(
        profile.cache.backend(),
        seatable_cred::config::CacheBackend::File
    );
    let cache_dir = profile.cache.dir.clone().unwrap();
    let env_file = cache_dir.join(format!("serve/{}.env", profile.name));

    let pod = &deployment["spec"]["template"]["spec"];
    assert!(pod["serviceAccountName"].is_string(), "{pod}");
    assert_ne!(pod["automountServiceAccountToken"], false);
    let volume = |name: &str| -> &Value {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    let mount_of = |container: &Value, path: &std::path::Path| -> String {
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"].as_str() == path.to_str())
            .unwrap_or_else(|| panic!("nothing mounted at {}: {container}", path.display()))["name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let [sidecar] = &pod["initContainers"].as_array().unwrap()[..] else {
        panic!("one init container: {pod}")
    };
    assert_eq!(sidecar["restartPolicy"], "Always", "a native sidecar");
    let args: Vec<&str> = sidecar["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    let listen = args[args.iter().position(|a| *a == "--listen").unwrap() + 1];
    // Its config is the ConfigMap, where SEATABLE_CRED_CONFIG says.
    let config_env = sidecar["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SEATABLE_CRED_CONFIG")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    let config_volume = mount_of(sidecar, std::path::Path::new(config_env).parent().unwrap());
    assert_eq!(
        volume(&config_volume)["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    // The cache directory is a memory-backed emptyDir, shared with the app.
    let run = mount_of(sidecar, &cache_dir);
    assert_eq!(volume(&run)["emptyDir"]["medium"], "Memory");
    // The app waits for /health on the address serve listens on.
    let probe = &sidecar["startupProbe"]["httpGet"];
    assert_eq!(probe["path"], "/health");
    assert_eq!(
        format!("{}:{}", probe["host"].as_str().unwrap(), probe["port"]),
        listen
    );
    let [app] = &pod["containers"].as_array().unwrap()[..] else {
        panic!("one app container: {pod}")
    };
    assert_eq!(mount_of(app, &cache_dir), run);
    // The layout `attacks::agent::the_kubernetes_sidecar_layout_works`
    // proves: two uids sharing the pod's fsGroup, and the agent letting the
    // app's uid in.
    let uid = |c: &Value| c["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(pod["securityContext"]["fsGroup"].is_u64(), "{pod}");
    assert_ne!(uid(sidecar), uid(app));
    let allowed = args[args.iter().position(|a| *a == "--allow-uid").unwrap() + 1];
    assert_eq!(allowed, uid(app).to_string());
    let command = app["command"].to_string();
    assert!(
        command.contains(&format!(". {}", env_file.display())),
        "the app loads {}: {command}",
        env_file.display()
    );
}

/// The Vault Agent injector pattern of docs/serve.md,
/// `contrib/kubernetes/vault-agent-injector.yaml`: kubectl reads it; the
/// annotations the page shows are the pod template's; the agent writes its
/// token as the app's uid (which the pod sets) to /vault/secrets/token,
/// which the ConfigMap's profile names as its `vault_token_file` — a
/// profile the helper accepts, reading its token from that file.
#[test]
fn the_vault_agent_injector_example_is_what_readme_says() {
    use serde_json::Value;
    let yaml = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/contrib/kubernetes/vault-agent-injector.yaml"
    );
    let home = crate::support::TempDir::new("kubectl");
    let out = std::process::Command::new("kubectl")
        .args(["label", "--local", "-o", "json", "-f", yaml, "checked=yes"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("kubectl (the tests need it)");
    assert!(
        out.status.success(),
        "kubectl cannot read {yaml}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let [config_map, deployment] = &objects[..] else {
        panic!("a ConfigMap and a Deployment: {objects:?}")
    };
    let template = &deployment["spec"]["template"];
    let annotations = &template["metadata"]["annotations"];
    // Every annotation docs/serve.md shows, as the example has it.
    let block =
        crate::support::bao_agent::doc_block("docs/serve.md", "vault.hashicorp.com/agent-inject:");
    for line in block.lines() {
        let line = line.split(" #").next().unwrap().trim();
        let (key, value) = line.split_once(": ").unwrap();
        assert_eq!(
            annotations[key].as_str(),
            Some(value.trim_matches('"')),
            "docs/serve.md's {key} in {yaml}"
        );
    }
    assert_eq!(
        annotations["vault.hashicorp.com/agent-inject-token"],
        "true"
    );
    assert_eq!(
        annotations["vault.hashicorp.com/agent-run-as-same-user"],
        "true"
    );
    // The injector runs the agent as the first container's uid: it must be set.
    let pod = &template["spec"];
    let app = &pod["containers"][0];
    assert!(
        app["securityContext"]["runAsUser"].as_u64().is_some(),
        "{app}"
    );

    // The profile reads the agent's token from /vault/secrets/token.
    let dir = crate::support::TempDir::new("injector");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_map["data"]["config.toml"].as_str().unwrap()).unwrap();
    let args = seatable_cred::config::GlobalArgs {
        config: Some(config),
        ..Default::default()
    };
    struct NoEnv;
    impl seatable_cred::config::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }
    let profile = seatable_cred::config::resolve(&args, &NoEnv).unwrap();
    match &profile.vault.auth {
        seatable_cred::config::Auth::Token(seatable_cred::config::SecretInput::TokenFile(
            path,
            _,
        )) => assert_eq!(path.to_str(), Some("/vault/secrets/token")),
        other => panic!("token auth from the agent's sink: {other:?}"),
    }
    assert!(
        block.contains("/vault/secrets/token"),
        "docs/serve.md names the token file"
    );
    // The app reads that profile: SEATABLE_CRED_CONFIG where the ConfigMap is mounted.
    let config_env = app["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SEATABLE_CRED_CONFIG")
        .unwrap()["value"]
        .as_str()
        .unwrap();
    let dir_of_config = std::path::Path::new(config_env).parent().unwrap();
    let mount = app["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == dir_of_config.to_str())
        .unwrap_or_else(|| panic!("nothing mounted at {}", dir_of_config.display()));
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(volume["configMap"]["name"], config_map["metadata"]["name"]);
}
