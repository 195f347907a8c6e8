//! SeaTable's account API, as SPEC §12 lists it, for the `token` commands.
//!
//! * `POST /api2/auth-token/` with the form `username`, `password` →
//!   `{"token": "<account token>"}`. What seahub's `ObtainAuthToken`
//!   answers otherwise, SeaTable's web API being built on it: wrong
//!   credentials are 400 `{"non_field_errors": ["Unable to login with
//!   provided credentials."]}`; with two-factor on, a missing or wrong
//!   `X-SEAFILE-OTP` header is 400 with the response header
//!   `X-Seafile-OTP: required` and "Two factor auth token is missing." or
//!   "… is invalid.".
//! * `GET /api/v2.1/workspaces/` → `{"workspace_list": [...]}` with each
//!   workspace's `table_list` — and a "starred" pseudo-workspace with an
//!   empty-string `id` that repeats a base, as SeaTable sends it.
//! * `GET|POST /api/v2.1/workspace/{id}/dtable/{name}/api-tokens/` and
//!   `PUT|DELETE …/api-tokens/{app_name}/`, answered from the stand-in's
//!   API tokens (creating one makes a token the exchange accepts; deleting
//!   one makes the exchange refuse it). Create: 201, or 400
//!   `api token already exist.`; unknown token: 404 `api token not found.`.
//! * `GET /api2/account/info/` (user_account_operations.yaml,
//!   `getAccountInfo`) → the account's details, with `org_id` (-1 outside a
//!   team) and `is_org_staff` (1 for a team admin, else 0).
//! * Account tokens go as `Authorization: Token …` (or `Bearer`); an
//!   unknown one gets 401 `{"detail": "Invalid token"}`, none at all 403
//!   `{"detail": "Authentication credentials were not provided."}`, as the
//!   spec's operations answer.
//! * Faults: statuses answered instead of acting; deletes that hang and never land (a rotation can be killed in
//!   the middle of one), and the next creates held until released — held
//!   before they take effect, or after (the token exists, its answer waits);
//!   lists answered late with what they saw (out of date by then); a login
//!   refusal in words of the test's choosing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::server::{Answer, Base, Standin, State, header, json_response, now, random_hex};

/// A SeaTable user who can log in.
#[derive(Clone, Debug)]
struct Account {
    password: String,
    /// The two-factor code it expects, when two-factor is on.
    otp: Option<String>,
    /// What a successful login answers (stable, as seahub's v1 tokens are).
    token: String,
    /// The team, or -1.
    pub(crate) org_id: i64,
    /// A team admin.
    pub(crate) is_org_staff: bool,
}

/// What the account API was asked.
#[derive(Default, Debug, Clone, Serialize, Deserialize)]
pub struct AccountStats {
    /// Login requests, answered or not.
    pub login_requests: u64,
    /// Logins that returned an account token.
    pub logins: u64,
    /// Logins answered with `X-Seafile-OTP: required`.
    pub otp_challenges: u64,
    pub workspace_requests: u64,
    pub list_requests: u64,
    /// Create requests received (held ones included).
    pub create_requests: u64,
    /// API tokens created.
    pub creates: u64,
    /// Delete requests received (hanging ones included).
    pub delete_requests: u64,
    /// API tokens deleted.
    pub deletes: u64,
    pub update_requests: u64,
    /// Requests refused for a missing or unknown account token.
    pub unauthorized: u64,
}

