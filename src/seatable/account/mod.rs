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
//! The wire types are plain serde types ([`wire`]). The list endpoint
//! returns every token's *value*; a listed value is hashed while it is
//! parsed and dropped — all the helper needs to know is whether Vault holds
//! the same token.

mod wire;

use anyhow::Result;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tracing::debug;
use zeroize::Zeroizing;

use super::request::Sent;
use crate::error::{Failure, one_line, root_cause};
use crate::retry::{Policy, Stop, Verdict};
use wire::LoginError;

pub use wire::{
    ApiTokenList, AuthTokenResponse, BaseRef, Digest, ListedToken, NewToken, Table, Workspace,
    WorkspaceList, unix_seconds,
};
pub(super) use wire::{digest_of, lenient_id, lenient_string, lenient_text};

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

/// SeaTable's error text of an answer: `error_msg`, else `detail`
/// ([`super::ErrorBody`]).
fn error_msg(body: &[u8]) -> Option<String> {
    super::ErrorBody::parse(body).message()
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
pub(super) enum Idempotent {
    Yes,
    No,
    /// Safe to repeat, but the caller checks something before each try (a
    /// delete re-reads Vault first): a failure that may be retried is
    /// returned, transient, instead of being retried here.
    CallerRetries,
}

/// What one try of a request came to.
enum Tried {
    /// An answer to act on (neither 429 nor 5xx).
    Answer(StatusCode, Zeroizing<Vec<u8>>),
    /// Something went wrong: what, the server's requested wait, and whether
    /// the request surely was not acted on (not sent, or rate limited).
    Failed(String, Option<std::time::Duration>, bool),
    /// Not worth another try, whatever the request.
    Refused(anyhow::Error),
}

/// One request with the retry policy of the exchange: 429 and (for
/// idempotent requests) 5xx, resets and timeouts are retried with backoff
/// until `deadline`. Returns the status and the (capped) body of the
/// final answer.
async fn send(
    request: impl Fn() -> reqwest::RequestBuilder,
    server_url: &str,
    what: &str,
    idempotent: Idempotent,
    deadline: Instant,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>)> {
    let classify = |tried: Tried| match tried {
        Tried::Answer(status, body) => Verdict::Done((status, body)),
        Tried::Refused(e) => Verdict::Final(e),
        Tried::Failed(failure, _, not_acted_on)
            if idempotent == Idempotent::No && !not_acted_on =>
        {
            Verdict::Final(
                Failure::unavailable(format!("{failure}; it may or may not have been done"))
                    .permanent()
                    .into(),
            )
        }
        Tried::Failed(failure, _, _) if idempotent == Idempotent::CallerRetries => {
            Verdict::Final(Failure::unavailable(failure).into())
        }
        Tried::Failed(failure, hint, _) => {
            Verdict::Again(Failure::unavailable(failure).into(), hint)
        }
    };
    let sent = Policy::NETWORK
        .run(deadline, "", classify, async || {
            let sent = super::request::send_once(request(), server_url, what, deadline).await;
            tried(sent, server_url, what)
        })
        .await;
    match sent {
        Ok(answer) => Ok(answer),
        Err(Stop::Final(e)) => Err(e),
        Err(Stop::OutOfTime(failure)) => {
            Err(Failure::unavailable(format!("{}: try again later", one_line(&failure))).into())
        }
    }
}

/// What one request of the account API came to.
fn tried(sent: Sent, server_url: &str, what: &str) -> Tried {
    match sent {
        Sent::Refused(failure) => Tried::Refused(failure.into()),
        Sent::Unanswered(e) if e.is_connect() => Tried::Failed(
            format!(
                "SeaTable at {server_url} unreachable while {what}: {}",
                root_cause(&e)
            ),
            None,
            true,
        ),
        Sent::Unanswered(e) => Tried::Failed(
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
        Sent::Answered { status, hint, body } => match body {
            Ok(_) if status == StatusCode::TOO_MANY_REQUESTS => Tried::Failed(
                format!("SeaTable at {server_url} is rate limiting this client (429) while {what}"),
                hint,
                true,
            ),
            Ok(body) if !status.is_server_error() => Tried::Answer(status, body),
            Ok(_) => Tried::Failed(
                format!(
                    "SeaTable at {server_url} failed ({}) while {what}",
                    status.as_u16()
                ),
                hint.filter(|_| status == StatusCode::SERVICE_UNAVAILABLE),
                false,
            ),
            Err(_) => Tried::Failed(
                format!("SeaTable at {server_url} dropped the connection while {what}"),
                None,
                false,
            ),
        },
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
        let auth = super::request::authorization(token.expose_secret().trim()).ok_or_else(|| {
            Failure::vault("the account token holds characters that cannot be sent in an HTTP header: store it exactly as SeaTable gave it")
        })?;
        Ok(Account {
            client,
            server_url,
            auth,
        })
    }

    pub(super) fn server_url(&self) -> &'a str {
        self.server_url
    }

    /// `{server_url}/{segments…}/`, each segment encoded.
    pub(super) fn url(&self, segments: &[&str]) -> Result<url::Url> {
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

    /// One request with the account token ([`send`]): the status and the
    /// capped body of the answer, whatever it is — the caller says what a
    /// status means (the team-admin API in its own words, [`super::team`]).
    pub(super) async fn request(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&str>,
        what: &str,
        idempotent: Idempotent,
        deadline: Instant,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>)> {
        debug!(%method, url = %url, "{what}");
        send(
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
        .await
    }

    /// [`Account::request`], with a refused account token or a refused
    /// right an error in the account API's words.
    async fn call(
        &self,
        method: Method,
        url: url::Url,
        body: Option<&str>,
        what: &str,
        idempotent: Idempotent,
        deadline: Instant,
    ) -> Result<(StatusCode, Zeroizing<Vec<u8>>)> {
        let (status, body) = self
            .request(method, url, body, what, idempotent, deadline)
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

    /// The answer as `T`; anything else is SeaTable not answering as
    /// itself (a maintenance page?).
    pub(super) fn parse<T: serde::de::DeserializeOwned>(
        &self,
        body: &[u8],
        what: &str,
    ) -> Result<T> {
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
    fn error_text_reads_error_msg_or_detail() {
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
}
