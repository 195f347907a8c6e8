//! SeaTable's account API (SPEC §12): a user's login, the account's
//! workspaces, and a base's API tokens.
//!
//! * `POST /api2/auth-token/` (form `username`, `password`; `X-SEAFILE-OTP`
//!   when two-factor is on) → `{"token": …}`. Seahub, which SeaTable's web
//!   API is built on, answers a wrong password with 400 and
//!   `non_field_errors`, and a missing or wrong two-factor code with 400 and
//!   the response header `X-Seafile-OTP: required`.
//! * `GET /api/v2.1/workspaces/` → `workspace_list[].id` and
//!   `.table_list[].name`/`.uuid` (the "starred" and "shared"
//!   pseudo-workspaces have an empty-string `id`).
//! * `GET|POST /api/v2.1/workspace/{id}/dtable/{name}/api-tokens/` and
//!   `PUT|DELETE …/api-tokens/{app_name}/`, with the account token as
//!   `Authorization: Token …`.
//!
//! The wire types are plain serde types, parsed leniently: unknown fields
//! are ignored and ids that some proxies send as strings are accepted. The
//! list endpoint returns every token's *value*; a listed value is hashed
//! while it is parsed and dropped — all the helper needs to know is whether
//! Vault holds the same token.

use anyhow::Result;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;
use tracing::{debug, warn};
use zeroize::Zeroizing;

use crate::error::{Failure, root_cause};
use crate::retry::{Backoff, server_hint};

/// The SHA-256 of an API token: enough to tell whether two tokens are the
/// same, useless for opening a base.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(token: &SecretString) -> Digest {
        Self::of_str(token.expose_secret())
    }

    pub(crate) fn of_str(token: &str) -> Digest {
        let d = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Digest(out)
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Digest(…)")
    }
}

/// A base as the API-token endpoints name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseRef {
    pub workspace_id: i64,
    #[serde(rename = "dtable_name")]
    pub name: String,
}

impl std::fmt::Display for BaseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' (workspace {})", self.name, self.workspace_id)
    }
}

/// `POST /api2/auth-token/` → 200.
#[derive(Deserialize)]
pub struct AuthTokenResponse {
    pub token: SecretString,
}

/// `POST /api2/auth-token/` → 400.
#[derive(Deserialize, Default)]
struct LoginError {
    #[serde(default)]
    non_field_errors: Vec<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// `GET /api/v2.1/workspaces/`.
#[derive(Deserialize, Debug, PartialEq)]
pub struct WorkspaceList {
    #[serde(default)]
    pub workspace_list: Vec<Workspace>,
}

#[derive(Deserialize, Debug, PartialEq)]
pub struct Workspace {
    /// `None` for the "starred" and "shared" pseudo-workspaces (`""`).
    #[serde(default, deserialize_with = "lenient_id")]
    pub id: Option<i64>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub name: String,
    #[serde(default, rename = "type", deserialize_with = "lenient_text")]
    pub kind: String,
    #[serde(default)]
    pub table_list: Vec<Table>,
}

/// A base in a workspace's `table_list`.
#[derive(Deserialize, Debug, PartialEq)]
pub struct Table {
    pub name: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub uuid: String,
    /// The workspace the base lives in (a starred base's own).
    #[serde(default, deserialize_with = "lenient_id")]
    pub workspace_id: Option<i64>,
}

/// `GET …/api-tokens/`.
#[derive(Deserialize)]
pub struct ApiTokenList {
    pub api_tokens: Vec<ListedToken>,
}

/// One token of a list: its value reduced to a [`Digest`].
#[derive(Deserialize, Debug)]
pub struct ListedToken {
    pub app_name: String,
    #[serde(rename = "api_token", deserialize_with = "digest_of")]
    pub digest: Digest,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_by: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub last_access: Option<String>,
    #[serde(default, deserialize_with = "lenient_text")]
    pub permission: String,
}

/// `POST …/api-tokens/` → 201, and `PUT …/api-tokens/{app_name}/` → 200.
#[derive(Deserialize)]
pub struct NewToken {
    pub app_name: String,
    pub api_token: SecretString,
    #[serde(default, deserialize_with = "lenient_text")]
    pub permission: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub generated_at: Option<String>,
}

/// What a create answered.
pub enum Created {
    Token(NewToken),
    /// The base already has a token of that app name.
    Exists,
}

/// What a delete answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    /// There was no such token (any more).
    Missing,
}

