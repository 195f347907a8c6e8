//! The SeaTable stand-in: SeaTable's answers as its official API spec
//! (OpenAPI 6.2, `seatable/seatable-api-php`, `openapi_input/`) gives them,
//! and the older forms behind switches ([`Compat`]).
//!
//! * `GET /api/v2.1/dtable/app-access-token/[?exp=5h|3d]` with
//!   `Authorization: Token <api token>` (or `Bearer`, as 4.0+ accept) →
//!   the 6.x (or 4.x) JSON of `authentication.yaml`
//!   `getBaseTokenWithApiToken`, with a real HS256 base token carrying
//!   `exp`, `dtable_uuid`, `permission`, `app_name`. `dtable_uuid` is
//!   hyphenated (32 hex digits with [`Compat::hex_uuid_in_exchange`]). `exp`
//!   takes the spec's units only — whole hours `5h` or days `3d`, default
//!   `3d`; anything else is 400 `exp invalid.`. An unknown token is 403
//!   `{"error_msg":"Permission denied."}` (404 `api token not found.` with
//!   [`Compat::bad_token_404`]); a deleted base 404. Every answered exchange
//!   is counted.
//! * `GET /api-gateway/api/v2/dtables/<uuid>/metadata/`, `GET …/rows/` (list)
//!   and `POST …/rows/` (append; `{"table_name", "rows"}` → `inserted_row_count`,
//!   `row_ids`, `first_row`), as `base_operations.yaml` and the Python SDK
//!   4.0 and the npm SDK 1.0 send them, accept only a valid, unexpired base
//!   token of that base (`Bearer` or `Token`; base UUIDs compared as UUIDs);
//!   an expired one gets 403 `{"error_msg":"Token expired."}`, what the
//!   Python SDK turns into `AuthExpiredError` (401 with
//!   [`Compat::expired_401`]); an invalid one 403 `{"error_message":"invalid
//!   token"}` as the spec shows. Rows live in memory per base and table.
//! * Faults can be queued for the gateway too (`Token expired.` for a valid
//!   token, a status, a slow or a big answer), and every gateway answer can
//!   be delayed by a fixed time (benchmarks of the agent's proxy).
//! * Faults can be queued for the exchange: a status, 429 with hints, an
//!   HTML page with 200, a slow answer, a dropped connection, a huge body.
//! * `GET /api2/ping/` → `"pong"` with the server's `Date`.
//! * A path no view answers: Django's HTML 404 page, as SeaTable sends it.
//! * For kubectl and Vault's kubernetes method: `GET /api` (bearer base
//!   token) and `POST /apis/authentication.k8s.io/v1/tokenreviews`.
//! * The account API (login, account info, workspaces, API tokens): see
//!   [`crate::account`]; the team admin's: [`crate::team`]; files and
//!   images: [`crate::files`].
//!
//! # Control interface
//!
//! In-process tests call [`Standin`]'s methods; the `seatable-standin`
//! binary (demo, benchmarks, Python tests) takes the same over HTTP:
//!
//! * `GET /_standin/stats` → [`Stats`];
//! * `POST /_standin/bases` with a [`Base`] (API token, base, permission, …)
//!   → the registered base with its API token;
//! * `POST /_standin/faults`, `POST /_standin/gateway-faults` with a list of
//!   [`Fault`]s for the next exchange or gateway requests;
//! * `POST /_standin/compat` with a [`Compat`] → switches to older servers'
//!   forms (and back);
//! * `POST /_standin/accounts` with `{"email", "password", "otp"?, "org_id"?,
//!   "is_org_staff"?}` → `{"token": <account token>}`;
//! * `POST /_standin/team` with a [`crate::TeamSeed`] → a team of many bases
//!   and API tokens made at once ([`crate::TeamSeeded`]);
//! * `POST /_standin/team-budget` with a [`crate::TeamBudget`] → team-admin
//!   requests past it answer 429 with `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::pki::{Leaf, Pki};

