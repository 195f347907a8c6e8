//! SeaTable's team-admin API (`team_admin_account_operations.yaml`), the
//! team admin's view of every API token of the team (SPEC §12, "Team
//! admins"):
//!
//! * `GET /api2/account/info/` (`user_account_operations.yaml`) →
//!   `org_id` (-1 outside a team) and `is_org_staff` (1 for the team's
//!   admin, else 0);
//! * `GET /api/v2.1/org/{org_id}/admin/api-tokens/?page&per_page` → every
//!   API token of every base of the team (`api_tokens[]`: `app_name`,
//!   `api_token`, `generated_by`, `creator`, `generated_at`, `last_access`,
//!   `permission`, `dtable_uuid`, `dtable_name`, …) and `total_count`;
//! * `GET /api/v2.1/org/{org_id}/admin/dtables/{base_uuid}/api-tokens/` →
//!   one base's tokens, and `DELETE …/api-tokens/{app_name}/` → `{"success":
//!   true}` (404 `api token not found.` when there is none).
//!
//! A member who is not the team's admin gets 403 `{"detail": "You do not
//! have permission to perform this action."}`; team-admin calls are
//! throttled (self-hosted SeaTable allows a team admin 1000 a day by
//! default): 429 with `Retry-After`, honoured within the deadline.
//!
//! The requests are the account API's ([`Account::request`]: the account
//! token's header from the request primitive, the retry engine's policy,
//! 429 and 5xx retried); this file says what a team-admin answer means.
//!
//! The lists carry every token's *value*: each is reduced to a [`Digest`]
//! while the answer is parsed, inside a body that is zeroed when dropped.

use std::time::Duration;

use anyhow::Result;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::ErrorBody;
use super::account::{
    Account, ApiTokenList, Deleted, Digest, Idempotent, ListedToken, digest_of, lenient_id,
    lenient_string, lenient_text,
};
use crate::error::Failure;

/// Tokens asked for per page. The spec names no largest `per_page`, so
/// the bound is ours: an entry is ~350 bytes, up to ~2 KiB with the
/// longest names, and a page must stay within the 1 MiB every answer is
/// capped at ([`crate::http::MAX_BODY`]). 5,000 tokens are 10 pages; a
/// server that serves fewer per page is followed at its own size.
pub const PAGE_SIZE: u64 = 500;

/// Pages asked for at once once the first answer told how many there are.
const PAGES_IN_FLIGHT: usize = 4;

/// The most pages followed: a server that counts (or serves) more is not
/// paged through one request after another without end.
const MAX_PAGES: u64 = 2_000;

/// `GET /api2/account/info/`: who the account is.
#[derive(Deserialize, Debug, PartialEq)]
pub struct AccountInfo {
    /// The team; -1 (or nothing) outside one.
    #[serde(default, deserialize_with = "lenient_id")]
    pub org_id: Option<i64>,
    /// The team's admin: 1/0 as the spec shows it (`true`/`false` read too).
    #[serde(default, deserialize_with = "lenient_flag")]
    pub is_org_staff: bool,
    #[serde(default, deserialize_with = "lenient_string")]
    pub email: Option<String>,
}

fn lenient_flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_i64().is_some_and(|n| n != 0),
        serde_json::Value::String(s) => matches!(s.trim(), "1" | "true" | "True"),
        _ => false,
    })
}

/// One API token of the team, its value reduced to a [`Digest`].
#[derive(Deserialize, Debug)]
pub struct TeamToken {
    pub app_name: String,
    #[serde(rename = "api_token", deserialize_with = "digest_of")]
    pub digest: Digest,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_by: Option<String>,
    /// The creator's display name.
    #[serde(default, deserialize_with = "lenient_string")]
    pub creator: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_access: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub permission: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub dtable_uuid: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub dtable_name: String,
}

/// `GET …/admin/api-tokens/`: one page.
#[derive(Deserialize, Debug)]
struct Page {
    api_tokens: Vec<TeamToken>,
    #[serde(default)]
    total_count: Option<u64>,
}