/// An `application/x-www-form-urlencoded` body, zeroed when dropped (a
/// login's holds the password).
pub fn form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    Zeroizing::new(form.finish())
}

pub(crate) fn digest_of<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
    let value = Zeroizing::new(String::deserialize(d)?);
    Ok(Digest::of_str(&value))
}

pub(crate) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        _ => None,
    })
}

pub(crate) fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_string(d)?.unwrap_or_default())
}

pub(crate) fn lenient_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// SeaTable's `{"error_msg": …}` (or Django REST framework's `detail`),
/// short and printable.
pub fn error_msg(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        error_msg: Option<String>,
        #[serde(default)]
        detail: Option<String>,
    }
    let body: ErrorBody = serde_json::from_slice(body).ok()?;
    let msg = body.error_msg.or(body.detail)?;
    let msg: String = msg.chars().filter(|c| !c.is_control()).take(200).collect();
    (!msg.is_empty()).then_some(msg)
}

/// Whether `name` can be one path segment of SeaTable's URLs: not empty,
/// not `.` or `..` (which URLs resolve away: `…/api-tokens/..` would name
/// the collection — or another endpoint), no `/`. Everything else is
/// percent-encoded as a segment.
pub fn check_segment(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(format!(
            "{what} is named '{}', which cannot be a segment of SeaTable's URLs: names may not be empty, '.' or '..', nor hold '/'",
            crate::shown::text(name)
        ));
    }
    Ok(())
}

/// A time as SeaTable writes it (RFC 3339 with an offset: `+00:00`, or the
/// server's zone) as Unix seconds.
pub fn unix_seconds(text: &str) -> Option<u64> {
    let at =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(at.unix_timestamp()).ok()
}

/// How a login went.
pub enum LoginAnswer {
    Token(SecretString),
    /// The server wants a two-factor code (`invalid`: the one sent was wrong).
    OtpRequired {
        invalid: bool,
    },
    /// Refused, with the server's reason.
    Refused(String),
}

/// Whether a request may be sent again when its answer was lost: a create
/// that may have landed must not be repeated.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Idempotent {
    Yes,
    No,
    /// Safe to repeat, but the caller checks something before each try (a
    /// delete re-reads Vault first): a failure that may be retried is
    /// returned, transient, instead of being retried here.
    CallerRetries,
}

/// One request with the retry policy of the exchange: 429 and (for
/// idempotent requests) 5xx, resets and timeouts are retried with backoff
/// until `deadline`. Returns the status and the (capped) body of the
/// final answer.
pub(crate) async fn send(
    request: impl Fn() -> reqwest::RequestBuilder,
    server_url: &str,
    what: &str,
    idempotent: Idempotent,
    deadline: Instant,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>)> {
    let mut backoff = Backoff::default();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Failure::unavailable(format!(
                "SeaTable at {server_url} did not answer in time while {what}: try again later or raise --timeout"
            ))
            .into());
        }
        // What went wrong, the server's requested wait, and whether the
        // request surely was not acted on (not sent, or rate limited).
        let (failure, hint, not_acted_on) = match request().timeout(remaining).send().await {
            Err(e) if crate::http::is_certificate_problem(&e) => {
                return Err(Failure::unavailable(format!(
                    "TLS to SeaTable at {server_url} failed: {}; for a private CA set SEATABLE_CA_CERT or ca_cert",
                    root_cause(&e)
                ))
                .permanent()
                .into());
            }
            Err(e) if e.is_connect() => (
                format!(
                    "SeaTable at {server_url} unreachable while {what}: {}",
                    root_cause(&e)
                ),
                None,
                true,
            ),
            Err(e) => (
                format!(
                    "SeaTable at {server_url} failed while {what}: {}",
                    if e.is_timeout() {
                        "timed out".to_string()
                    } else {
                        root_cause(&e)
                    }
                ),
                None,
                false,
            ),
            Ok(response) => {
                let status = response.status();
                let hint = server_hint(response.headers(), crate::time::now());
                match crate::http::read_capped(response).await {
                    Ok(_) if status == StatusCode::TOO_MANY_REQUESTS => (
                        format!(
                            "SeaTable at {server_url} is rate limiting this client (429) while {what}"
                        ),
                        hint,
                        true,
                    ),
                    Ok(body) if !status.is_server_error() => return Ok((status, body)),
                    Ok(_) => (
                        format!(
                            "SeaTable at {server_url} failed ({}) while {what}",
                            status.as_u16()
                        ),
                        hint.filter(|_| status == StatusCode::SERVICE_UNAVAILABLE),
                        false,
                    ),
                    Err(_) => (
                        format!("SeaTable at {server_url} dropped the connection while {what}"),
                        None,
                        false,
                    ),
                }
            }
        };
        if idempotent == Idempotent::No && !not_acted_on {
            return Err(Failure::unavailable(format!(
                "{failure}; it may or may not have been done"
            ))
            .permanent()
            .into());
        }
        if idempotent == Idempotent::CallerRetries {
            return Err(Failure::unavailable(failure).into());
        }
        let delay = hint.unwrap_or_else(|| backoff.next_delay());
        if delay >= deadline.saturating_duration_since(Instant::now()) {
            return Err(Failure::unavailable(format!("{failure}: try again later")).into());
        }
        warn!("{failure}; retrying in {} ms", delay.as_millis());
        tokio::time::sleep(delay).await;
    }
}

