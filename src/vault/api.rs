//! Every request to Vault goes through here. vaultrs' endpoint types build
//! the requests and parse the answers, as vaultrs' own functions do, but
//! the answer's body is read with a size cap: vaultrs' client reads whatever
//! it is sent, and a Vault (or anything at its address) that streams a
//! never-ending body would take the helper's memory with it.
//!
//! The functions mirror `vaultrs::api::{exec_with_result, exec_with_empty,
//! exec_with_no_result, auth}`; callers build the same endpoints vaultrs'
//! convenience functions build.

use rustify::endpoint::Endpoint;
use rustify::errors::ClientError as RestClientError;
use vaultrs::api::{AuthInfo, EndpointError, EndpointResult};
use vaultrs::client::{Client, VaultClient};
use vaultrs::error::ClientError;

/// The HTTP client of a [`VaultClient`], reading bodies with a cap.
struct Capped<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
}

impl<'a> Capped<'a> {
    fn of(client: &'a VaultClient) -> Capped<'a> {
        let http = client.http();
        Capped {
            http: &http.http,
            base: &http.base,
        }
    }
}

#[async_trait::async_trait]
impl rustify::client::Client for Capped<'_> {
    fn base(&self) -> &str {
        self.base
    }

    async fn send(
        &self,
        req: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, RestClientError> {
        let mut req = req;
        if let Some(index) = consistency::index_for(self.base) {
            let headers = req.headers_mut();
            if let Ok(value) = http::HeaderValue::from_str(&index) {
                headers.insert(consistency::INDEX, value);
                headers.insert(
                    consistency::INCONSISTENT,
                    http::HeaderValue::from_static("forward-active-node"),
                );
            }
        }
        let request = reqwest::Request::try_from(req)
            .map_err(|e| RestClientError::ReqwestBuildError { source: e })?;
        let (url, method) = (request.url().to_string(), request.method().to_string());
        let response =
            self.http
                .execute(request)
                .await
                .map_err(|e| RestClientError::RequestError {
                    source: e.into(),
                    url,
                    method,
                })?;
        if let Some(index) = response
            .headers()
            .get(consistency::INDEX)
            .and_then(|v| v.to_str().ok())
        {
            consistency::remember(self.base, index);
        }
        let mut answer = http::Response::builder().status(response.status().as_u16());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = crate::http::read_capped(response).await.map_err(|e| {
            RestClientError::ResponseError {
                source: anyhow::anyhow!(match e {
                    crate::http::BodyError::TooLarge => format!(
                        "the answer is larger than {} KiB",
                        crate::http::MAX_BODY / 1024
                    ),
                    crate::http::BodyError::Broken => "the connection broke".to_string(),
                }),
            }
        })?;
        answer
            .body(std::mem::take(&mut *body))
            .map_err(|e| RestClientError::ResponseError { source: e.into() })
    }
}

/// Runs `endpoint` and returns the `data` of Vault's answer.
pub async fn exec<E: Endpoint>(
    client: &VaultClient,
    endpoint: E,
) -> Result<E::Response, ClientError> {
    let result: EndpointResult<E::Response> = run(client, endpoint)
        .await?
        .wrap::<EndpointResult<_>>()
        .map_err(ClientError::from)?;
    result.data.ok_or(ClientError::ResponseDataEmptyError)
}

/// Runs `endpoint` whose answer is the whole body (KV v1 reads).
pub async fn exec_whole<E: Endpoint>(
    client: &VaultClient,
    endpoint: E,
) -> Result<E::Response, ClientError> {
    run(client, endpoint)
        .await?
        .parse()
        .map_err(ClientError::from)
}

/// Runs `endpoint` whose answer has no body worth reading.
pub async fn exec_empty<E: Endpoint>(client: &VaultClient, endpoint: E) -> Result<(), ClientError> {
    run(client, endpoint).await.map(|_| ())
}

/// Runs a login (or token renewal) and returns its `auth` section.
pub async fn auth<E: Endpoint<Response = ()>>(
    client: &VaultClient,
    endpoint: E,
) -> Result<AuthInfo, ClientError> {
    let result: EndpointResult<()> = run(client, endpoint)
        .await?
        .wrap::<EndpointResult<_>>()
        .map_err(ClientError::from)?;
    result.auth.ok_or(ClientError::ResponseEmptyError)
}

async fn run<E: Endpoint>(
    client: &VaultClient,
    endpoint: E,
) -> Result<rustify::endpoint::EndpointResult<E::Response>, ClientError> {
    endpoint
        .with_middleware(client.middle())
        .exec(&Capped::of(client))
        .await
        .map_err(parse_err)
}

/// Vault's `{"errors": [...]}` of a failed request, as vaultrs reads it.
fn parse_err(e: RestClientError) -> ClientError {
    if let RestClientError::ServerResponseError {
        code,
        content: Some(content),
    } = &e
        && let Ok(err) = serde_json::from_str::<EndpointError>(content)
    {
        return ClientError::APIError {
            code: *code,
            errors: err.errors,
        };
    }
    ClientError::from(e)
}

/// Read-your-writes on a cluster whose standbys answer requests themselves
/// (OpenBao 2.5 and later): every answer carries the storage index it
/// reflects (`X-Vault-Index`); every request sends back the latest one this
/// process saw, with `X-Vault-Inconsistent: forward-active-node`, so that a
/// standby that has not yet replicated it forwards the request to the
/// active node instead of answering from older state. Without it, a
/// standby evaluates a check-and-set against its stale copy and refuses a
/// write that would land — or shows a state older than one just written.
/// Servers that do not know the headers ignore them.
mod consistency {
    use std::collections::HashMap;
    use std::sync::Mutex;

    pub const INDEX: &str = "x-vault-index";
    pub const INCONSISTENT: &str = "x-vault-inconsistent";

    /// The latest index seen per Vault address (indexes of one cluster mean
    /// nothing to another).
    static SEEN: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);

    pub fn index_for(base: &str) -> Option<String> {
        SEEN.lock().ok()?.as_ref()?.get(base).cloned()
    }

    pub fn remember(base: &str, index: &str) {
        if index.len() > 1024 {
            return;
        }
        if let Ok(mut seen) = SEEN.lock() {
            seen.get_or_insert_with(HashMap::new)
                .insert(base.to_string(), index.to_string());
        }
    }
}