/// Every API token of the team.
#[derive(Debug)]
pub struct TeamTokens {
    pub tokens: Vec<TeamToken>,
    /// Requests it took.
    pub pages: u64,
}

/// A base's UUID as the team-admin paths take it: hyphenated, lower case
/// (either form SeaTable writes is accepted).
pub fn hyphenated(uuid: &str) -> Option<String> {
    uuid::Uuid::try_parse(uuid.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// The team-admin API, as the admin of team `org_id`.
pub struct TeamAdmin<'a> {
    account: Account<'a>,
    pub org_id: i64,
}

impl<'a> TeamAdmin<'a> {
    /// Asks SeaTable who the account is. A team admin gets the API; any
    /// other account the error that names what it lacks (exit 4).
    pub async fn connect(
        client: &'a reqwest::Client,
        server_url: &'a str,
        token: &SecretString,
        deadline: Instant,
    ) -> Result<TeamAdmin<'a>> {
        let mut team = TeamAdmin {
            account: Account::new(client, server_url, token)?,
            org_id: 0,
        };
        let what = "asking SeaTable who the account is (api2/account/info)";
        let url = team.account.url(&["api2", "account", "info"])?;
        let body = team.get(url, what, deadline).await?;
        let info: AccountInfo = team.account.parse(&body, what)?;
        team.org_id = admin_of(&info, server_url)?;
        debug!(org_id = team.org_id, "the account is a team admin");
        Ok(team)
    }

    fn admin_url(&self, rest: &[&str]) -> Result<url::Url> {
        let org = self.org_id.to_string();
        let mut segments = vec!["api", "v2.1", "org", &org, "admin"];
        segments.extend(rest);
        self.account.url(&segments)
    }

    async fn get(
        &self,
        url: url::Url,
        what: &str,
        deadline: Instant,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let (status, body) = self
            .account
            .request(Method::GET, url, None, what, Idempotent::Yes, deadline)
            .await?;
        if status.is_success() {
            return Ok(body);
        }
        Err(self.refused(status, &body, what))
    }

    /// What a refusal means here.
    fn refused(&self, status: StatusCode, body: &[u8], what: &str) -> anyhow::Error {
        let msg = ErrorBody::parse(body)
            .message()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        let server = self.account.server_url();
        let code = status.as_u16();
        let failure = match code {
            401 => Failure::seatable(format!(
                "SeaTable at {server} refused the account token while {what} ({code}{msg}): check the account token (account_secret) or the login (account)"
            )),
            403 => Failure::seatable(format!(
                "SeaTable at {server} refused the team-admin API while {what} ({code}{msg}): the account is not an admin of team {}; use a team admin's account (--account-secret or --account)",
                self.org_id
            )),
            404 => Failure::seatable(format!(
                "SeaTable at {server} found nothing while {what} (404{msg})"
            )),
            _ => Failure::internal(format!(
                "SeaTable at {server} answered {code}{msg} while {what}: check --server-url"
            )),
        };
        failure.with_status(code).into()
    }

    async fn page(&self, page: u64, per_page: u64, timeout: Duration) -> Result<Page> {
        let what = format!("listing the team's API tokens (page {page})");
        let mut url = self.admin_url(&["api-tokens"])?;
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &per_page.to_string());
        let body = self.get(url, &what, Instant::now() + timeout).await?;
        self.account.parse(&body, &what)
    }

    /// Every API token of the team, `PAGE_SIZE` a page: the first page
    /// says how many there are (and, when the server clips `per_page`, its
    /// own page size); the rest are asked for [`PAGES_IN_FLIGHT`] at a time.
    /// Each request has `timeout` for itself and its retries.
    pub async fn api_tokens(&self, timeout: Duration) -> Result<TeamTokens> {
        let first = self.page(1, PAGE_SIZE, timeout).await?;
        let size = first.api_tokens.len() as u64;
        let mut total = first.total_count;
        let mut tokens = first.api_tokens;
        let mut pages = 1;
        let done = size == 0 || total.is_some_and(|t| size >= t);
        if !done {
            if size < PAGE_SIZE {
                info!(
                    per_page = size,
                    "SeaTable serves fewer API tokens a page than asked for; following its page size"
                );
            }
            let too_many = || {
                Failure::unavailable(format!(
                    "SeaTable at {} would need more than {MAX_PAGES} pages of {size} for the API tokens of team {}: not paged through",
                    self.account.server_url(), self.org_id
                ))
                .permanent()
            };
            match total {
                Some(count) => {
                    let last = count.div_ceil(size);
                    if last > MAX_PAGES {
                        return Err(too_many().into());
                    }
                    let rest: Vec<Page> = futures_util::stream::iter(2..=last)
                        .map(|n| self.page(n, size, timeout))
                        .buffer_unordered(PAGES_IN_FLIGHT)
                        .try_collect()
                        .await?;
                    pages += rest.len() as u64;
                    for page in rest {
                        total = total.max(page.total_count);
                        tokens.extend(page.api_tokens);
                    }
                }
                // No count: page on until a page is short.
                None => loop {
                    pages += 1;
                    if pages > MAX_PAGES {
                        return Err(too_many().into());
                    }
                    let page = self.page(pages, size, timeout).await?;
                    let short = (page.api_tokens.len() as u64) < size;
                    tokens.extend(page.api_tokens);
                    if short {
                        break;
                    }
                },
            }
        }
        let listed = tokens.len();
        dedupe(&mut tokens);
        if let Some(count) = total
            && (tokens.len() as u64) < count
        {
            warn!(
                "SeaTable counts {count} API tokens in team {} but {} were listed ({listed} with repeats): tokens were made or deleted while the pages were read; run the audit again",
                self.org_id,
                tokens.len()
            );
        }
        debug!(tokens = tokens.len(), pages, "listed the team's API tokens");
        Ok(TeamTokens { tokens, pages })
    }

    /// One base's API tokens (values reduced to digests).
    pub async fn base_tokens(
        &self,
        base_uuid: &str,
        deadline: Instant,
    ) -> Result<Vec<ListedToken>> {
        let what = format!("listing the API tokens of base {base_uuid}");
        let url = self.admin_url(&["dtables", base_uuid, "api-tokens"])?;
        let body = self.get(url, &what, deadline).await.map_err(|e| {
            if crate::error::status_of(&e) == Some(404) {
                Failure::seatable(format!(
                    "team {} has no base {base_uuid}: check --base (the UUID `token audit -o json` shows as base_uuid)",
                    self.org_id
                ))
                .into()
            } else {
                e
            }
        })?;
        Ok(self.account.parse::<ApiTokenList>(&body, &what)?.api_tokens)
    }

    /// `DELETE …/dtables/{base_uuid}/api-tokens/{app_name}/`, one try: a
    /// transient failure is returned for the caller to decide, after
    /// reading Vault again, whether to try once more.
    pub async fn delete_token(
        &self,
        base_uuid: &str,
        app_name: &str,
        deadline: Instant,
    ) -> Result<Deleted> {
        let what = format!("deleting API token '{app_name}' of base {base_uuid}");
        let url = self.admin_url(&["dtables", base_uuid, "api-tokens", app_name])?;
        let (status, body) = self
            .account
            .request(
                Method::DELETE,
                url,
                None,
                &what,
                Idempotent::CallerRetries,
                deadline,
            )
            .await?;
        if status.is_success() {
            return Ok(Deleted::Deleted);
        }
        if status == StatusCode::NOT_FOUND
            && ErrorBody::parse(&body)
                .message()
                .is_some_and(|m| m.contains("api token not found"))
        {
            return Ok(Deleted::Missing);
        }
        Err(self.refused(status, &body, &what))
    }
}

