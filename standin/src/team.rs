//! The team admin's API (team_admin_account_operations.yaml), for auditing
//! every API token of a team:
//!
//! * `GET /api/v2.1/org/{org_id}/admin/api-tokens/?page&per_page`
//!   (`listApiTokensOfAllBases`) → `{"api_tokens": [{app_name, api_token,
//!   generated_by, creator, avatar_url, generated_at, last_access,
//!   permission, dtable_uuid, dtable_name, dtable_icon, dtable_color}],
//!   "total_count"}`;
//! * `GET /api/v2.1/org/{org_id}/admin/dtables/?page&per_page` (`listBases`)
//!   → `{"dtable_list": [{id, workspace_id, uuid, name, …}], "count"}`;
//! * `GET /api/v2.1/org/{org_id}/admin/dtables/{base_uuid}/api-tokens/`
//!   (`listApiTokens`) → `{"api_tokens": [...]}` without the base's fields;
//! * `DELETE …/api-tokens/{app_name}/` (`deleteApiToken`) →
//!   `{"success": true}`; an unknown app 404 `api token not found.`.
//!
//! Paging: `page` from 1 (default 1), `per_page` from 1 (default 25), as the
//! spec's parameters say; the spec names no largest `per_page`, so every
//! size is served unless [`TeamBudget::max_per_page`] clips it (as a server
//! may). A value that is not a number ≥ 1 falls back to its default.
//!
//! Refusals, in Django REST framework's order (authentication, permission,
//! throttling): no credentials 403 / unknown token 401 (as the account
//! API); an account that is not the admin of team `{org_id}` 403 `{"detail":
//! "You do not have permission to perform this action."}` (the spec's 403
//! of the team-admin operations); past the daily budget 429 with
//! `Retry-After` and DRF's `{"detail": "Request was throttled. Expected
//! available in N seconds."}` — self-hosted SeaTable throttles team admins
//! at 1000 requests a day by default; tests set a small budget and a short
//! "day".

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::account::{iso, percent_decode, token_json};
use crate::server::{Base, Standin, State, hyphenated, json_response, now, random_hex, same_uuid};

/// Limits of the team-admin API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamBudget {
    /// Team-admin requests allowed per window; `None`: unlimited.
    pub limit: Option<u64>,
    /// The window ("a day"), in seconds; default 86400.
    pub window_secs: Option<u64>,
    /// The largest `per_page` served; `None`: whatever is asked.
    pub max_per_page: Option<u64>,
}

#[derive(Default)]
pub(crate) struct TeamState {
    budget: Mutex<TeamBudget>,
    /// Start of the current window and the requests counted in it.
    window: Mutex<Option<(Instant, u64)>>,
    requests: AtomicU64,
    throttled: AtomicU64,
}

/// What [`Standin::seed_team`] makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamSeed {
    pub org_id: i64,
    pub bases: usize,
    pub tokens: usize,
    /// The bases are spread over this many workspaces…
    pub workspaces: usize,
    /// …numbered from this one.
    pub first_workspace: i64,
    /// The tokens are made by these users, in turn.
    pub users: Vec<String>,
}

impl Default for TeamSeed {
    fn default() -> Self {
        TeamSeed {
            org_id: 1,
            bases: 3,
            tokens: 6,
            workspaces: 2,
            first_workspace: 100,
            users: vec![
                "alice@team.local".into(),
                "bob@team.local".into(),
                "carol@team.local".into(),
            ],
        }
    }
}

/// One API token made by [`Standin::seed_team`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeededToken {
    pub api_token: String,
    pub dtable_uuid: String,
    pub app_name: String,
}

/// What [`Standin::seed_team`] made: the bases (uuid, name, workspace)
/// and the tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TeamSeeded {
    pub org_id: i64,
    pub bases: Vec<(String, String, i64)>,
    pub tokens: Vec<SeededToken>,
}