pub(crate) struct AccountState {
    accounts: Mutex<HashMap<String, Account>>,
    /// Every base ever registered, by uuid: the template new API tokens copy.
    pub(crate) tables: Mutex<BTreeMap<String, Base>>,
    workspace_names: Mutex<HashMap<i64, String>>,
    hang_deletes: AtomicBool,
    /// How many of the next creates to hold.
    held_creates: std::sync::atomic::AtomicU32,
    /// Held creates take effect first; only their answers wait.
    hold_answers_only: AtomicBool,
    /// How many of the next lists to answer only once released (with what
    /// the base had when they arrived).
    held_lists: std::sync::atomic::AtomicU32,
    /// What a refused login says instead of seahub's own words.
    login_refusal: Mutex<Option<String>>,
    /// Every request to the account API, as `METHOD path`.
    requests: Mutex<Vec<String>>,
    /// Bumped by each release.
    release: tokio::sync::watch::Sender<u64>,
    /// Every API token ever registered or created (for hygiene checks).
    issued: Mutex<Vec<String>>,
    /// Statuses the next requests of a kind answer instead, unacted on.
    failures: Mutex<Vec<(&'static str, u16)>>,
    login_requests: AtomicU64,
    logins: AtomicU64,
    otp_challenges: AtomicU64,
    workspace_requests: AtomicU64,
    list_requests: AtomicU64,
    create_requests: AtomicU64,
    creates: AtomicU64,
    delete_requests: AtomicU64,
    deletes: AtomicU64,
    update_requests: AtomicU64,
    unauthorized: AtomicU64,
}

impl Default for AccountState {
    fn default() -> Self {
        AccountState {
            accounts: Mutex::default(),
            tables: Mutex::default(),
            workspace_names: Mutex::default(),
            hang_deletes: AtomicBool::new(false),
            held_creates: std::sync::atomic::AtomicU32::new(0),
            hold_answers_only: AtomicBool::new(false),
            held_lists: std::sync::atomic::AtomicU32::new(0),
            login_refusal: Mutex::default(),
            requests: Mutex::default(),
            release: tokio::sync::watch::Sender::new(0),
            issued: Mutex::default(),
            failures: Mutex::default(),
            login_requests: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            otp_challenges: AtomicU64::new(0),
            workspace_requests: AtomicU64::new(0),
            list_requests: AtomicU64::new(0),
            create_requests: AtomicU64::new(0),
            creates: AtomicU64::new(0),
            delete_requests: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            update_requests: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
        }
    }
}

impl AccountState {
    pub(crate) fn register_table(&self, base: &Base) {
        self.issued.lock().unwrap().push(base.api_token.clone());
        self.tables
            .lock()
            .unwrap()
            .entry(base.dtable_uuid.clone())
            .or_insert_with(|| base.clone());
    }

    fn stats(&self) -> AccountStats {
        let n = |c: &AtomicU64| c.load(Ordering::SeqCst);
        AccountStats {
            login_requests: n(&self.login_requests),
            logins: n(&self.logins),
            otp_challenges: n(&self.otp_challenges),
            workspace_requests: n(&self.workspace_requests),
            list_requests: n(&self.list_requests),
            create_requests: n(&self.create_requests),
            creates: n(&self.creates),
            delete_requests: n(&self.delete_requests),
            deletes: n(&self.deletes),
            update_requests: n(&self.update_requests),
            unauthorized: n(&self.unauthorized),
        }
    }

    fn email_of(&self, account_token: &str) -> Option<String> {
        self.accounts
            .lock()
            .unwrap()
            .iter()
            .find(|(_, a)| a.token == account_token)
            .map(|(email, _)| email.clone())
    }

    /// The account of `email`: its team and whether it is the team's admin.
    pub(crate) fn team_of(&self, email: &str) -> Option<(i64, bool)> {
        let accounts = self.accounts.lock().unwrap();
        accounts.get(email).map(|a| (a.org_id, a.is_org_staff))
    }

    fn insert(&self, email: &str, password: &str, otp: Option<&str>, team: (i64, bool)) -> String {
        let token = random_hex(20);
        self.accounts.lock().unwrap().insert(
            email.to_string(),
            Account {
                password: password.to_string(),
                otp: otp.map(str::to_string),
                token: token.clone(),
                org_id: team.0,
                is_org_staff: team.1,
            },
        );
        token
    }
}

impl Standin {
    /// Adds a user who can log in with `password` (and, if given, the
    /// two-factor code `otp`). Returns the account token a login answers,
    /// which also works directly (as one kept in Vault would).
    pub fn add_account(&self, email: &str, password: &str, otp: Option<&str>) -> String {
        self.state
            .account
            .insert(email, password, otp, (crate::server::no_org(), false))
    }