/// The team an account is the admin of, or the error naming what it lacks.
fn admin_of(info: &AccountInfo, server_url: &str) -> Result<i64> {
    let who = info
        .email
        .as_deref()
        .map(|e| {
            format!(
                " {}",
                e.chars().filter(|c| !c.is_control()).collect::<String>()
            )
        })
        .unwrap_or_default();
    const NEEDS: &str = "the team-admin API lists and deletes the API tokens of every base of a team, and only the team's admin may use it; use a team admin's account (--account-secret or --account)";
    match info.org_id {
        Some(org) if org > 0 && info.is_org_staff => Ok(org),
        Some(org) if org > 0 => Err(Failure::seatable(format!(
            "the SeaTable account{who} at {server_url} is a member of team {org} but not its admin (is_org_staff 0): {NEEDS}"
        ))
        .into()),
        _ => Err(Failure::seatable(format!(
            "the SeaTable account{who} at {server_url} belongs to no team (org_id {}): {NEEDS}",
            info.org_id.unwrap_or(-1)
        ))
        .into()),
    }
}

/// Drops repeats (a token listed on two pages because others were made or
/// deleted between the requests): one per base and app name.
fn dedupe(tokens: &mut Vec<TeamToken>) {
    let mut seen = std::collections::HashSet::new();
    tokens.retain(|t| {
        let base = hyphenated(&t.dtable_uuid).unwrap_or_else(|| t.dtable_uuid.clone());
        seen.insert((base, t.app_name.clone()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_page_as_the_spec_shows_it_keeping_only_digests() {
        // listApiTokensOfAllBases' example, plus a field SeaTable may add.
        let body = br##"{"api_tokens":[
            {"app_name":"n8n","api_token":"c1a7a416280ab3f9b0b632edbb58a69a771783f0","generated_by":"e38487b4357e40c8b1359223ba87a1af@auth.local","creator":"user1","avatar_url":"https://cloud.seatable.io/media/avatars/default.png","generated_at":"2025-11-28T14:18:39+01:00","last_access":"2025-11-28T14:18:39+01:00","permission":"rw","dtable_uuid":"3c899a81-6a0c-4111-bb19-288ebf8442fd","dtable_name":"CRM","dtable_icon":"icon-user-interview","dtable_color":"#E91E63","future":1},
            {"app_name":"API","api_token":"89913c6509062bbd24efe42a509cf9c5bb843018","generated_by":"e38487b4357e40c8b1359223ba87a1af@auth.local","creator":"user1","generated_at":"2025-11-28T14:18:54+01:00","last_access":null,"permission":"r","dtable_uuid":"e97bb668-da36-484c-8ac9-8aa9e0564f4c","dtable_name":"Finances"}
        ],"total_count":2}"##;
        let page: Page = serde_json::from_slice(body).unwrap();
        assert_eq!(page.total_count, Some(2));
        let [n8n, api] = &page.api_tokens[..] else {
            panic!("two tokens")
        };
        assert_eq!(n8n.app_name, "n8n");
        assert_eq!(
            n8n.digest,
            Digest::of(&SecretString::from(
                "c1a7a416280ab3f9b0b632edbb58a69a771783f0"
            ))
        );
        assert_eq!(n8n.creator.as_deref(), Some("user1"));
        assert_eq!(
            n8n.generated_by.as_deref(),
            Some("e38487b4357e40c8b1359223ba87a1af@auth.local")
        );
        assert_eq!(
            n8n.generated_at.as_deref(),
            Some("2025-11-28T14:18:39+01:00")
        );
        assert_eq!(n8n.permission, "rw");
        assert_eq!(n8n.dtable_uuid, "3c899a81-6a0c-4111-bb19-288ebf8442fd");
        assert_eq!(n8n.dtable_name, "CRM");
        assert_eq!(api.last_access, None);
        assert_eq!(api.permission, "r");
        let shown = format!("{:?}", page.api_tokens);
        assert!(!shown.contains("c1a7a4"), "{shown}");
        assert!(!shown.contains("89913c"), "{shown}");
        // A page without a value is not a list of API tokens.
        assert!(serde_json::from_slice::<Page>(br#"{"api_tokens":[{"app_name":"x"}]}"#).is_err());
    }

    #[test]
    fn account_info_reads_the_team_and_the_admin_flag() {
        // getAccountInfo's fields, trimmed: integers, as the spec has them.
        let info: AccountInfo = serde_json::from_slice(
            br#"{"org_id":4,"is_org_staff":1,"email":"admin@team.local","name":"admin","total":100,"space_usage":"0%"}"#,
        )
        .unwrap();
        assert_eq!(
            info,
            AccountInfo {
                org_id: Some(4),
                is_org_staff: true,
                email: Some("admin@team.local".into())
            }
        );
        assert_eq!(admin_of(&info, "https://s").unwrap(), 4);
        for (body, says) in [
            (
                &br#"{"org_id":4,"is_org_staff":0,"email":"alice@team.local"}"#[..],
                "the SeaTable account alice@team.local at https://s is a member of team 4 but not its admin (is_org_staff 0): the team-admin API",
            ),
            (
                br#"{"org_id":-1,"is_org_staff":0,"email":"bob@x.local"}"#,
                "the SeaTable account bob@x.local at https://s belongs to no team (org_id -1): the team-admin API",
            ),
            (
                br#"{"is_org_staff":true}"#,
                "the SeaTable account at https://s belongs to no team (org_id -1)",
            ),
        ] {
            let info: AccountInfo = serde_json::from_slice(body).unwrap();
            let err = admin_of(&info, "https://s").unwrap_err();
            assert!(crate::error::one_line(&err).starts_with(says), "{err}");
            assert!(crate::error::one_line(&err).contains("use a team admin's account"));
            assert_eq!(crate::error::kind_of(&err).exit_code(), 4);
        }
        let flags: Vec<bool> = [r#"true"#, r#""1""#, "1", "0", "false", "null"]
            .iter()
            .map(|v| {
                serde_json::from_str::<AccountInfo>(&format!(r#"{{"is_org_staff":{v}}}"#))
                    .unwrap()
                    .is_org_staff
            })
            .collect();
        assert_eq!(flags, [true, true, true, false, false, false]);
    }

    #[test]
    fn uuids_are_hyphenated_for_the_paths() {
        assert_eq!(
            hyphenated("3C899A816A0C4111BB19288EBF8442FD").as_deref(),
            Some("3c899a81-6a0c-4111-bb19-288ebf8442fd")
        );
        assert_eq!(
            hyphenated(" 3c899a81-6a0c-4111-bb19-288ebf8442fd ").as_deref(),
            Some("3c899a81-6a0c-4111-bb19-288ebf8442fd")
        );
        assert_eq!(hyphenated("crm"), None);
    }

    #[test]
    fn admin_urls_encode_names() {
        crate::http::install_provider();
        let client = reqwest::Client::new();
        let team = TeamAdmin {
            account: Account::new(&client, "https://s.example/seatable", &"t".into()).unwrap(),
            org_id: 4,
        };
        assert_eq!(
            team.admin_url(&[
                "dtables",
                "3c899a81-6a0c-4111-bb19-288ebf8442fd",
                "api-tokens",
                "app #1/x"
            ])
            .unwrap()
            .as_str(),
            "https://s.example/seatable/api/v2.1/org/4/admin/dtables/3c899a81-6a0c-4111-bb19-288ebf8442fd/api-tokens/app%20%231%2Fx/"
        );
    }

    #[test]
    fn repeats_across_pages_are_dropped() {
        let token = |uuid: &str, app: &str| TeamToken {
            app_name: app.into(),
            digest: Digest::of_str(app),
            generated_by: None,
            creator: None,
            generated_at: None,
            last_access: None,
            permission: "r".into(),
            dtable_uuid: uuid.into(),
            dtable_name: "B".into(),
        };
        let a = "3c899a81-6a0c-4111-bb19-288ebf8442fd";
        let mut tokens = vec![
            token(a, "x"),
            token(a, "y"),
            token(&a.replace('-', ""), "x"),
            token("e97bb668-da36-484c-8ac9-8aa9e0564f4c", "x"),
        ];
        dedupe(&mut tokens);
        let names: Vec<_> = tokens
            .iter()
            .map(|t| (t.dtable_uuid.len(), t.app_name.as_str()))
            .collect();
        assert_eq!(names, [(36, "x"), (36, "y"), (36, "x")]);
    }
}
