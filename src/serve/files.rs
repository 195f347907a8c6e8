//! SeaTable's file endpoints, which take the API token itself
//! (`Authorization: Token <API token>`, file_operations.yaml): the upload
//! and download links of a base's files and of its custom folder, a custom
//! folder's listing and file metadata, and `app-user-info` (the SDKs').
//! Through the agent a client holds only the local key — the Python SDK's
//! `upload_bytes_file`, `download_file` and friends send it where they
//! would send the API token — so the agent forwards these requests to the
//! profile's SeaTable with the real API token in place of a valid local
//! key.
//!
//! What keeps the API token where it belongs:
//! * only a profile's own local key, compared in constant time, has the
//!   token put on a request (a session token, another key, none: SeaTable's
//!   403, nothing forwarded);
//! * only these exact paths — no prefix, no normalising: `..`, encoded
//!   characters, doubled slashes or another case are other paths, SeaTable's
//!   404 at the router — and only the methods the spec gives each (GET;
//!   DELETE for a custom folder's file), else 405;
//! * only to the profile's SeaTable origin (the proxy's upstream; `Host` is
//!   the origin's, the client's credentials and cookies stay behind);
//! * the token is read from Vault for each request and not kept, its
//!   header marked sensitive; the log names the path, never the query.
//!
//! SeaTable's answer goes back as it is. The links in it name SeaTable's
//! own file server (`…/seafhttp/upload-api/…`, `…/seafhttp/files/…`),
//! which the client then reaches directly: those need no credential but
//! the link's own, so the upload and download never pass the agent.

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tracing::{debug, warn};

use super::headers::{self, MAX_CONNECTION_NAMES};
use super::reply::{self, Out, error};
use super::session;
use super::state::Agent;

/// The file endpoints and the methods the spec gives each.
const ENDPOINTS: [(&str, &[Method], &str); 7] = [
    ("/api/v2.1/dtable/app-upload-link/", &[Method::GET], "GET"),
    ("/api/v2.1/dtable/app-download-link/", &[Method::GET], "GET"),
    (
        "/api/v2.1/dtable/custom/app-upload-link/",
        &[Method::GET],
        "GET",
    ),
    (
        "/api/v2.1/dtable/custom/app-download-link/",
        &[Method::GET],
        "GET",
    ),
    (
        "/api/v2.1/dtable/custom/app-asset-file/",
        &[Method::GET, Method::DELETE],
        "GET, DELETE",
    ),
    (
        "/api/v2.1/dtable/custom/app-asset-dir/",
        &[Method::GET],
        "GET",
    ),
    // Not in the spec; the SDKs call it with GET.
    ("/api/v2.1/dtable/app-user-info/", &[Method::GET], "GET"),
];

/// A file endpoint: its methods, and them as the `Allow` header names them.
pub struct Endpoint {
    methods: &'static [Method],
    allow: &'static str,
}

/// The endpoint `path` is — byte for byte, nothing normalised.
pub fn endpoint(path: &str) -> Option<Endpoint> {
    ENDPOINTS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, methods, allow)| Endpoint { methods, allow })
}

pub async fn forward(req: Request<Incoming>, agent: &Agent, endpoint: Endpoint) -> Response<Out> {
    let response = forward_inner(req, agent, endpoint).await;
    agent.metrics.proxied(response.status().as_u16());
    response
}

async fn forward_inner(req: Request<Incoming>, agent: &Agent, endpoint: Endpoint) -> Response<Out> {
    let (parts, body) = req.into_parts();
    if !endpoint.methods.contains(&parts.method) {
        let mut refusal = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method \"{}\" not allowed.", parts.method),
        );
        refusal
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(endpoint.allow));
        return refusal;
    }
    let profiles = agent.profiles();
    let served = session::credential(parts.headers.get(header::AUTHORIZATION))
        .and_then(|key| profiles.by_key(key.as_bytes()))
        .cloned();
    let Some(served) = served else {
        debug!("refused a file request: missing or wrong key");
        return error(StatusCode::FORBIDDEN, "Permission denied.");
    };
    // A client with the key: its connection leaves the keyless budget.
    super::budget::promote(&parts.extensions);
    // None of these takes a body; one that came cannot be read past, so
    // the connection carries no other request.
    if !body.is_end_stream() {
        let mut refusal = error(
            StatusCode::BAD_REQUEST,
            "SeaTable's file endpoints take no request body",
        );
        refusal
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refusal;
    }
    // Origin-form, the only form routed here, always has one.
    let Some(target) = parts.uri.path_and_query().cloned() else {
        return error(StatusCode::BAD_REQUEST, "the request has no path");
    };
    let Some(outgoing) = headers::forwarded_headers(parts.headers) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("the Connection header names more than {MAX_CONNECTION_NAMES} headers"),
        );
    };
    let authorization = match served.api_token_authorization().await {
        Ok(authorization) => authorization,
        Err(err) => {
            warn!(profile = %served.name, "cannot forward a file request: {}", crate::error::one_line(&err));
            return reply::no_api_token(&served.name);
        }
    };
    debug!(profile = %served.name, path = target.path(), "forwarding a file request with the API token");
    match super::proxy::send(
        &served,
        &parts.method,
        &target,
        &outgoing,
        &Bytes::new(),
        &authorization,
    )
    .await
    {
        Ok(response) => super::proxy::streamed(response),
        Err(failed) => failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_paths_are_file_endpoints() {
        for (path, _, _) in ENDPOINTS {
            assert!(endpoint(path).is_some(), "{path}");
        }
        let methods = |path| endpoint(path).unwrap().methods;
        assert_eq!(
            methods("/api/v2.1/dtable/custom/app-asset-file/"),
            [Method::GET, Method::DELETE]
        );
        assert_eq!(methods("/api/v2.1/dtable/app-upload-link/"), [Method::GET]);
        for other in [
            "/api/v2.1/dtable/app-upload-link",
            "/api/v2.1/dtable/app-upload-link/x",
            "/api/v2.1/dtable/app-upload-link/../app-access-token/",
            "//api/v2.1/dtable/app-upload-link/",
            "/api/v2.1/dtable//app-upload-link/",
            "/api/v2.1/dtable/%61pp-upload-link/",
            "/API/v2.1/dtable/app-upload-link/",
            "/api/v2.1/dtable/app-access-token/",
            "/api/v2.1/dtable/app-asset/",
            "/api/v2.1/dtable/custom/",
            "",
        ] {
            assert!(endpoint(other).is_none(), "{other}");
        }
        // Each `Allow` names exactly its methods.
        for (path, methods, allow) in ENDPOINTS {
            let named: Vec<&str> = methods.iter().map(Method::as_str).collect();
            assert_eq!(named.join(", "), allow, "{path}");
        }
    }
}