    /// Adds a member of team `org_id` (its admin with `admin`), who can log
    /// in like [`Standin::add_account`]'s users. Returns the account token.
    pub fn add_team_account(
        &self,
        email: &str,
        password: &str,
        org_id: i64,
        admin: bool,
    ) -> String {
        self.state
            .account
            .insert(email, password, None, (org_id, admin))
    }

    /// The name the workspaces endpoint gives workspace `id` (default `personal`).
    pub fn name_workspace(&self, id: i64, name: &str) {
        self.state
            .account
            .workspace_names
            .lock()
            .unwrap()
            .insert(id, name.to_string());
    }

    /// The API tokens of a base (values included), by app name.
    pub fn api_tokens(&self, dtable_uuid: &str) -> Vec<Base> {
        let mut tokens: Vec<Base> = self
            .state
            .bases
            .lock()
            .unwrap()
            .values()
            .filter(|b| crate::server::same_uuid(&b.dtable_uuid, dtable_uuid))
            .cloned()
            .collect();
        tokens.sort_by(|a, b| a.app_name.cmp(&b.app_name));
        tokens
    }

    /// Makes every API token look `secs` older (its `generated_at`), as if
    /// what made them had happened that long ago.
    pub fn age_api_tokens(&self, secs: u64) {
        for base in self.state.bases.lock().unwrap().values_mut() {
            let at = base.generated_at.unwrap_or(0);
            base.generated_at = Some(at.saturating_sub(secs));
        }
    }

    /// While on, deletes of API tokens hang forever and never take effect.
    pub fn hang_deletes(&self, on: bool) {
        self.state.account.hang_deletes.store(on, Ordering::SeqCst);
    }

    /// Holds the next `n` creates of API tokens until
    /// [`Standin::release_creates`]: before they take effect, or with
    /// `answers_only` after (the token exists; the client waits for news).
    pub fn hold_creates(&self, n: u32, answers_only: bool) {
        let account = &self.state.account;
        account
            .hold_answers_only
            .store(answers_only, Ordering::SeqCst);
        account.held_creates.store(n, Ordering::SeqCst);
    }

    /// Lets held creates go on; creates are no longer held.
    pub fn release_creates(&self) {
        let account = &self.state.account;
        account.held_creates.store(0, Ordering::SeqCst);
        account.release.send_modify(|generation| *generation += 1);
    }

    /// The next `n` lists of API tokens are answered only at the next
    /// [`Standin::release_lists`], with the tokens the base had when each
    /// arrived: the client acts on a list that is out of date by then.
    pub fn hold_lists(&self, n: u32) {
        self.state.account.held_lists.store(n, Ordering::SeqCst);
    }

    /// Lets held lists be answered.
    pub fn release_lists(&self) {
        let account = &self.state.account;
        account.held_lists.store(0, Ordering::SeqCst);
        account.release.send_modify(|generation| *generation += 1);
    }

    /// Every request the account API received, as `METHOD path` (the path
    /// as it arrived, percent-encoded).
    pub fn account_requests(&self) -> Vec<String> {
        self.state.account.requests.lock().unwrap().clone()
    }

    /// Deletes an API token as the web interface would (the exchange
    /// refuses it from then on).
    pub fn remove_api_token(&self, api_token: &str) {
        self.state.bases.lock().unwrap().remove(api_token);
    }

    /// Requests to list API tokens received so far (held ones included).
    pub fn list_requests(&self) -> u64 {
        self.state.account.list_requests.load(Ordering::SeqCst)
    }

    /// A refused login — wrong credentials, or a wrong two-factor code —
    /// answers `text` as its reason (as a server that quotes what it was
    /// sent might), or seahub's own words with `None`.
    pub fn set_login_refusal(&self, text: Option<&str>) {
        *self.state.account.login_refusal.lock().unwrap() = text.map(str::to_string);
    }

    /// Every API token this stand-in ever registered or created, deleted
    /// ones included.
    pub fn issued_api_tokens(&self) -> Vec<String> {
        self.state.account.issued.lock().unwrap().clone()
    }