/// A base and the API token that opens it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Base {
    #[serde(default)]
    pub api_token: String,
    #[serde(default = "default_uuid")]
    pub dtable_uuid: String,
    #[serde(default = "default_name")]
    pub dtable_name: String,
    #[serde(default = "default_workspace")]
    pub workspace_id: i64,
    #[serde(default = "default_app")]
    pub app_name: String,
    /// `r` or `rw`.
    #[serde(default = "default_permission")]
    pub permission: String,
    /// Answer like SeaTable 4.x (no API gateway) instead of 6.x.
    #[serde(default)]
    pub v4: bool,
    /// The base was deleted: exchanges answer 404.
    #[serde(default)]
    pub gone: bool,
    /// Issue tokens living this long, whatever `exp` asks (for expiry tests).
    #[serde(default)]
    pub lifetime_secs: Option<u64>,
    /// Who made the API token (the account API's `generated_by`).
    #[serde(default = "default_generated_by")]
    pub generated_by: String,
    /// When the API token was made, Unix seconds (default: when it was registered).
    #[serde(default)]
    pub generated_at: Option<u64>,
    /// The last exchange made with the API token, Unix seconds.
    #[serde(default)]
    pub last_access: Option<u64>,
    /// The team (organisation) the base belongs to; -1 for none, as
    /// SeaTable says of accounts outside a team.
    #[serde(default = "no_org")]
    pub org_id: i64,
}

fn default_uuid() -> String {
    hyphenated(&random_hex(16)).expect("32 hex digits")
}
fn default_name() -> String {
    "Demo base".to_string()
}
fn default_workspace() -> i64 {
    7
}
fn default_app() -> String {
    "seatable-cred".to_string()
}
fn default_permission() -> String {
    "rw".to_string()
}
pub(crate) fn no_org() -> i64 {
    -1
}
fn default_generated_by() -> String {
    "owner@auth.local".to_string()
}

impl Default for Base {
    fn default() -> Self {
        Base {
            api_token: random_hex(20),
            dtable_uuid: default_uuid(),
            dtable_name: default_name(),
            workspace_id: default_workspace(),
            app_name: default_app(),
            permission: default_permission(),
            v4: false,
            gone: false,
            lifetime_secs: None,
            generated_by: default_generated_by(),
            generated_at: None,
            last_access: None,
            org_id: no_org(),
        }
    }
}

/// What the next exchange request gets instead of a normal answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// No fault: answered as usual (to let earlier requests through).
    Pass,
    Status {
        code: u16,
    },
    RateLimited {
        retry_after: Option<u64>,
        ratelimit_reset: Option<String>,
    },
    Html,
    Slow {
        millis: u64,
    },
    Drop,
    Oversize,
    /// A 200 whose `access_token` is this text, as a hostile or broken
    /// server might send (newlines, header injection, not a JWT).
    AccessToken {
        value: String,
    },
    /// A real, signed base token whose claims are overridden by these
    /// (e.g. an `exp` in the year 10000, or 1e300).
    Claims {
        claims: serde_json::Value,
    },
    /// Gateway only: 403 `Token expired.` whatever the token.
    TokenExpired,
    /// Gateway only: a 200 JSON answer of this many bytes.
    Big {
        bytes: usize,
    },
}

/// Switches to the forms older SeaTable servers answer in, where the spec
/// (6.2) says otherwise. All off: the spec's form.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Compat {
    /// The exchange answers `dtable_uuid` (and the base token's claim) as 32
    /// hex digits, while the workspace list stays hyphenated: the mixed
    /// form of older servers.
    pub hex_uuid_in_exchange: bool,
    /// An unknown API token at the exchange is 404 `{"error_msg": "api
    /// token not found."}` instead of the spec's 403 `Permission denied.`.
    pub bad_token_404: bool,
    /// An expired base token at the gateway is 401 (with `Token expired.`)
    /// instead of 403, as some servers and proxies answer.
    pub expired_401: bool,
    /// The custom-folder links (`custom/app-upload-link/`,
    /// `custom/app-download-link/`) answer their fields at the top level,
    /// as the Python SDK reads them, instead of inside the spec's `dirent`.
    pub custom_links_flat: bool,
}

#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// Base tokens issued.
    pub exchanges: u64,
    /// Requests to the exchange endpoint, answered or not.
    pub exchange_requests: u64,
    /// Gateway requests with a valid token.
    pub gateway_ok: u64,
    /// Gateway requests refused (expired or invalid token).
    pub gateway_refused: u64,
    /// Gateway requests received, answered or not yet.
    #[serde(default)]
    pub gateway_requests: u64,
    /// The `exp` query of the last exchange.
    pub last_exp: Option<String>,
    /// The scheme of the last exchange's Authorization header.
    pub last_scheme: Option<String>,
    /// When each exchange request arrived (Unix milliseconds), in order.
    #[serde(default)]
    pub exchange_times_ms: Vec<u64>,
}