/// Logs in as a user: `POST /api2/auth-token/`, with the two-factor code
/// when one is given. The password goes in the body only, never in a URL.
pub async fn login(
    client: &reqwest::Client,
    server_url: &str,
    username: &str,
    password: &SecretString,
    otp: Option<&SecretString>,
    deadline: Instant,
) -> Result<LoginAnswer> {
    let body = form(&[
        ("username", username),
        ("password", password.expose_secret()),
    ]);
    let otp_code = otp;
    let otp = match otp {
        Some(code) => {
            let mut value = HeaderValue::from_str(code.expose_secret().trim()).map_err(|_| {
                Failure::usage("the two-factor code (SEATABLE_CRED_OTP) holds characters that cannot be sent in an HTTP header")
            })?;
            value.set_sensitive(true);
            Some(value)
        }
        None => None,
    };
    let url = format!("{server_url}/api2/auth-token/");
    let what = format!("logging in as {username}");
    let (status, response) = send(
        || {
            let mut request = client
                .post(&url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("accept", "application/json")
                .body(body.as_bytes().to_vec());
            if let Some(otp) = &otp {
                request = request.header("X-SEAFILE-OTP", otp.clone());
            }
            request
        },
        server_url,
        &what,
        // A login creates nothing that a second one would duplicate.
        Idempotent::Yes,
        deadline,
    )
    .await?;
    debug!(status = status.as_u16(), "SeaTable answered the login");
    if status.is_success() {
        let parsed: AuthTokenResponse = serde_json::from_slice(&response).map_err(|_| {
            Failure::unavailable(format!(
                "SeaTable at {server_url} answered the login with something that is not an account token: check --server-url"
            ))
            .permanent()
        })?;
        return Ok(LoginAnswer::Token(parsed.token));
    }
    let reason: LoginError = serde_json::from_slice(&response).unwrap_or_default();
    let said = reason
        .non_field_errors
        .first()
        .cloned()
        .or(reason.detail)
        .unwrap_or_else(|| format!("status {}", status.as_u16()));
    if status == StatusCode::BAD_REQUEST && said.to_ascii_lowercase().contains("two factor") {
        return Ok(LoginAnswer::OtpRequired {
            invalid: said.contains("invalid"),
        });
    }
    // The server's words, unless they quote what was sent — judged on the
    // whole text, before it is cut short.
    let secrets = [Some(password), otp_code].into_iter().flatten();
    let said = if secrets
        .into_iter()
        .any(|s| quotes(&said, s.expose_secret()))
    {
        format!("status {}", status.as_u16())
    } else {
        said.chars().take(200).collect()
    };
    Ok(LoginAnswer::Refused(said))
}

/// Pieces of a secret this long are as good as the secret to whoever
/// guesses the rest; shorter secrets (a two-factor code) are looked for
/// whole.
const QUOTED: usize = 6;

/// Whether a server's `text` quotes `secret`: the whole of it, or any
/// [`QUOTED`] characters of it in a row, in any case — a server may cut
/// or upper-case what it repeats. An empty secret is quoted by anything.
fn quotes(text: &str, secret: &str) -> bool {
    let secret: Vec<char> = secret.trim().to_lowercase().chars().collect();
    let text = text.to_lowercase();
    if secret.is_empty() {
        return true;
    }
    secret
        .windows(QUOTED.min(secret.len()))
        .any(|piece| text.contains(&piece.iter().collect::<String>()))
}

/// `Authorization: Token <account token>`, marked sensitive (never logged).
pub(crate) fn authorization(token: &SecretString) -> Result<HeaderValue> {
    let value = Zeroizing::new(format!("Token {}", token.expose_secret().trim()));
    let mut auth = HeaderValue::from_str(&value).map_err(|_| {
        Failure::vault("the account token holds characters that cannot be sent in an HTTP header: store it exactly as SeaTable gave it")
    })?;
    auth.set_sensitive(true);
    Ok(auth)
}

/// The account API, authenticated by an account token.
pub struct Account<'a> {
    client: &'a reqwest::Client,
    server_url: &'a str,
    auth: HeaderValue,
}

