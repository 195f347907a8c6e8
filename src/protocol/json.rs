//! `get -o json`: the token with everything a SeaTable client needs.
//! `expires_at` is the token's own expiry, `refresh_at` when to ask again;
//! both RFC 3339 UTC.

use secrecy::ExposeSecret;
use serde::Serialize;
use zeroize::Zeroizing;

use super::Credential;

#[derive(Serialize)]
struct Output<'a> {
    token: &'a str,
    expires_at: String,
    refresh_at: String,
    server_url: &'a str,
    api_gateway_url: &'a str,
    dtable_server: Option<&'a str>,
    dtable_uuid: Option<&'a str>,
    dtable_name: Option<&'a str>,
    workspace_id: Option<i64>,
    app_name: Option<&'a str>,
    permission: Option<&'a str>,
    use_api_gateway: Option<bool>,
    cached: bool,
}

pub fn render(cred: &Credential<'_>) -> Zeroizing<String> {
    let t = cred.token;
    let c = &t.context;
    let out = Output {
        token: t.token.expose_secret(),
        expires_at: crate::time::rfc3339(t.expires_at),
        refresh_at: crate::time::rfc3339(cred.refresh_at()),
        server_url: &c.server_url,
        api_gateway_url: &c.api_gateway_url,
        dtable_server: c.dtable_server.as_deref(),
        dtable_uuid: c.dtable_uuid.as_deref(),
        dtable_name: c.dtable_name.as_deref(),
        workspace_id: c.workspace_id,
        app_name: c.app_name.as_deref(),
        permission: c.permission.as_deref(),
        use_api_gateway: c.use_api_gateway,
        cached: cred.cached,
    };
    Zeroizing::new(serde_json::to_string(&out).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::{cred, sample};

    #[test]
    fn pins_every_field() {
        let t = sample();
        assert_eq!(
            *render(&cred(&t)),
            r#"{"token":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NjQ1Mzk3MDB9.c2ln","expires_at":"2025-11-30T21:55:00Z","refresh_at":"2025-11-30T21:50:00Z","server_url":"https://cloud.seatable.io","api_gateway_url":"https://cloud.seatable.io/api-gateway/","dtable_server":"https://cloud.seatable.io/api-gateway/","dtable_uuid":"7c3b1d2e","dtable_name":"CRM's base","workspace_id":42,"app_name":"crm-sync","permission":"rw","use_api_gateway":true,"cached":true}"#
        );
    }

    #[test]
    fn missing_context_is_null_and_fresh_is_not_cached() {
        let mut t = sample();
        t.context = crate::seatable::BaseContext {
            server_url: "https://s".into(),
            api_gateway_url: "https://s/api-gateway/".into(),
            ..Default::default()
        };
        let mut c = cred(&t);
        c.cached = false;
        let v: serde_json::Value = serde_json::from_str(&render(&c)).unwrap();
        assert_eq!(v["cached"], false);
        assert!(
            v["workspace_id"].is_null() && v["permission"].is_null() && v["dtable_uuid"].is_null()
        );
    }
}