pub(crate) struct State {
    jwt_secret: Vec<u8>,
    /// Which older forms are switched on.
    pub(crate) compat: Mutex<Compat>,
    /// Files and images of bases (see [`crate::files`]).
    pub(crate) files: crate::files::FileState,
    /// Team-admin throttling (see [`crate::team`]).
    pub(crate) team: crate::team::TeamState,
    /// Every API token, with the base it opens.
    pub(crate) bases: Mutex<HashMap<String, Base>>,
    /// Accounts, workspaces and the API-token endpoints (SPEC §12).
    pub(crate) account: crate::account::AccountState,
    faults: Mutex<VecDeque<Fault>>,
    exchanges: AtomicU64,
    exchange_requests: AtomicU64,
    gateway_ok: AtomicU64,
    gateway_refused: AtomicU64,
    gateway_requests: AtomicU64,
    gateway_faults: Mutex<VecDeque<Fault>>,
    /// Milliseconds every gateway answer waits.
    gateway_delay_ms: AtomicU64,
    /// Rows per (base uuid, table name).
    rows: Mutex<HashMap<(String, String), Vec<serde_json::Value>>>,
    /// Every base token issued, in order (tests look for leaks of them).
    issued: Mutex<Vec<String>>,
    /// Tokens among the first this many issued are answered "Token expired."
    /// (as when the server invalidated them, or clocks disagree).
    expired_upto: AtomicU64,
    last: Mutex<(Option<String>, Option<String>)>,
    exchange_times_ms: Mutex<Vec<u64>>,
    /// Seconds the stand-in's clock (its `Date` on ping) is off by.
    clock_offset: std::sync::atomic::AtomicI64,
    /// Service-account tokens the fake TokenReview accepts: token → (namespace, name).
    service_accounts: Mutex<HashMap<String, (String, String)>>,
    /// Every request that carried an API token, as `METHOD /path?query`
    /// (tests of the agent's file forwarding: where did the API token go?).
    api_token_requests: Mutex<Vec<String>>,
}