impl<'a> Account<'a> {
    pub fn new(
        client: &'a reqwest::Client,
        server_url: &'a str,
        token: &SecretString,
    ) -> Result<Account<'a>> {
        Ok(Account {
            client,
            server_url,
            auth: authorization(token)?,
        })
    }

    fn url(&self, segments: &[&str]) -> Result<url::Url> {
        let mut url = url::Url::parse(self.server_url)
            .map_err(|e| Failure::usage(format!("server_url: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| Failure::usage("server_url cannot take a path"))?
            .pop_if_empty()
            .extend(segments)
            // The trailing slash SeaTable's routes end in.
            .push("");
        Ok(url)
    }

    /// `…/workspace/{id}/dtable/{base}/api-tokens/[{app}/]`, the names
    /// percent-encoded as path segments. A name a URL cannot carry as one
    /// segment is refused, whoever chose it (SeaTable's web interface takes
    /// `..` as an app or base name).
    fn tokens_url(&self, base: &BaseRef, app: Option<&str>) -> Result<url::Url> {
        check_segment("the base", &base.name).map_err(|why| {
            Failure::usage(format!(
                "{why}: rename the base in SeaTable to manage its API tokens here"
            ))
        })?;
        if let Some(app) = app {
            check_segment("an API token", app).map_err(Failure::usage)?;
        }
        let workspace = base.workspace_id.to_string();
        let mut segments = vec![
            "api",
            "v2.1",
            "workspace",
            &workspace,
            "dtable",
            &base.name,
            "api-tokens",
        ];
        segments.extend(app);
        self.url(&segments)
    }

    async fn call(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&str>,
        what: &str,
        idempotent: Idempotent,
        deadline: Instant,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>)> {
        debug!(%method, url = %url, "{what}");
        let (status, body) = send(
            || {
                let mut request = self
                    .client
                    .request(method.clone(), url.clone())
                    .header(AUTHORIZATION, self.auth.clone())
                    .header("accept", "application/json");
                if let Some(body) = body {
                    request = request
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body.to_owned());
                }
                request
            },
            self.server_url,
            what,
            idempotent,
            deadline,
        )
        .await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Failure::seatable(format!(
                "SeaTable at {} refused the account while {what} ({}{}): check the account token (account_secret) or the login (account), and that the account may manage the base's API tokens",
                self.server_url,
                status.as_u16(),
                error_msg(&body).map(|m| format!(" {m}")).unwrap_or_default()
            ))
            .with_status(status.as_u16())
            .into());
        }
        Ok((status, body))
    }

    fn unexpected(&self, status: StatusCode, body: &[u8], what: &str) -> anyhow::Error {
        let msg = error_msg(body).map(|m| format!(" {m}")).unwrap_or_default();
        let failure = match status.as_u16() {
            404 => Failure::seatable(format!(
                "SeaTable at {} found nothing while {what} (404{msg}): check the base's name and workspace",
                self.server_url
            )),
            400 => Failure::usage(format!(
                "SeaTable at {} refused {what} (400{msg})",
                self.server_url
            )),
            code => Failure::internal(format!(
                "SeaTable at {} answered {code}{msg} while {what}: check --server-url",
                self.server_url
            )),
        };
        failure.with_status(status.as_u16()).into()
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, body: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(body).map_err(|_| {
            Failure::unavailable(format!(
                "SeaTable at {} answered with something unexpected while {what} (a maintenance page?): try again later",
                self.server_url
            ))
            .permanent()
            .into()
        })
    }

    /// `GET /api/v2.1/workspaces/`.
    pub async fn workspaces(&self, deadline: Instant) -> Result<WorkspaceList> {
        let what = "listing the account's workspaces";
        let url = self.url(&["api", "v2.1", "workspaces"])?;
        let (status, body) = self
            .call(Method::GET, url, None, what, Idempotent::Yes, deadline)
            .await?;
        if !status.is_success() {
            return Err(self.unexpected(status, &body, what));
        }
        self.parse(&body, what)
    }

    /// `GET …/api-tokens/`: the base's tokens, values reduced to digests.
    pub async fn list_tokens(&self, base: &BaseRef, deadline: Instant) -> Result<Vec<ListedToken>> {
        let what = format!("listing the API tokens of base {base}");
        let url = self.tokens_url(base, None)?;
        let (status, body) = self
            .call(Method::GET, url, None, &what, Idempotent::Yes, deadline)
            .await?;
        if !status.is_success() {
            return Err(self.unexpected(status, &body, &what));
        }
        Ok(self.parse::<ApiTokenList>(&body, &what)?.api_tokens)
    }

    /// `POST …/api-tokens/`. Never repeated once sent: a lost answer is an
    /// error that says the token may exist.
    pub async fn create_token(
        &self,
        base: &BaseRef,
        app_name: &str,
        permission: &str,
        deadline: Instant,
    ) -> Result<Created> {
        let what = format!("creating API token '{app_name}' for base {base}");
        let url = self.tokens_url(base, None)?;
        let body = form(&[("app_name", app_name), ("permission", permission)]);
        let (status, body) = self
            .call(
                Method::POST,
                url,
                Some(&body),
                &what,
                Idempotent::No,
                deadline,
            )
            .await?;
        if status.is_success() {
            return Ok(Created::Token(self.parse(&body, &what)?));
        }
        if status == StatusCode::BAD_REQUEST
            && error_msg(&body).is_some_and(|m| m.contains("already exist"))
        {
            return Ok(Created::Exists);
        }
        Err(self.unexpected(status, &body, &what))
    }

    /// `PUT …/api-tokens/{app_name}/`: changes a token's permission.
    pub async fn update_token(
        &self,
        base: &BaseRef,
        app_name: &str,
        permission: &str,
        deadline: Instant,
    ) -> Result<NewToken> {
        let what = format!("changing the permission of API token '{app_name}' of base {base}");
        let url = self.tokens_url(base, Some(app_name))?;
        let body = form(&[("permission", permission)]);
        let (status, body) = self
            .call(
                Method::PUT,
                url,
                Some(&body),
                &what,
                Idempotent::Yes,
                deadline,
            )
            .await?;
        if !status.is_success() {
            return Err(self.unexpected(status, &body, &what));
        }
        self.parse(&body, &what)
    }

    /// `DELETE …/api-tokens/{app_name}/`. A token that is not there (any
    /// more) is [`Deleted::Missing`], not an error: deleting is what was wanted.
    /// Deletes the token — one try: a transient failure is returned for the
    /// caller to decide, after checking again, whether to try once more (a
    /// late retry could otherwise delete a token that has become the one
    /// Vault holds).
    pub async fn delete_token(
        &self,
        base: &BaseRef,
        app_name: &str,
        deadline: Instant,
    ) -> Result<Deleted> {
        let what = format!("deleting API token '{app_name}' of base {base}");
        let url = self.tokens_url(base, Some(app_name))?;
        let (status, body) = self
            .call(
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
            && error_msg(&body).is_some_and(|m| m.contains("api token not found"))
        {
            return Ok(Deleted::Missing);
        }
        Err(self.unexpected(status, &body, &what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_token_list_and_keeps_only_digests() {
        // As in SeaTable's API reference, plus a field it may add one day.
        let body = br#"{"api_tokens":[
            {"app_name":"Google","api_token":"d66f83fccd0299f0dfe70e1ca807f05921f2de5f","generated_by":"12345cfaf1154efba122f92359f4e580@auth.local","generated_at":"2019-09-19T02:41:53+00:00","last_access":"2019-09-19T03:56:13+00:00","permission":"rw","future":1},
            {"app_name":"Postman","api_token":"4351cacae2c504e6a8ce5a75e95ae769629a70a2","generated_by":"x@auth.local","generated_at":"2019-09-19T03:01:58+00:00","last_access":null,"permission":"r"}
        ]}"#;
        let list: ApiTokenList = serde_json::from_slice(body).unwrap();
        let [google, postman] = &list.api_tokens[..] else {
            panic!("two tokens")
        };
        assert_eq!(google.app_name, "Google");
        assert_eq!(
            google.digest,
            Digest::of(&SecretString::from(
                "d66f83fccd0299f0dfe70e1ca807f05921f2de5f"
            ))
        );
        assert_ne!(google.digest, postman.digest);
        assert_eq!(
            google.generated_by.as_deref(),
            Some("12345cfaf1154efba122f92359f4e580@auth.local")
        );
        assert_eq!(
            google.generated_at.as_deref(),
            Some("2019-09-19T02:41:53+00:00")
        );
        assert_eq!(
            google.last_access.as_deref(),
            Some("2019-09-19T03:56:13+00:00")
        );
        assert_eq!(google.permission, "rw");
        assert_eq!(postman.last_access, None);
        assert_eq!(postman.permission, "r");
        // Debug never shows a value, nor its digest.
        let shown = format!("{list:?}", list = list.api_tokens);
        assert!(!shown.contains("d66f83"), "{shown}");
    }

    #[test]
    fn parses_a_created_token() {
        let body = br#"{"app_name":"Google","api_token":"d66f83fccd0299f0dfe70e1ca807f05921f2de5f","generated_by":"a@auth.local","generated_at":"2019-09-19T02:41:53+00:00","last_access":"2019-09-19T03:56:13+00:00","permission":"rw"}"#;
        let t: NewToken = serde_json::from_slice(body).unwrap();
        assert_eq!(t.app_name, "Google");
        assert_eq!(
            t.api_token.expose_secret(),
            "d66f83fccd0299f0dfe70e1ca807f05921f2de5f"
        );
        assert_eq!(t.permission, "rw");
        assert_eq!(t.generated_at.as_deref(), Some("2019-09-19T02:41:53+00:00"));
        assert!(serde_json::from_slice::<NewToken>(br#"{"app_name":"x"}"#).is_err());
    }

    #[test]
    fn parses_workspaces_with_pseudo_workspaces_and_string_ids() {
        // Shaped as SeaTable's reference answers (detail=true), trimmed.
        let body = br##"{"workspace_list":[
            {"id":"","name":"starred","type":"starred","table_list":[{"id":3,"workspace_id":5,"uuid":"64155cad","name":"nice","starred":true}]},
            {"id":"","name":"shared","type":"shared","shared_table_list":[{"id":2,"workspace_id":2,"uuid":"3af8","name":"good"}]},
            {"id":1,"name":"personal","type":"personal","table_list":[{"id":1,"workspace_id":1,"uuid":"4662","name":"hello","color":"#FF8000"}]},
            {"id":"5","name":"my group","type":"group","group_id":22,"table_list":[{"id":3,"workspace_id":"5","uuid":"64155cad","name":"nice"}]}
        ]}"##;
        let list: WorkspaceList = serde_json::from_slice(body).unwrap();
        assert_eq!(
            list,
            WorkspaceList {
                workspace_list: vec![
                    Workspace {
                        id: None,
                        name: "starred".into(),
                        kind: "starred".into(),
                        table_list: vec![Table {
                            name: "nice".into(),
                            uuid: "64155cad".into(),
                            workspace_id: Some(5)
                        }],
                    },
                    Workspace {
                        id: None,
                        name: "shared".into(),
                        kind: "shared".into(),
                        table_list: vec![],
                    },
                    Workspace {
                        id: Some(1),
                        name: "personal".into(),
                        kind: "personal".into(),
                        table_list: vec![Table {
                            name: "hello".into(),
                            uuid: "4662".into(),
                            workspace_id: Some(1)
                        }],
                    },
                    Workspace {
                        id: Some(5),
                        name: "my group".into(),
                        kind: "group".into(),
                        table_list: vec![Table {
                            name: "nice".into(),
                            uuid: "64155cad".into(),
                            workspace_id: Some(5)
                        }],
                    },
                ]
            }
        );
    }

    #[test]
    fn login_answer_and_errors() {
        let ok: AuthTokenResponse =
            serde_json::from_slice(br#"{"token":"24fd3c026886e3121b2ca630805ed425c272cb96"}"#)
                .unwrap();
        assert_eq!(
            ok.token.expose_secret(),
            "24fd3c026886e3121b2ca630805ed425c272cb96"
        );
        let refused: LoginError = serde_json::from_slice(
            br#"{"non_field_errors":["Unable to login with provided credentials."]}"#,
        )
        .unwrap();
        assert_eq!(
            refused.non_field_errors,
            ["Unable to login with provided credentials."]
        );
        assert_eq!(
            error_msg(br#"{"error_msg":"api token already exist."}"#).as_deref(),
            Some("api token already exist.")
        );
        assert_eq!(
            error_msg(br#"{"detail":"Invalid token"}"#).as_deref(),
            Some("Invalid token")
        );
        assert_eq!(error_msg(b"<html>"), None);
    }

    #[test]
    fn a_refusal_quoting_a_secret_or_a_piece_of_it_is_caught() {
        let password = "correct-horse-battery";
        assert!(quotes("bad password correct-horse-battery", password));
        assert!(quotes("bad password CORRECT-HORSE", password));
        assert!(quotes("…xxxx correct", password));
        assert!(!quotes(
            "Unable to login with provided credentials.",
            password
        ));
        assert!(quotes("code 918273 refused", "918273"));
        assert!(!quotes("code 91827 refused", "918273"));
        assert!(quotes("anything", ""));
        assert!(quotes("a", " a "));
    }

    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(
            &*form(&[("app_name", "crm sync/ä&x"), ("permission", "rw")]),
            "app_name=crm+sync%2F%C3%A4%26x&permission=rw"
        );
        assert_eq!(
            &*form(&[("username", "a@b.c"), ("password", "p=w&d")]),
            "username=a%40b.c&password=p%3Dw%26d"
        );
    }

    #[test]
    fn token_urls_encode_names() {
        crate::http::install_provider();
        let client = reqwest::Client::new();
        let account = Account::new(
            &client,
            "https://s.example/seatable",
            &SecretString::from("t"),
        )
        .unwrap();
        let base = BaseRef {
            workspace_id: 7,
            name: "CRM % Sales ä?".into(),
        };
        assert_eq!(
            account.tokens_url(&base, None).unwrap().as_str(),
            "https://s.example/seatable/api/v2.1/workspace/7/dtable/CRM%20%25%20Sales%20%C3%A4%3F/api-tokens/"
        );
        assert_eq!(
            account.tokens_url(&base, Some("app #1")).unwrap().as_str(),
            "https://s.example/seatable/api/v2.1/workspace/7/dtable/CRM%20%25%20Sales%20%C3%A4%3F/api-tokens/app%20%231/"
        );
        assert_eq!(
            account
                .url(&["api", "v2.1", "workspaces"])
                .unwrap()
                .as_str(),
            "https://s.example/seatable/api/v2.1/workspaces/"
        );
        // Names a URL would resolve away are refused, for bases and apps.
        for name in ["", ".", "..", "a/b", "../x"] {
            let dotted = BaseRef {
                workspace_id: 7,
                name: name.into(),
            };
            assert!(account.tokens_url(&dotted, None).is_err(), "{name:?}");
            assert!(account.tokens_url(&base, Some(name)).is_err(), "{name:?}");
        }
        assert!(
            account
                .tokens_url(&base, Some("..."))
                .unwrap()
                .as_str()
                .ends_with("/api-tokens/.../")
        );
    }

    #[test]
    fn base_ref_serialises_as_the_list_output_names_it() {
        let base = BaseRef {
            workspace_id: 7,
            name: "CRM".into(),
        };
        assert_eq!(
            serde_json::to_string(&base).unwrap(),
            r#"{"workspace_id":7,"dtable_name":"CRM"}"#
        );
        assert_eq!(base.to_string(), "'CRM' (workspace 7)");
    }
}