    /// The next requests of `kind` (`workspaces`, `list`, `create`,
    /// `update`, `delete`) answer these statuses, in order, without doing
    /// anything.
    pub fn fail_account_requests(
        &self,
        kind: &'static str,
        statuses: impl IntoIterator<Item = u16>,
    ) {
        let mut failures = self.state.account.failures.lock().unwrap();
        failures.extend(statuses.into_iter().map(|code| (kind, code)));
    }

    /// Drops the failures queued by [`Standin::fail_account_requests`].
    pub fn clear_account_failures(&self) {
        self.state.account.failures.lock().unwrap().clear();
    }

    pub fn account_stats(&self) -> AccountStats {
        self.state.account.stats()
    }
}

/// Whether `path` belongs to the account API.
pub(crate) fn serves(path: &str) -> bool {
    path == "/api2/auth-token/"
        || path == "/api2/account/info/"
        || path == "/api/v2.1/workspaces/"
        || path.starts_with("/api/v2.1/workspace/")
}

pub(crate) async fn handle(req: Request<Incoming>, state: &State) -> Answer {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    state
        .account
        .requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));
    if path == "/api2/auth-token/" {
        return Ok(match method {
            Method::POST => login(req, state).await,
            _ => method_not_allowed(),
        });
    }
    let email = match authorised(&req, state) {
        Ok(email) => email,
        Err(refusal) => {
            state.account.unauthorized.fetch_add(1, Ordering::SeqCst);
            return Ok(refusal.response());
        }
    };
    if path == "/api2/account/info/" {
        return Ok(match method {
            Method::GET => account_info(state, &email),
            _ => method_not_allowed(),
        });
    }
    let kind = match (&method, path.ends_with("/api-tokens/")) {
        _ if path == "/api/v2.1/workspaces/" => "workspaces",
        (&Method::GET, true) => "list",
        (&Method::POST, true) => "create",
        (&Method::PUT, false) => "update",
        (&Method::DELETE, false) => "delete",
        _ => "",
    };
    let failure = {
        let mut failures = state.account.failures.lock().unwrap();
        let at = failures.iter().position(|(k, _)| *k == kind);
        at.map(|i| failures.remove(i).1)
    };
    if let Some(code) = failure {
        match kind {
            "create" => state.account.create_requests.fetch_add(1, Ordering::SeqCst),
            "delete" => state.account.delete_requests.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Ok(json_response(
            status,
            &json!({"error_msg": "Internal Server Error"}),
        ));
    }
    if path == "/api/v2.1/workspaces/" {
        return Ok(match method {
            Method::GET => workspaces(state),
            _ => method_not_allowed(),
        });
    }
    // /api/v2.1/workspace/{id}/dtable/{name}/api-tokens/[{app_name}/]
    let segments: Vec<String> = path
        .trim_start_matches("/api/v2.1/workspace/")
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let (workspace, name, app) = match segments.as_slice() {
        [ws, d, name, t] if d == "dtable" && t == "api-tokens" => (ws, name, None),
        [ws, d, name, t, app] if d == "dtable" && t == "api-tokens" => (ws, name, Some(app)),
        _ => return Ok(not_found("Not found.")),
    };
    let Ok(workspace) = workspace.parse::<i64>() else {
        return Ok(not_found("Workspace not found."));
    };
    let Some(table) = table(state, workspace, name) else {
        return Ok(not_found(&format!("dtable {name} not found.")));
    };
    Ok(match (method, app) {
        (Method::GET, None) => return Ok(list(state, &table).await),
        (Method::POST, None) => create(req, state, &table, &email).await,
        (Method::PUT, Some(app)) => update(req, state, &table, app).await,
        (Method::DELETE, Some(app)) => return delete(state, &table, app).await,
        _ => method_not_allowed(),
    })
}

/// Why a request to the account API was not authorised.
pub(crate) enum Refusal {
    /// No credentials: 403.
    Missing,
    /// An unknown or malformed token: 401.
    Invalid,
}

impl Refusal {
    /// The spec's answer (e.g. listApiTokens' 401 and 403).
    pub(crate) fn response(self) -> Response<Full<Bytes>> {
        match self {
            Refusal::Missing => json_response(
                StatusCode::FORBIDDEN,
                &json!({"detail": "Authentication credentials were not provided."}),
            ),
            Refusal::Invalid => json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"detail": "Invalid token"}),
            ),
        }
    }
}