/// A running stand-in; stops when dropped.
pub struct Standin {
    pub url: String,
    pub addr: SocketAddr,
    /// The CA that signed the server certificate (HTTPS only).
    pub ca_pem: Option<String>,
    pub(crate) state: Arc<State>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Standin {
    /// Plain HTTP on a free loopback port.
    pub fn start() -> Standin {
        Self::start_with(None)
    }

    /// HTTPS with a fresh CA.
    pub fn start_tls() -> Standin {
        let pki = Pki::new("seatable-standin test CA");
        let leaf = pki.server();
        let ca = pki.ca_pem().to_string();
        Self::start_with(Some((leaf, ca)))
    }

    fn start_with(tls: Option<(Leaf, String)>) -> Standin {
        let state = Arc::new(State {
            jwt_secret: random_hex(32).into_bytes(),
            compat: Mutex::default(),
            files: crate::files::FileState::default(),
            team: crate::team::TeamState::default(),
            bases: Mutex::default(),
            account: crate::account::AccountState::default(),
            faults: Mutex::default(),
            exchanges: AtomicU64::new(0),
            exchange_requests: AtomicU64::new(0),
            gateway_ok: AtomicU64::new(0),
            gateway_refused: AtomicU64::new(0),
            gateway_requests: AtomicU64::new(0),
            gateway_faults: Mutex::default(),
            gateway_delay_ms: AtomicU64::new(0),
            rows: Mutex::default(),
            issued: Mutex::default(),
            expired_upto: AtomicU64::new(0),
            last: Mutex::default(),
            exchange_times_ms: Mutex::default(),
            service_accounts: Mutex::default(),
            api_token_requests: Mutex::default(),
            clock_offset: std::sync::atomic::AtomicI64::new(0),
        });
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{}", addr.port());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let ca_pem = tls.as_ref().map(|(_, ca)| ca.clone());
        let acceptor =
            tls.map(|(leaf, _)| tokio_rustls::TlsAcceptor::from(crate::pki::server_config(&leaf)));
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("seatable-standin".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("listener");
                    tokio::select! {
                        _ = accept_loop(listener, acceptor, thread_state) => {}
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .expect("spawn stand-in");
        Standin {
            url,
            addr,
            ca_pem,
            state,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Registers a base; returns it (with its API token).
    pub fn add_base(&self, base: Base) -> Base {
        self.state.insert_base(base)
    }

    /// Changes a registered base in place (e.g. mark it gone).
    pub fn update_base(&self, api_token: &str, f: impl FnOnce(&mut Base)) {
        if let Some(b) = self.state.bases.lock().unwrap().get_mut(api_token) {
            f(b);
        }
    }

    /// Switches to older servers' forms (all off: the spec's).
    pub fn set_compat(&self, compat: Compat) {
        *self.state.compat.lock().unwrap() = compat;
    }

    /// Queues faults for the next exchange requests, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.faults.lock().unwrap().extend(faults);
    }

    /// Queues faults for the next gateway requests, in order.
    pub fn push_gateway_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.gateway_faults.lock().unwrap().extend(faults);
    }

    /// Makes every gateway answer wait this long (as a real server's work would).
    pub fn set_gateway_delay(&self, delay: Duration) {
        self.state
            .gateway_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// From now on, every base token issued so far is answered "Token
    /// expired." by the gateway, however long it had to live.
    pub fn expire_issued(&self) {
        let n = self.state.issued.lock().unwrap().len() as u64;
        self.state.expired_upto.store(n, Ordering::SeqCst);
    }

    /// Every base token issued so far.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.issued.lock().unwrap().clone()
    }

    /// The rows of a table of a base (the seeded one and those appended).
    pub fn rows(&self, uuid: &str, table: &str) -> Vec<serde_json::Value> {
        self.state.table_rows(uuid, table)
    }

    pub fn clear_faults(&self) {
        self.state.faults.lock().unwrap().clear();
    }

    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Every request that carried an API token of a base (in
    /// `Authorization`, `Token` or `Bearer`), as `METHOD /path?query`, in
    /// the order they arrived.
    pub fn api_token_requests(&self) -> Vec<String> {
        self.state.api_token_requests.lock().unwrap().clone()
    }

    /// Base tokens issued so far.
    pub fn exchanges(&self) -> u64 {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    /// Whether `token` is a valid, unexpired base token of base `uuid`.
    pub fn accepts(&self, token: &str, uuid: &str) -> bool {
        self.state.check_base_token(token, Some(uuid)).is_ok()
    }

    /// Shifts the clock the stand-in reports (its `Date` header on ping).
    pub fn set_clock_offset(&self, seconds: i64) {
        self.state.clock_offset.store(seconds, Ordering::SeqCst);
    }

    /// Lets the fake TokenReview accept `token` as this service account.
    pub fn add_service_account(&self, token: &str, namespace: &str, name: &str) {
        self.state
            .service_accounts
            .lock()
            .unwrap()
            .insert(token.to_string(), (namespace.to_string(), name.to_string()));
    }
}

impl Standin {
    /// Stops serving: the port is closed afterwards (connections refused).
    pub fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.lock().unwrap().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.stop();
    }
}

impl State {
    /// Registers an API token and its base (stamped with when it was made).
    pub(crate) fn insert_base(&self, mut base: Base) -> Base {
        base.generated_at.get_or_insert_with(now);
        if let Some(canonical) = hyphenated(&base.dtable_uuid) {
            base.dtable_uuid = canonical;
        }
        self.account.register_table(&base);
        self.bases
            .lock()
            .unwrap()
            .insert(base.api_token.clone(), base.clone());
        base
    }

    /// Notes `req` when its `Authorization` carries an API token of a base.
    fn note_api_token(&self, req: &Request<Incoming>) {
        let Some(auth) = header(req, "authorization") else {
            return;
        };
        let token = auth
            .split_once(' ')
            .map_or(auth.as_str(), |(_, t)| t)
            .trim();
        if self.bases.lock().unwrap().contains_key(token) {
            let target = req.uri().path_and_query().map_or("", |p| p.as_str());
            self.api_token_requests
                .lock()
                .unwrap()
                .push(format!("{} {target}", req.method()));
        }
    }

    fn stats(&self) -> Stats {
        let last = self.last.lock().unwrap().clone();
        Stats {
            exchanges: self.exchanges.load(Ordering::SeqCst),
            exchange_requests: self.exchange_requests.load(Ordering::SeqCst),
            gateway_ok: self.gateway_ok.load(Ordering::SeqCst),
            gateway_refused: self.gateway_refused.load(Ordering::SeqCst),
            gateway_requests: self.gateway_requests.load(Ordering::SeqCst),
            last_exp: last.0,
            last_scheme: last.1,
            exchange_times_ms: self.exchange_times_ms.lock().unwrap().clone(),
        }
    }

    fn table_rows(&self, uuid: &str, table: &str) -> Vec<serde_json::Value> {
        let uuid = hyphenated(uuid).unwrap_or_else(|| uuid.to_string());
        self.rows
            .lock()
            .unwrap()
            .entry((uuid, table.to_string()))
            .or_insert_with(|| vec![json!({"_id": "row1", "Name": "Ada"})])
            .clone()
    }

    /// The claims of a valid, unexpired base token (of `uuid`, if given).
    fn check_base_token(
        &self,
        token: &str,
        uuid: Option<&str>,
    ) -> Result<serde_json::Value, &'static str> {
        let claims = crate::jwt::verify_hs256(&self.jwt_secret, token).ok_or("invalid token")?;
        let exp = claims["exp"].as_u64().ok_or("invalid token")?;
        if exp <= now() {
            return Err("Token expired.");
        }
        let upto = self.expired_upto.load(Ordering::SeqCst) as usize;
        if upto > 0
            && self.issued.lock().unwrap()[..upto]
                .iter()
                .any(|t| t == token)
        {
            return Err("Token expired.");
        }
        if let Some(uuid) = uuid
            && !claims["dtable_uuid"]
                .as_str()
                .is_some_and(|claimed| same_uuid(claimed, uuid))
        {
            return Err("Permission denied.");
        }
        Ok(claims)
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        // As real servers do: without it, Nagle's algorithm and delayed
        // ACKs hold TLS handshake records back for tens of milliseconds.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let https = tls.is_some();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, state.clone(), https));
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = http
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

/// Returning `Err` makes hyper drop the connection without an answer.
#[derive(Debug)]
pub(crate) struct DropConnection;
impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dropped on purpose")
    }
}
impl std::error::Error for DropConnection {}

pub(crate) type Answer = Result<Response<Full<Bytes>>, DropConnection>;

async fn handle(req: Request<Incoming>, state: Arc<State>, https: bool) -> Answer {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    state.note_api_token(&req);
    if crate::account::serves(&path) {
        return crate::account::handle(req, &state).await;
    }
    if crate::team::serves(&path) {
        return Ok(crate::team::handle(req, &state).await);
    }
    if crate::files::serves(&path) {
        return Ok(crate::files::handle(req, &state, https).await);
    }
    match (method, path.as_str()) {
        (Method::GET, "/api/v2.1/dtable/app-access-token/") => exchange(req, &state, https).await,
        (Method::GET | Method::POST, p) if p.starts_with("/api-gateway/api/v2/dtables/") => {
            let p = p.to_string();
            Ok(gateway(req, &p, &state).await)
        }
        (Method::GET, "/api") => Ok(kube_api(&req, &state)),
        (Method::GET, "/api2/ping/") => {
            // The server's clock, shifted on request (for clock-skew checks).
            let offset = state.clock_offset.load(Ordering::SeqCst);
            let date = SystemTime::now()
                .checked_add(Duration::from_secs(offset.unsigned_abs()))
                .filter(|_| offset >= 0)
                .or_else(|| {
                    SystemTime::now().checked_sub(Duration::from_secs(offset.unsigned_abs()))
                })
                .unwrap_or_else(SystemTime::now);
            let mut response = json_response(StatusCode::OK, &json!("pong"));
            response
                .headers_mut()
                .insert("date", httpdate::fmt_http_date(date).parse().unwrap());
            Ok(response)
        }
        (Method::POST, "/apis/authentication.k8s.io/v1/tokenreviews") => {
            Ok(token_review(req, &state).await)
        }
        (Method::GET, "/_standin/stats") => Ok(json_response(
            StatusCode::OK,
            &serde_json::to_value(state.stats()).unwrap(),
        )),
        (Method::POST, "/_standin/bases") => {
            let Some(base) = read_json::<Base>(req).await else {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error_msg": "bad base"}),
                ));
            };
            let base = state.insert_base(Base {
                api_token: if base.api_token.is_empty() {
                    random_hex(20)
                } else {
                    base.api_token
                },
                ..base
            });
            Ok(json_response(
                StatusCode::OK,
                &serde_json::to_value(base).unwrap(),
            ))
        }
        (Method::POST, "/_standin/compat") => {
            let Some(compat) = read_json::<Compat>(req).await else {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error_msg": "bad compat"}),
                ));
            };
            *state.compat.lock().unwrap() = compat;
            Ok(json_response(StatusCode::OK, &json!(compat)))
        }
        (Method::POST, "/_standin/accounts") => Ok(crate::account::control_add(req, &state).await),
        (Method::POST, "/_standin/team") => Ok(crate::team::control_seed(req, &state).await),
        (Method::POST, "/_standin/team-budget") => {
            Ok(crate::team::control_budget(req, &state).await)
        }
        (Method::POST, "/_standin/gateway-faults") => {
            let Some(faults) = read_json::<Vec<Fault>>(req).await else {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error_msg": "bad faults"}),
                ));
            };
            state.gateway_faults.lock().unwrap().extend(faults);
            Ok(json_response(StatusCode::OK, &json!({})))
        }
        (Method::POST, "/_standin/faults") => {
            let Some(faults) = read_json::<Vec<Fault>>(req).await else {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error_msg": "bad faults"}),
                ));
            };
            state.faults.lock().unwrap().extend(faults);
            Ok(json_response(StatusCode::OK, &json!({})))
        }
        // No view answers it: Django's own 404 page, as SeaTable (DEBUG
        // off) sends for a path it does not know — the exchange's path
        // behind a page's URL (`…/workspace/7/dtable/x/api/v2.1/…`).
        _ => Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header("content-type", "text/html; charset=utf-8")
            .body(Full::new(Bytes::from_static(
                b"\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n",
            )))
            .unwrap()),
    }
}

