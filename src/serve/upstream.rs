//! Where a profile's proxied requests go: its SeaTable origin, through a
//! client that keeps connections alive and follows no redirects.
//!
//! The client is hyper-util's pooled client over rustls (the TLS set-up of
//! every other connection of seatable-cred, [`crate::http::rustls_config`])
//! rather than reqwest: the proxy already holds a parsed request, and
//! reqwest's own work per request — parsing the URL twice, its redirect
//! layer, boxing — was about a fifth of the agent's CPU per proxied request,
//! which on a small machine shared with the clients decides whether many
//! concurrent clients get their answers as fast through the agent as
//! directly.
//!
//! One exception keeps reqwest: when the environment names an HTTP proxy
//! for the origin (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, minus
//! `NO_PROXY`), requests go through it as every other request of
//! seatable-cred does, and reqwest is what knows how. A loopback origin
//! never goes through a proxy and `localhost` is always 127.0.0.1, as
//! [`crate::http::stay_local`] keeps it for every other client: the
//! profile's tokens stay on this machine.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::Profile;
use crate::error::Failure;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this: below the keep-alive
/// timeouts of common front servers (nginx: 75 s), so the agent closes
/// first and seldom sends a request on a connection being closed.
const POOL_IDLE: Duration = Duration::from_secs(50);

/// A profile's SeaTable origin and the client that reaches it.
pub struct Upstream {
    /// The profile's `server_url`, without a trailing slash.
    pub origin: String,
    scheme: Scheme,
    authority: Authority,
    /// `Host` for the origin, made once: hyper-util would format it for
    /// every request.
    host: HeaderValue,
    /// The path of `server_url` (SeaTable under a prefix), without a
    /// trailing slash; usually empty.
    base: String,
    client: Client,
}

type Direct = legacy::Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

enum Client {
    Direct(Direct),
    /// Through the HTTP proxy the environment names for the origin.
    ViaProxy(reqwest::Client),
}

/// What a request to SeaTable fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// SeaTable's answer body, streamed through as it arrives: from the
/// direct client, or from reqwest through a proxy.
pub type Body = Either<Incoming, reqwest::Body>;

impl Upstream {
    pub fn for_profile(profile: &Profile) -> Result<Upstream> {
        Self::build(
            &profile.server_url,
            profile.ca_cert.as_deref(),
            &Matcher::from_system(),
        )
    }

    /// The upstream for `server_url`; `proxies` says which origins go
    /// through an HTTP proxy (the environment's, outside tests).
    fn build(server_url: &str, ca_cert: Option<&Path>, proxies: &Matcher) -> Result<Upstream> {
        let origin = server_url.trim_end_matches('/').to_string();
        let cannot = |why: String| {
            Failure::internal(format!("cannot set up the client for {server_url}: {why}"))
        };
        let uri: Uri = origin.parse().map_err(|e| cannot(format!("{e}")))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(cannot("not an absolute URL".to_string()).into());
        };
        let https = scheme == Scheme::HTTPS;
        crate::http::install_provider();
        // Plain HTTP needs no roots (the verifier loads the system's only
        // when it has a certificate to check).
        let extra_roots = match ca_cert {
            Some(path) if https => crate::http::ca_bundle(path)?,
            _ => Vec::new(),
        };
        let tls = crate::http::rustls_config(crate::http::Trust {
            extra_roots,
            verify: true,
        })?;
        let loopback = url::Url::parse(&origin).is_ok_and(|u| crate::address::is_loopback(&u));
        let client = if !loopback && proxies.intercept(&uri).is_some() {
            Client::ViaProxy(via_proxy(tls, https).map_err(cannot)?)
        } else {
            Client::Direct(direct(tls, https))
        };
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| cannot(format!("{e}")))?;
        Ok(Upstream {
            base: uri.path().trim_end_matches('/').to_string(),
            host,
            origin,
            scheme,
            authority,
            client,
        })
    }

    /// Sends a request for `target` (path and query, as the client sent
    /// them) to the origin, re-rooted under its path; the answer's head.
    pub async fn send(
        &self,
        method: Method,
        target: &PathAndQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, BoxError> {
        match &self.client {
            Client::Direct(client) => {
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.uri_mut() = self.uri(target)?;
                *request.headers_mut() = headers;
                request
                    .headers_mut()
                    .insert(hyper::header::HOST, self.host.clone());
                let response = client.request(request).await?;
                Ok(response.map(Either::Left))
            }
            Client::ViaProxy(client) => {
                let url = format!("{}{target}", self.origin);
                let mut request = client.request(method, url).headers(headers);
                // No body at all rather than an empty one, as the client sent it.
                if !body.is_empty() {
                    request = request.body(body);
                }
                let response: Response<reqwest::Body> = request.send().await?.into();
                Ok(response.map(Either::Right))
            }
        }
    }

    /// The origin's scheme and authority with `target` under its path.
    fn uri(&self, target: &PathAndQuery) -> Result<Uri, BoxError> {
        let path_and_query = if self.base.is_empty() {
            target.clone()
        } else {
            PathAndQuery::try_from(format!("{}{target}", self.base))?
        };
        Ok(Uri::from_parts({
            let mut parts = hyper::http::uri::Parts::default();
            parts.scheme = Some(self.scheme.clone());
            parts.authority = Some(self.authority.clone());
            parts.path_and_query = Some(path_and_query);
            parts
        })?)
    }
}