/// The email of the account whose token authorises `req`.
pub(crate) fn authorised(req: &Request<Incoming>, state: &State) -> Result<String, Refusal> {
    let auth = header(req, "authorization").ok_or(Refusal::Missing)?;
    let (scheme, token) = auth.split_once(' ').ok_or(Refusal::Invalid)?;
    if scheme != "Token" && scheme != "Bearer" {
        return Err(Refusal::Invalid);
    }
    state.account.email_of(token.trim()).ok_or(Refusal::Invalid)
}

/// getAccountInfo's 200 (user_account_operations.yaml): every field of the
/// spec's schema, in its type.
fn account_info(state: &State, email: &str) -> Response<Full<Bytes>> {
    let (org_id, staff) = state
        .account
        .team_of(email)
        .unwrap_or((crate::server::no_org(), false));
    let name = email.split('@').next().unwrap_or(email);
    json_response(
        StatusCode::OK,
        &json!({
            "org_id": org_id,
            "is_org_staff": i64::from(staff),
            "space_usage": "0.000000000%",
            "total": 100_000_000_000_i64,
            "usage": 0,
            "row_usage_rate": "0%",
            "row_total": -1,
            "row_usage": 0,
            "avatar_url": "/media/avatars/default.png",
            "email": email,
            "name": name,
            "login_id": "",
            "contact_email": email,
            "institution": "",
            "is_staff": false,
            "enable_chargebee": false,
            "enable_subscription": false,
            "dtable_updates_email_interval": 0,
            "dtable_collaborate_email_interval": 0,
        }),
    )
}

/// `POST /_standin/accounts`: `{"email", "password", "otp"?, "org_id"?,
/// "is_org_staff"?}` → `{"token": <account token>}`.
pub(crate) async fn control_add(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    #[derive(Deserialize)]
    struct New {
        email: String,
        password: String,
        otp: Option<String>,
        #[serde(default = "crate::server::no_org")]
        org_id: i64,
        #[serde(default)]
        is_org_staff: bool,
    }
    let Some(new) = crate::server::read_json::<New>(req).await else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error_msg": "bad account"}),
        );
    };
    let token = state.account.insert(
        &new.email,
        &new.password,
        new.otp.as_deref(),
        (new.org_id, new.is_org_staff),
    );
    json_response(StatusCode::OK, &json!({ "token": token }))
}

async fn login(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let account = &state.account;
    account.login_requests.fetch_add(1, Ordering::SeqCst);
    let otp = header(&req, "x-seafile-otp").unwrap_or_default();
    let form = read_form(req).await.unwrap_or_default();
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let found = account.accounts.lock().unwrap().get(&username).cloned();
    let Some(user) = found.filter(|a| !password.is_empty() && a.password == password) else {
        let why = account.login_refusal.lock().unwrap().clone();
        let why = why.unwrap_or_else(|| "Unable to login with provided credentials.".to_string());
        return json_response(StatusCode::BAD_REQUEST, &json!({"non_field_errors": [why]}));
    };
    if let Some(expected) = &user.otp
        && otp.trim() != expected
    {
        account.otp_challenges.fetch_add(1, Ordering::SeqCst);
        let refusal = account.login_refusal.lock().unwrap().clone();
        let why = match refusal {
            Some(text) if !otp.is_empty() => text,
            _ if otp.is_empty() => "Two factor auth token is missing.".to_string(),
            _ => "Two factor auth token is invalid.".to_string(),
        };
        let mut response =
            json_response(StatusCode::BAD_REQUEST, &json!({"non_field_errors": [why]}));
        response
            .headers_mut()
            .insert("X-Seafile-OTP", "required".parse().unwrap());
        return response;
    }
    account.logins.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &json!({"token": user.token}))
}

