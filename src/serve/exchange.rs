//! The local exchange: SeaTable's `GET /api/v2.1/dtable/app-access-token/`,
//! answered by the agent. `Authorization: Token <local key>` gets the JSON
//! SeaTable sends (SPEC §5) with a session token as `access_token` and the
//! agent's own URL as `dtable_server`, so an unmodified SDK sends everything
//! after that to the agent. A missing or wrong key gets SeaTable's own 403.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tracing::debug;

use super::reply::{Out, error, json};
use super::session::{self, Claims};
use super::state::Agent;
use crate::seatable::BaseContext;

/// Session tokens live this long unless the client asks for less with
/// `?exp=` (as SeaTable's exchange allows). The local key they come from
/// never expires, so a longer session exposes nothing more; replacing the
/// key ends every session of the profile.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The exchange's answer, SeaTable 6.x shaped (`use_api_gateway`) or 4.x
/// shaped (`dtable_socket`, `dtable_db`), as the profile's own server is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub app_name: Option<String>,
    /// The session token.
    pub access_token: String,
    pub dtable_uuid: Option<String>,
    pub dtable_server: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtable_socket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtable_db: Option<String>,
    pub workspace_id: Option<i64>,
    pub dtable_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_api_gateway: Option<bool>,
}

impl Answer {
    /// What to answer for a base with `context`, with the agent at `url`.
    pub fn new(context: &BaseContext, url: &str, access_token: String) -> Answer {
        let gateway = context.use_api_gateway == Some(true)
            || context
                .dtable_server
                .as_deref()
                .is_some_and(|s| s.trim_end_matches('/').ends_with("/api-gateway"));
        let (dtable_server, dtable_socket, dtable_db, use_api_gateway) = if gateway {
            (format!("{url}/api-gateway/"), None, None, Some(true))
        } else {
            (
                format!("{url}/dtable-server/"),
                Some(format!("{url}/")),
                Some(format!("{url}/dtable-db/")),
                None,
            )
        };
        Answer {
            app_name: context.app_name.clone(),
            access_token,
            dtable_uuid: context.dtable_uuid.clone(),
            dtable_server,
            dtable_socket,
            dtable_db,
            workspace_id: context.workspace_id,
            dtable_name: context.dtable_name.clone(),
            use_api_gateway,
        }
    }
}

pub async fn answer(req: Request<Incoming>, agent: &Agent) -> Response<Out> {
    if req.method() != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Method \"{}\" not allowed.", req.method()),
        );
    }
    let profiles = agent.profiles();
    let served = session::credential(req.headers().get(hyper::header::AUTHORIZATION))
        .and_then(|key| profiles.by_key(key.as_bytes()))
        .cloned();
    let Some(served) = served else {
        agent
            .metrics
            .exchanges_refused
            .fetch_add(1, Ordering::Relaxed);
        debug!("refused a local exchange: missing or wrong key");
        return error(StatusCode::FORBIDDEN, "Permission denied.");
    };
    // A client with the key: its connection leaves the keyless budget.
    super::budget::promote(req.extensions());
    let lifetime = match query_exp(req.uri().query()) {
        Ok(asked) => asked.map_or(SESSION_LIFETIME, |d| d.min(SESSION_LIFETIME)),
        Err(()) => return error(StatusCode::BAD_REQUEST, "exp invalid."),
    };
    let Some(current) = served.wait_current(served.profile.timeout).await else {
        return super::reply::unavailable(&served.name);
    };
    let now = crate::time::now();
    let claims = Claims {
        exp: now + lifetime.as_secs(),
        iat: now,
        dtable_uuid: current.context.dtable_uuid.clone(),
        permission: current.context.permission.clone(),
        app_name: current.context.app_name.clone(),
        sub: served.name.clone(),
        iss: session::ISSUER.to_string(),
    };
    let token = served.key.issue(&claims);
    let answer = Answer::new(
        &current.context,
        &agent.url,
        token.expose_secret().to_string(),
    );
    served.metrics.exchanges.fetch_add(1, Ordering::Relaxed);
    debug!(profile = %served.name, "issued a session token");
    let mut response = json(StatusCode::OK, &answer);
    drop(answer);
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `?exp=1h` as SeaTable reads it; `Ok(None)` when absent.
fn query_exp(query: Option<&str>) -> Result<Option<Duration>, ()> {
    let Some(value) = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("exp=")))
    else {
        return Ok(None);
    };
    match crate::time::parse_duration(value) {
        Ok(d) if d >= Duration::from_secs(1) => Ok(Some(d)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(gateway: bool) -> BaseContext {
        BaseContext {
            server_url: "https://cloud.seatable.io".into(),
            api_gateway_url: "https://cloud.seatable.io/api-gateway/".into(),
            dtable_server: Some(if gateway {
                "https://cloud.seatable.io/api-gateway/".into()
            } else {
                "https://cloud.seatable.io/dtable-server/".into()
            }),
            dtable_uuid: Some("7c3b".into()),
            dtable_name: Some("CRM".into()),
            workspace_id: Some(42),
            app_name: Some("crm-sync".into()),
            permission: Some("rw".into()),
            use_api_gateway: gateway.then_some(true),
        }
    }

    #[test]
    fn answers_like_seatable_6x_pointing_at_the_agent() {
        let a = Answer::new(&context(true), "http://127.0.0.1:8799", "sess".into());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"app_name":"crm-sync","access_token":"sess","dtable_uuid":"7c3b","dtable_server":"http://127.0.0.1:8799/api-gateway/","workspace_id":42,"dtable_name":"CRM","use_api_gateway":true}"#
        );
        // What our own exchange parser (SPEC §5) makes of it.
        let back: Answer = serde_json::from_str(
            r#"{"app_name":"crm-sync","access_token":"sess","dtable_uuid":"7c3b","dtable_server":"http://127.0.0.1:8799/api-gateway/","workspace_id":42,"dtable_name":"CRM","use_api_gateway":true,"new_field":1}"#,
        )
        .unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn answers_like_seatable_4x_when_the_server_is() {
        let a = Answer::new(&context(false), "http://127.0.0.1:8799", "sess".into());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"app_name":"crm-sync","access_token":"sess","dtable_uuid":"7c3b","dtable_server":"http://127.0.0.1:8799/dtable-server/","dtable_socket":"http://127.0.0.1:8799/","dtable_db":"http://127.0.0.1:8799/dtable-db/","workspace_id":42,"dtable_name":"CRM"}"#
        );
    }

    #[test]
    fn exp_query() {
        assert_eq!(query_exp(None), Ok(None));
        assert_eq!(query_exp(Some("a=b")), Ok(None));
        assert_eq!(
            query_exp(Some("exp=1h")),
            Ok(Some(Duration::from_secs(3600)))
        );
        assert_eq!(query_exp(Some("exp=soon")), Err(()));
        assert_eq!(query_exp(Some("exp=0s")), Err(()));
    }
}