/// hyper-util's pooled client: HTTP/1.1, TLS for an `https` origin only
/// (the scheme is the profile's, never the client's), redirects answered
/// as they are (it follows none).
fn direct(tls: rustls::ClientConfig, https: bool) -> Direct {
    let mut http = HttpConnector::new_with_resolver(Resolver(GaiResolver::new()));
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    // As reqwest sets them: a dead peer is noticed on an idle pooled connection.
    http.set_keepalive(Some(Duration::from_secs(15)));
    http.set_keepalive_interval(Some(Duration::from_secs(15)));
    http.set_keepalive_retries(Some(3));
    http.set_tcp_user_timeout(Some(Duration::from_secs(30)));
    let mut connector = HttpsConnector::from((http, tls));
    if https {
        connector.enforce_https();
    }
    legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector)
}

/// The system's resolver, except that `localhost` is 127.0.0.1 whatever
/// `/etc/hosts` or DNS say: a loopback origin must not leave the machine.
#[derive(Clone)]
struct Resolver(GaiResolver);

type Resolved = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolver {
    type Response = Resolved;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Resolved>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, name: Name) -> Self::Future {
        if let Some(addr) = crate::address::pinned(name.as_str()) {
            return Box::pin(std::future::ready(Ok(vec![addr].into_iter())));
        }
        let lookup = self.0.call(name);
        Box::pin(async move { Ok(lookup.await?.collect::<Vec<_>>().into_iter()) })
    }
}

/// reqwest, which reads the proxy from the environment itself.
fn via_proxy(tls: rustls::ClientConfig, https: bool) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true);
    let builder = if https {
        builder.tls_backend_preconfigured(tls)
    } else {
        builder.tls_certs_only(Vec::new())
    };
    builder.build().map_err(|e| crate::error::root_cause(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_proxy() -> Matcher {
        Matcher::builder().build()
    }

    #[test]
    fn targets_are_rerooted_on_the_origin_only() {
        let target = PathAndQuery::from_static("/api-gateway/api/v2/dtables/u/rows/?table_name=T");
        let at = |server_url: &str| {
            let upstream = Upstream::build(server_url, None, &no_proxy()).unwrap();
            let uri = upstream.uri(&target).unwrap();
            // `Host` is the authority requests go to.
            assert_eq!(upstream.host, uri.authority().unwrap().as_str());
            uri.to_string()
        };
        assert_eq!(
            at("https://cloud.seatable.io"),
            "https://cloud.seatable.io/api-gateway/api/v2/dtables/u/rows/?table_name=T"
        );
        assert_eq!(
            at("http://127.0.0.1:8000/"),
            "http://127.0.0.1:8000/api-gateway/api/v2/dtables/u/rows/?table_name=T"
        );
        assert_eq!(
            at("https://example.com/seatable/"),
            "https://example.com/seatable/api-gateway/api/v2/dtables/u/rows/?table_name=T"
        );
        assert_eq!(
            at("http://[::1]:8000"),
            "http://[::1]:8000/api-gateway/api/v2/dtables/u/rows/?table_name=T"
        );
    }

    #[test]
    fn an_http_proxy_in_the_environment_is_honoured() {
        let proxies = Matcher::builder()
            .https("http://proxy.example:3128")
            .no("internal.example")
            .build();
        let via_proxy = |proxies: &Matcher, url: &str| {
            let upstream = Upstream::build(url, None, proxies).unwrap();
            matches!(upstream.client, Client::ViaProxy(_))
        };
        assert!(via_proxy(&proxies, "https://cloud.seatable.io"));
        assert!(!via_proxy(&proxies, "https://seatable.internal.example"));
        assert!(!via_proxy(&proxies, "http://cloud.seatable.io"));
        assert!(!via_proxy(&no_proxy(), "https://cloud.seatable.io"));
        let everything = Matcher::builder()
            .http("http://proxy.example:3128")
            .https("http://proxy.example:3128")
            .build();
        for local in [
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "https://LOCALHOST:8443",
            "http://[::1]:8000",
        ] {
            assert!(
                !via_proxy(&everything, local),
                "{local} went through a proxy"
            );
        }
        assert!(via_proxy(&everything, "http://seatable.example"));
    }

    #[tokio::test]
    async fn localhost_is_always_127_0_0_1() {
        use tower_service::Service;
        let mut resolver = Resolver(GaiResolver::new());
        for name in ["localhost", "LocalHost"] {
            let name: Name = name.parse().unwrap();
            let addrs: Vec<SocketAddr> = resolver.call(name).await.unwrap().collect();
            assert_eq!(
                addrs,
                [SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0))]
            );
        }
        let name: Name = "127.0.0.2".parse().unwrap();
        let addrs: Vec<SocketAddr> = resolver.call(name).await.unwrap().collect();
        assert_eq!(addrs[0].ip(), std::net::IpAddr::from([127, 0, 0, 2]));
    }
}