fn workspaces(state: &State) -> Response<Full<Bytes>> {
    state
        .account
        .workspace_requests
        .fetch_add(1, Ordering::SeqCst);
    let tables = state.account.tables.lock().unwrap().clone();
    let names = state.account.workspace_names.lock().unwrap().clone();
    let mut by_workspace: BTreeMap<i64, Vec<serde_json::Value>> = BTreeMap::new();
    let mut starred = Vec::new();
    for (i, base) in tables.values().enumerate() {
        let table = json!({
            "id": i + 1,
            "workspace_id": base.workspace_id,
            "uuid": base.dtable_uuid,
            "name": base.dtable_name,
            "creator": "Owner",
            "modifier": "Owner",
            "created_at": iso(base.generated_at.unwrap_or(0)),
            "updated_at": iso(base.generated_at.unwrap_or(0)),
            "color": null,
            "text_color": null,
            "icon": null,
            "starred": i == 0,
        });
        if i == 0 {
            starred.push(table.clone());
        }
        by_workspace
            .entry(base.workspace_id)
            .or_default()
            .push(table);
    }
    let mut list =
        vec![json!({"id": "", "name": "starred", "type": "starred", "table_list": starred})];
    for (id, tables) in by_workspace {
        list.push(json!({
            "id": id,
            "name": names.get(&id).cloned().unwrap_or_else(|| "personal".to_string()),
            "type": if names.contains_key(&id) { "group" } else { "personal" },
            "table_list": tables,
        }));
    }
    json_response(StatusCode::OK, &json!({"workspace_list": list}))
}

/// The base called `name` in workspace `id`.
fn table(state: &State, workspace: i64, name: &str) -> Option<Base> {
    state
        .account
        .tables
        .lock()
        .unwrap()
        .values()
        .find(|b| b.workspace_id == workspace && b.dtable_name == name)
        .cloned()
}

pub(crate) fn token_json(b: &Base) -> serde_json::Value {
    let generated = b.generated_at.unwrap_or(0);
    json!({
        "app_name": b.app_name,
        "api_token": b.api_token,
        "generated_by": b.generated_by,
        "generated_at": iso(generated),
        "last_access": iso(b.last_access.unwrap_or(generated)),
        "permission": b.permission,
    })
}

fn tokens_of(state: &State, table: &Base) -> Vec<Base> {
    let mut tokens: Vec<Base> = state
        .bases
        .lock()
        .unwrap()
        .values()
        .filter(|b| b.dtable_uuid == table.dtable_uuid)
        .cloned()
        .collect();
    tokens.sort_by(|a, b| (a.generated_at, &a.app_name).cmp(&(b.generated_at, &b.app_name)));
    tokens
}

async fn list(state: &State, table: &Base) -> Response<Full<Bytes>> {
    let account = &state.account;
    account.list_requests.fetch_add(1, Ordering::SeqCst);
    let tokens: Vec<serde_json::Value> = tokens_of(state, table).iter().map(token_json).collect();
    let mut released = account.release.subscribe();
    let generation = *released.borrow_and_update();
    let held = account
        .held_lists
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    while held && *released.borrow_and_update() == generation {
        if released.changed().await.is_err() {
            break;
        }
    }
    json_response(StatusCode::OK, &json!({"api_tokens": tokens}))
}

async fn create(
    req: Request<Incoming>,
    state: &State,
    table: &Base,
    email: &str,
) -> Response<Full<Bytes>> {
    let account = &state.account;
    account.create_requests.fetch_add(1, Ordering::SeqCst);
    let form = read_form(req).await.unwrap_or_default();
    // Subscribe before looking at the hold, so that no release is missed.
    let mut released = account.release.subscribe();
    let generation = *released.borrow_and_update();
    let held = account
        .held_creates
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let answers_only = account.hold_answers_only.load(Ordering::SeqCst);
    let wait = async move {
        while *released.borrow_and_update() == generation {
            if released.changed().await.is_err() {
                break;
            }
        }
    };
    let mut wait = Some(wait);
    if held && !answers_only {
        wait.take().unwrap().await;
    }
    let app_name = form
        .get("app_name")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if app_name.is_empty() || app_name.len() > 255 {
        return bad_request("app_name invalid.");
    }
    let permission = form.get("permission").cloned().unwrap_or_default();
    if permission != "r" && permission != "rw" {
        return bad_request("permission invalid.");
    }
    let token = {
        let mut bases = state.bases.lock().unwrap();
        if bases
            .values()
            .any(|b| b.dtable_uuid == table.dtable_uuid && b.app_name == app_name)
        {
            return bad_request("api token already exist.");
        }
        let token = Base {
            api_token: random_hex(20),
            app_name,
            permission,
            generated_by: email.to_string(),
            generated_at: Some(now()),
            last_access: None,
            ..table.clone()
        };
        bases.insert(token.api_token.clone(), token.clone());
        account.issued.lock().unwrap().push(token.api_token.clone());
        account.creates.fetch_add(1, Ordering::SeqCst);
        token
    };
    if held && let Some(wait) = wait {
        wait.await;
    }
    json_response(StatusCode::CREATED, &token_json(&token))
}