impl Standin {
    /// Makes a team at once: `seed.bases` bases over `seed.workspaces`
    /// workspaces and `seed.tokens` API tokens spread over them, made by
    /// the seed's users in turn, read-write every third, at times spread
    /// over two years, every fifth never used. Quick enough for 500 bases
    /// and 5,000 tokens.
    pub fn seed_team(&self, seed: &TeamSeed) -> TeamSeeded {
        seed_team(&self.state, seed)
    }

    /// Sets the team-admin API's limits (budget, "day", largest page).
    pub fn set_team_budget(&self, budget: TeamBudget) {
        set_budget(&self.state, budget);
    }

    /// Team-admin requests received, and those answered 429.
    pub fn team_requests(&self) -> (u64, u64) {
        let t = &self.state.team;
        (
            t.requests.load(Ordering::SeqCst),
            t.throttled.load(Ordering::SeqCst),
        )
    }
}

fn set_budget(state: &State, budget: TeamBudget) {
    *state.team.budget.lock().unwrap() = budget;
    *state.team.window.lock().unwrap() = None;
}

fn seed_team(state: &State, seed: &TeamSeed) -> TeamSeeded {
    let now = now();
    let users = if seed.users.is_empty() {
        TeamSeed::default().users
    } else {
        seed.users.clone()
    };
    let bases: Vec<(String, String, i64)> = (0..seed.bases)
        .map(|b| {
            let uuid = hyphenated(&random_hex(16)).expect("uuid");
            let ws = seed.first_workspace + (b % seed.workspaces.max(1)) as i64;
            (uuid, format!("Team base {b:04}"), ws)
        })
        .collect();
    let template = |b: usize| {
        let (uuid, name, ws) = &bases[b];
        Base {
            api_token: String::new(),
            dtable_uuid: uuid.clone(),
            dtable_name: name.clone(),
            workspace_id: *ws,
            generated_by: users[b % users.len()].clone(),
            generated_at: Some(now - 3 * 365 * 86_400),
            org_id: seed.org_id,
            ..Base::default()
        }
    };
    {
        let mut tables = state.account.tables.lock().unwrap();
        for (b, (uuid, _, _)) in bases.iter().enumerate() {
            tables.entry(uuid.clone()).or_insert_with(|| template(b));
        }
    }
    let mut tokens = Vec::with_capacity(seed.tokens);
    if !bases.is_empty() {
        let two_years = 2 * 365 * 86_400;
        for i in 0..seed.tokens {
            let b = i % bases.len();
            let generated_at = now - (i as u64 * 7_919 % two_years) - 60;
            let token = Base {
                api_token: random_hex(20),
                app_name: format!("app-{i:05}"),
                permission: if i % 3 == 0 { "rw" } else { "r" }.to_string(),
                generated_by: users[i % users.len()].clone(),
                generated_at: Some(generated_at),
                last_access: (i % 5 != 0).then(|| generated_at + (now - generated_at) / 2),
                ..template(b)
            };
            tokens.push(SeededToken {
                api_token: token.api_token.clone(),
                dtable_uuid: token.dtable_uuid.clone(),
                app_name: token.app_name.clone(),
            });
            state.insert_base(token);
        }
    }
    TeamSeeded {
        org_id: seed.org_id,
        bases,
        tokens,
    }
}

/// `POST /_standin/team` with a [`TeamSeed`] → [`TeamSeeded`].
pub(crate) async fn control_seed(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let Some(seed) = crate::server::read_json::<TeamSeed>(req).await else {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error_msg": "bad seed"}));
    };
    let seeded = seed_team(state, &seed);
    json_response(StatusCode::OK, &serde_json::to_value(seeded).unwrap())
}

/// `POST /_standin/team-budget` with a [`TeamBudget`].
pub(crate) async fn control_budget(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let Some(budget) = crate::server::read_json::<TeamBudget>(req).await else {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error_msg": "bad budget"}));
    };
    set_budget(state, budget);
    json_response(StatusCode::OK, &json!({}))
}