async fn exchange(req: Request<Incoming>, state: &State, https: bool) -> Answer {
    state.exchange_requests.fetch_add(1, Ordering::SeqCst);
    let arrived = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    state.exchange_times_ms.lock().unwrap().push(arrived);
    let fault = state.faults.lock().unwrap().pop_front();
    let mut override_claims = None;
    match fault {
        Some(Fault::Status { code }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Ok(json_response(
                status,
                &json!({"error_msg": "Internal Server Error"}),
            ));
        }
        Some(Fault::RateLimited {
            retry_after,
            ratelimit_reset,
        }) => {
            let mut r = Response::builder().status(StatusCode::TOO_MANY_REQUESTS);
            if let Some(s) = retry_after {
                r = r.header("Retry-After", s.to_string());
            }
            if let Some(reset) = ratelimit_reset {
                r = r.header("x-ratelimit-reset", reset);
            }
            return Ok(r.body(Full::new(Bytes::new())).unwrap());
        }
        Some(Fault::Html) => {
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from_static(
                    b"<html><body><h1>SeaTable is being upgraded</h1></body></html>",
                )))
                .unwrap());
        }
        Some(Fault::Drop) => return Err(DropConnection),
        Some(Fault::Oversize) => {
            let mut body = br#"{"access_token":""#.to_vec();
            body.resize(2 * 1024 * 1024, b'a');
            body.extend_from_slice(br#""}"#);
            return Ok(Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap());
        }
        Some(Fault::Slow { millis }) => tokio::time::sleep(Duration::from_millis(millis)).await,
        Some(Fault::AccessToken { value }) => {
            return Ok(json_response(
                StatusCode::OK,
                &json!({"access_token": value, "dtable_uuid": "x", "app_name": "x"}),
            ));
        }
        Some(Fault::Claims { claims }) => override_claims = Some(claims),
        None | Some(Fault::Pass | Fault::TokenExpired | Fault::Big { .. }) => {}
    }

    let auth = header(&req, "authorization").unwrap_or_default();
    let (scheme, token) = auth.split_once(' ').unwrap_or(("", ""));
    let exp_param = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("exp=")))
        .map(str::to_string);
    *state.last.lock().unwrap() = (exp_param.clone(), Some(scheme.to_string()));
    let compat = *state.compat.lock().unwrap();
    // authentication.yaml, getBaseTokenWithApiToken: 403 Permission denied.
    let refused = || {
        if compat.bad_token_404 {
            json_response(
                StatusCode::NOT_FOUND,
                &json!({"error_msg": "api token not found."}),
            )
        } else {
            json_response(
                StatusCode::FORBIDDEN,
                &json!({"error_msg": "Permission denied."}),
            )
        }
    };
    if scheme != "Token" && scheme != "Bearer" {
        return Ok(refused());
    }
    let base = state.bases.lock().unwrap().get_mut(token.trim()).map(|b| {
        b.last_access = Some(now());
        b.clone()
    });
    let Some(base) = base else {
        return Ok(refused());
    };
    if base.gone {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            &json!({"error_msg": "dtable not found."}),
        ));
    }
    let lifetime = match (&base.lifetime_secs, &exp_param) {
        (Some(secs), _) => *secs,
        (None, Some(exp)) => match parse_exp(exp) {
            Some(secs) => secs,
            None => {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error_msg": "exp invalid."}),
                ));
            }
        },
        (None, None) => 3 * 24 * 3600,
    };
    // Older servers answer the exchange with the UUID's 32 hex digits.
    let uuid = if compat.hex_uuid_in_exchange {
        base.dtable_uuid.replace('-', "")
    } else {
        base.dtable_uuid.clone()
    };
    let mut claims = json!({
        "exp": now() + lifetime,
        "dtable_uuid": uuid,
        "username": "",
        "permission": base.permission,
        "app_name": base.app_name,
        // Not in SeaTable's tokens; makes two tokens of one second differ.
        "jti": random_hex(8),
    });
    if let (Some(claims), Some(serde_json::Value::Object(extra))) =
        (claims.as_object_mut(), override_claims)
    {
        claims.extend(extra);
    }
    let access_token = crate::jwt::hs256(&state.jwt_secret, &claims);
    state.issued.lock().unwrap().push(access_token.clone());
    state.exchanges.fetch_add(1, Ordering::SeqCst);
    let host = header(&req, "host").unwrap_or_default();
    let scheme = if https { "https" } else { "http" };
    let origin = format!("{scheme}://{host}");
    let body = if base.v4 {
        json!({
            "app_name": base.app_name,
            "access_token": access_token,
            "dtable_uuid": uuid,
            "dtable_server": format!("{origin}/dtable-server/"),
            "dtable_socket": format!("{origin}/"),
            "dtable_db": format!("{origin}/dtable-db/"),
            "workspace_id": base.workspace_id,
            "dtable_name": base.dtable_name,
        })
    } else {
        // The fields of getBaseTokenWithApiToken's 200, no more.
        json!({
            "app_name": base.app_name,
            "access_token": access_token,
            "dtable_uuid": uuid,
            "dtable_server": format!("{origin}/api-gateway/"),
            "workspace_id": base.workspace_id,
            "dtable_name": base.dtable_name,
            "use_api_gateway": true,
        })
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// `exp` in the spec's units (authentication.yaml, parameter
/// `expiration_time`: "Examples: 5h (= 5 hours) or 3d (= 3 days)") →
/// seconds; `None` for anything else (minutes, seconds, no unit, zero).
pub(crate) fn parse_exp(text: &str) -> Option<u64> {
    let (num, unit) = text.split_at(text.len().checked_sub(1)?);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = num.parse().ok().filter(|n| *n > 0)?;
    let scale = match unit {
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// A base UUID in its hyphenated, lower-case form (the spec's), from
/// either form; `None` when `text` is not a UUID.
pub fn hyphenated(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let shaped = match text.len() {
        32 => !text.contains('-'),
        36 => text
            .char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-')),
        _ => false,
    };
    if !shaped || hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Whether two base UUIDs name the same base (32 hex digits and the
/// hyphenated form are the same); text that is no UUID only equals itself.
pub fn same_uuid(a: &str, b: &str) -> bool {
    match (hyphenated(a), hyphenated(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

async fn gateway(req: Request<Incoming>, path: &str, state: &State) -> Response<Full<Bytes>> {
    state.gateway_requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.gateway_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fault = state.gateway_faults.lock().unwrap().pop_front();
    let expired_status = if state.compat.lock().unwrap().expired_401 {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::FORBIDDEN
    };
    match fault {
        Some(Fault::TokenExpired) => {
            state.gateway_refused.fetch_add(1, Ordering::SeqCst);
            return json_response(expired_status, &json!({"error_msg": "Token expired."}));
        }
        Some(Fault::Status { code }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(status, &json!({"error_msg": "Internal Server Error"}));
        }
        Some(Fault::Slow { millis }) => tokio::time::sleep(Duration::from_millis(millis)).await,
        Some(Fault::Big { bytes }) => {
            let mut body = br#"{"rows":[{"Name":""#.to_vec();
            body.resize(bytes.saturating_sub(4).max(body.len()), b'a');
            body.extend_from_slice(br#""}]}"#);
            return Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .unwrap();
        }
        _ => {}
    }
    // /api-gateway/api/v2/dtables/<uuid>/<rest>
    let rest = &path["/api-gateway/api/v2/dtables/".len()..];
    let (uuid, what) = rest.split_once('/').unwrap_or((rest, ""));
    let token = header(&req, "authorization")
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("Token "))
                .map(str::to_string)
        })
        .unwrap_or_default();
    let claims = match state.check_base_token(&token, Some(uuid)) {
        Ok(c) => c,
        Err(why) => {
            state.gateway_refused.fetch_add(1, Ordering::SeqCst);
            // An expired base token: 403 "Token expired.", which the Python
            // SDK turns into AuthExpiredError. An invalid one: getMetadata's
            // 403, whose body says `error_message`, not `error_msg`.
            return match why {
                "Token expired." => json_response(expired_status, &json!({"error_msg": why})),
                "invalid token" => {
                    json_response(StatusCode::FORBIDDEN, &json!({"error_message": why}))
                }
                _ => json_response(StatusCode::FORBIDDEN, &json!({"error_msg": why})),
            };
        }
    };
    state.gateway_ok.fetch_add(1, Ordering::SeqCst);
    let name = state
        .bases
        .lock()
        .unwrap()
        .values()
        .find(|b| same_uuid(&b.dtable_uuid, uuid))
        .map(|b| b.dtable_name.clone())
        .unwrap_or_default();
    let query_table = || {
        req.uri()
            .query()
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("table_name="))
            .map(percent_decode)
            .unwrap_or_else(|| "Table1".to_string())
    };
    match (req.method().clone(), what.trim_end_matches('/')) {
        (Method::GET, "metadata") => json_response(
            StatusCode::OK,
            &json!({"metadata": {"tables": [{"_id": "0000", "name": "Table1", "columns": [{"key": "0000", "name": "Name", "type": "text"}], "views": [{"_id": "0000", "name": "Default View"}]}], "base_name": name, "permission": claims["permission"]}}),
        ),
        (Method::GET, "rows") => {
            let table = query_table();
            json_response(
                StatusCode::OK,
                &json!({"rows": state.table_rows(uuid, &table)}),
            )
        }
        (Method::POST, "rows") => {
            if claims["permission"] != "rw" {
                return json_response(
                    StatusCode::FORBIDDEN,
                    &json!({"error_msg": "Permission denied."}),
                );
            }
            #[derive(Deserialize)]
            struct Append {
                table_name: String,
                rows: Vec<serde_json::Map<String, serde_json::Value>>,
            }
            let uuid = hyphenated(uuid).unwrap_or_else(|| uuid.to_string());
            let Some(append) = read_json::<Append>(req).await else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error_msg": "table_name and rows are required."}),
                );
            };
            state.table_rows(&uuid, &append.table_name);
            let mut stored = state.rows.lock().unwrap();
            let table = stored.entry((uuid, append.table_name)).or_default();
            let mut ids = Vec::new();
            let mut first = None;
            for mut row in append.rows {
                let id = random_hex(11);
                row.insert("_id".into(), json!(id));
                ids.push(json!({"_id": id}));
                first.get_or_insert_with(|| serde_json::Value::Object(row.clone()));
                table.push(serde_json::Value::Object(row));
            }
            json_response(
                StatusCode::OK,
                &json!({"inserted_row_count": ids.len(), "row_ids": ids, "first_row": first}),
            )
        }
        _ => json_response(StatusCode::OK, &json!({"dtable_uuid": uuid})),
    }
}

/// `%XX` and `+` in a query value, as `requests` and `axios` encode them.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or(""),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn kube_api(req: &Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let token = header(req, "authorization")
        .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
        .unwrap_or_default();
    if state.check_base_token(&token, None).is_err() {
        state.gateway_refused.fetch_add(1, Ordering::SeqCst);
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
        );
    }
    state.gateway_ok.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": header(req, "host").unwrap_or_default()}]}),
    )
}

async fn token_review(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    #[derive(Deserialize)]
    struct Review {
        spec: Spec,
    }
    #[derive(Deserialize)]
    struct Spec {
        token: String,
    }
    let Some(review) = read_json::<Review>(req).await else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"kind": "Status", "code": 400}),
        );
    };
    let found = state
        .service_accounts
        .lock()
        .unwrap()
        .get(&review.spec.token)
        .cloned();
    let status = match found {
        Some((ns, name)) => json!({
            "authenticated": true,
            "user": {"username": format!("system:serviceaccount:{ns}:{name}"), "uid": format!("uid-{name}"), "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")]},
        }),
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    json_response(
        StatusCode::CREATED,
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}),
    )
}

pub(crate) fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Option<T> {
    let body = Limited::new(req.into_body(), 1024 * 1024)
        .collect()
        .await
        .ok()?
        .to_bytes();
    serde_json::from_slice(&body).ok()
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .expect("random");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
