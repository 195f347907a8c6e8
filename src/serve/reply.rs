//! What the agent answers itself: JSON in SeaTable's shapes, its error
//! shape `{"error_msg": …}`, and the 503s of a profile without a base
//! token or, for a file request, its API token.
//! A leaf of the HTTP front: the router, the exchange and the proxy all
//! answer through it, and it knows none of them.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

/// A response body: one the agent made (`Left`), or SeaTable's, streamed
/// through (`Right`).
pub type Out = Either<Full<Bytes>, super::upstream::Body>;

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Out> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    bytes(status, "application/json", body.into())
}

/// SeaTable's error shape: `{"error_msg": "…"}`.
pub fn error(status: StatusCode, message: &str) -> Response<Out> {
    json(status, &serde_json::json!({ "error_msg": message }))
}

pub fn bytes(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Out> {
    let mut response = Response::new(Either::Left(Full::new(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// 503 while a profile has no base token (Vault or SeaTable unreachable).
pub fn unavailable(profile: &str) -> Response<Out> {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "seatable-cred serve has no base token for profile {profile} yet: see the agent's log; try again later"
        ),
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// 503 when the API token a file request needs cannot be read from Vault.
pub fn no_api_token(profile: &str) -> Response<Out> {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "seatable-cred serve could not read the API token of profile {profile} from Vault: see the agent's log; try again later"
        ),
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn text(r: Response<Out>) -> String {
        let body = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn errors_are_seatables_shape() {
        let r = error(StatusCode::FORBIDDEN, "Permission denied.");
        assert_eq!(r.status(), 403);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(text(r).await, r#"{"error_msg":"Permission denied."}"#);
        let r = unavailable("crm");
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[RETRY_AFTER], "5");
        assert!(text(r).await.contains("profile crm"));
    }
}