pub(crate) fn serves(path: &str) -> bool {
    path.starts_with("/api/v2.1/org/")
}

/// Counts a team-admin request against the budget; the seconds to wait
/// when it is spent.
fn throttle(state: &State) -> Option<u64> {
    let budget = state.team.budget.lock().unwrap().clone();
    let limit = budget.limit?;
    let window = Duration::from_secs(budget.window_secs.unwrap_or(86_400).max(1));
    let mut current = state.team.window.lock().unwrap();
    let (start, used) = match *current {
        Some((start, used)) if start.elapsed() < window => (start, used),
        _ => (Instant::now(), 0),
    };
    if used >= limit {
        *current = Some((start, used));
        let left = window.saturating_sub(start.elapsed());
        return Some(left.as_secs() + u64::from(left.subsec_nanos() > 0));
    }
    *current = Some((start, used + 1));
    None
}

fn detail(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "detail": text }))
}

fn error_msg(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error_msg": text }))
}

pub(crate) async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    state.team.requests.fetch_add(1, Ordering::SeqCst);
    let email = match crate::account::authorised(&req, state) {
        Ok(email) => email,
        Err(refusal) => return refusal.response(),
    };
    // /api/v2.1/org/{org_id}/admin/<rest>
    let path = req.uri().path().to_string();
    let segments: Vec<String> = path
        .trim_start_matches("/api/v2.1/org/")
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let denied = || {
        detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
    };
    let Some(org_id) = segments.first().and_then(|s| s.parse::<i64>().ok()) else {
        return error_msg(StatusCode::NOT_FOUND, "Not found.");
    };
    match state.account.team_of(&email) {
        Some((org, true)) if org == org_id && org > 0 => {}
        _ => return denied(),
    }
    if let Some(wait) = throttle(state) {
        state.team.throttled.fetch_add(1, Ordering::SeqCst);
        let mut response = detail(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Request was throttled. Expected available in {wait} seconds."),
        );
        response
            .headers_mut()
            .insert("Retry-After", wait.to_string().parse().unwrap());
        return response;
    }
    let method = req.method().clone();
    let rest: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    match (method, rest.as_slice()) {
        (Method::GET, ["admin", "api-tokens"]) => all_tokens(&req, state, org_id),
        (Method::GET, ["admin", "dtables"]) => bases(&req, state, org_id),
        (Method::GET, ["admin", "dtables", uuid, "api-tokens"]) => {
            match base_of(state, org_id, uuid) {
                Some(base) => {
                    let tokens: Vec<_> = tokens_of(state, org_id)
                        .iter()
                        .filter(|t| same_uuid(&t.dtable_uuid, &base.dtable_uuid))
                        .map(|t| admin_token_json(t, false))
                        .collect();
                    json_response(StatusCode::OK, &json!({ "api_tokens": tokens }))
                }
                None => error_msg(StatusCode::NOT_FOUND, &format!("Base {uuid} not found.")),
            }
        }
        (Method::DELETE, ["admin", "dtables", uuid, "api-tokens", app]) => {
            let Some(base) = base_of(state, org_id, uuid) else {
                return error_msg(StatusCode::NOT_FOUND, &format!("Base {uuid} not found."));
            };
            let mut bases = state.bases.lock().unwrap();
            let found = bases
                .iter()
                .find(|(_, t)| same_uuid(&t.dtable_uuid, &base.dtable_uuid) && t.app_name == *app)
                .map(|(token, _)| token.clone());
            match found {
                Some(token) => {
                    bases.remove(&token);
                    json_response(StatusCode::OK, &json!({"success": true}))
                }
                None => error_msg(StatusCode::NOT_FOUND, "api token not found."),
            }
        }
        (_, ["admin", "api-tokens" | "dtables", ..]) => {
            detail(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.")
        }
        _ => error_msg(StatusCode::NOT_FOUND, "Not found."),
    }
}