async fn update(
    req: Request<Incoming>,
    state: &State,
    table: &Base,
    app: &str,
) -> Response<Full<Bytes>> {
    state.account.update_requests.fetch_add(1, Ordering::SeqCst);
    let form = read_form(req).await.unwrap_or_default();
    let permission = form.get("permission").cloned().unwrap_or_default();
    if permission != "r" && permission != "rw" {
        return bad_request("permission invalid.");
    }
    let mut bases = state.bases.lock().unwrap();
    let Some(token) = bases
        .values_mut()
        .find(|b| b.dtable_uuid == table.dtable_uuid && b.app_name == app)
    else {
        return not_found("api token not found.");
    };
    if token.permission == permission {
        return bad_request(&format!("api token already has {permission} permission."));
    }
    token.permission = permission;
    token.generated_at = Some(now());
    json_response(StatusCode::OK, &token_json(token))
}

async fn delete(state: &State, table: &Base, app: &str) -> Answer {
    let account = &state.account;
    account.delete_requests.fetch_add(1, Ordering::SeqCst);
    if account.hang_deletes.load(Ordering::SeqCst) {
        // Never answers and never lands; ends when the client goes away.
        std::future::pending::<()>().await;
    }
    let mut bases = state.bases.lock().unwrap();
    let found = bases
        .iter()
        .find(|(_, b)| b.dtable_uuid == table.dtable_uuid && b.app_name == app)
        .map(|(token, _)| token.clone());
    Ok(match found {
        Some(token) => {
            bases.remove(&token);
            account.deletes.fetch_add(1, Ordering::SeqCst);
            json_response(StatusCode::OK, &json!({"success": true}))
        }
        None => not_found("api token not found."),
    })
}

fn bad_request(msg: &str) -> Response<Full<Bytes>> {
    json_response(StatusCode::BAD_REQUEST, &json!({"error_msg": msg}))
}

fn not_found(msg: &str) -> Response<Full<Bytes>> {
    json_response(StatusCode::NOT_FOUND, &json!({"error_msg": msg}))
}

fn method_not_allowed() -> Response<Full<Bytes>> {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"detail": "Method not allowed."}),
    )
}

/// An `application/x-www-form-urlencoded` body.
pub(crate) async fn read_form(req: Request<Incoming>) -> Option<HashMap<String, String>> {
    let body = Limited::new(req.into_body(), 64 * 1024)
        .collect()
        .await
        .ok()?
        .to_bytes();
    let text = std::str::from_utf8(&body).ok()?;
    Some(
        text.split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (
                    percent_decode(&k.replace('+', " ")),
                    percent_decode(&v.replace('+', " ")),
                )
            })
            .collect(),
    )
}

pub(crate) fn percent_decode(text: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `2019-09-19T02:41:53+00:00`, as SeaTable writes times.
pub fn iso(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso(1_568_860_913), "2019-09-19T02:41:53+00:00");
        assert_eq!(iso(951_782_400), "2000-02-29T00:00:00+00:00");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("Demo%20base"), "Demo base");
        assert_eq!(percent_decode("a%2Fb%"), "a/b%");
        assert_eq!(percent_decode("%C3%A4"), "ä");
    }
}