/// The team's base of `uuid` (either form).
fn base_of(state: &State, org_id: i64, uuid: &str) -> Option<Base> {
    let key = hyphenated(uuid)?;
    let tables = state.account.tables.lock().unwrap();
    tables.get(&key).filter(|b| b.org_id == org_id).cloned()
}

/// Every API token of the team's bases, oldest first.
fn tokens_of(state: &State, org_id: i64) -> Vec<Base> {
    let mut tokens: Vec<Base> = state
        .bases
        .lock()
        .unwrap()
        .values()
        .filter(|b| b.org_id == org_id)
        .cloned()
        .collect();
    tokens.sort_by(|a, b| {
        (a.generated_at, &a.dtable_uuid, &a.app_name).cmp(&(
            b.generated_at,
            &b.dtable_uuid,
            &b.app_name,
        ))
    });
    tokens
}

/// An API token as the team-admin lists show it: the account API's fields,
/// plus `creator` and `avatar_url`, plus the base's with `with_base`.
fn admin_token_json(t: &Base, with_base: bool) -> serde_json::Value {
    let mut v = token_json(t);
    v["creator"] = json!(t.generated_by.split('@').next().unwrap_or_default());
    v["avatar_url"] = json!("/media/avatars/default.png");
    if with_base {
        v["dtable_uuid"] = json!(t.dtable_uuid);
        v["dtable_name"] = json!(t.dtable_name);
        v["dtable_icon"] = json!("icon-dollar");
        v["dtable_color"] = json!("#00C9C7");
    }
    v
}

/// `page` and `per_page` of the query: defaults 1 and 25; `per_page`
/// clipped to the budget's largest page.
fn paging(req: &Request<Incoming>, state: &State) -> (usize, usize) {
    let query = req.uri().query().unwrap_or("");
    let number = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n >= 1)
    };
    let page = number("page").unwrap_or(1);
    let mut per_page = number("per_page").unwrap_or(25);
    if let Some(max) = state.team.budget.lock().unwrap().max_per_page {
        per_page = per_page.min(max.max(1) as usize);
    }
    (page, per_page)
}

fn page_of<T: Clone>(all: &[T], (page, per_page): (usize, usize)) -> Vec<T> {
    let start = (page - 1).saturating_mul(per_page);
    all.iter().skip(start).take(per_page).cloned().collect()
}

fn all_tokens(req: &Request<Incoming>, state: &State, org_id: i64) -> Response<Full<Bytes>> {
    let tokens = tokens_of(state, org_id);
    let page: Vec<_> = page_of(&tokens, paging(req, state))
        .iter()
        .map(|t| admin_token_json(t, true))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"api_tokens": page, "total_count": tokens.len()}),
    )
}

fn bases(req: &Request<Incoming>, state: &State, org_id: i64) -> Response<Full<Bytes>> {
    let all: Vec<Base> = state
        .account
        .tables
        .lock()
        .unwrap()
        .values()
        .filter(|b| b.org_id == org_id)
        .cloned()
        .collect();
    let numbered: Vec<(usize, Base)> = all.into_iter().enumerate().collect();
    let list: Vec<_> = page_of(&numbered, paging(req, state))
        .iter()
        .map(|(i, b)| {
            let at = iso(b.generated_at.unwrap_or(0));
            json!({
                "id": i + 1,
                "workspace_id": b.workspace_id,
                "uuid": b.dtable_uuid,
                "name": b.dtable_name,
                "created_at": at,
                "updated_at": at,
                "color": null,
                "text_color": null,
                "icon": null,
                "is_encrypted": false,
                "in_storage": true,
                "org_id": org_id,
                "email": b.generated_by,
                "group_id": -1,
                "owner": b.generated_by.split('@').next().unwrap_or_default(),
                "owner_deleted": false,
                "rows_count": 1,
            })
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"dtable_list": list, "count": numbered.len()}),
    )
}
