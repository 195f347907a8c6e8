//! Headers and paths as they cross the agent: hop-by-hop headers (RFC 9110
//! §7.6.1) and those a `Connection` header names stay behind, the client's
//! credentials and cookies never travel to SeaTable, SeaTable's cookies
//! never reach the client, and a path with dot segments or encoded
//! separators is not forwarded at all.

use hyper::header::{self, HeaderMap, HeaderName};

/// A `Connection` header naming more headers than this is refused: no
/// client needs many, and each is looked for among the message's headers.
pub const MAX_CONNECTION_NAMES: usize = 32;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, those the `Connection` header names,
/// `Upgrade` (the agent does not tunnel protocols) and `Set-Cookie` (the
/// agent's clients hold no session of SeaTable's web interface). `Err` when
/// `Connection` names more than [`MAX_CONNECTION_NAMES`].
pub fn strip_hop_by_hop(headers: &mut HeaderMap) -> Result<(), TooManyNames> {
    strip(headers, &[header::SET_COOKIE])
}

/// The client's headers as they go to SeaTable: without hop-by-hop headers,
/// without its `Authorization` (replaced by the base token), `Host` (that of
/// the upstream), what the client set for its own connection, and its
/// cookies (cookies for 127.0.0.1 are not SeaTable's). In place: the
/// request's own map, not a copy. `None` when `Connection` names more than
/// [`MAX_CONNECTION_NAMES`].
pub fn forwarded_headers(mut headers: HeaderMap) -> Option<HeaderMap> {
    strip(
        &mut headers,
        &[
            header::AUTHORIZATION,
            header::HOST,
            header::CONTENT_LENGTH,
            header::EXPECT,
            header::COOKIE,
            header::MAX_FORWARDS,
        ],
    )
    .ok()?;
    Some(headers)
}

#[derive(Debug)]
pub struct TooManyNames;

/// [`strip_hop_by_hop`]'s list, and the headers `also` names. The names
/// present are found in one pass over the few a message has, and only they
/// are removed: a removal by name hashes the name, and most messages carry
/// none of these but `Connection` and `Host`.
fn strip(headers: &mut HeaderMap, also: &[HeaderName]) -> Result<(), TooManyNames> {
    let mut named: Vec<HeaderName> = Vec::new();
    let listed = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty());
    for name in listed {
        if named.len() == MAX_CONNECTION_NAMES {
            return Err(TooManyNames);
        }
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            named.push(name);
        }
    }
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            HOP_BY_HOP.contains(name)
                || *name == header::UPGRADE
                || also.contains(name)
                || named.contains(name)
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
    Ok(())
}

/// No `.`/`..` segments, encoded dots or slashes, or backslashes: what
/// reaches SeaTable is the path the client named, under the same prefix.
/// Most paths have no `%`, `\` or `/.` at all, which two quick scans tell.
pub fn clean_path(path: &str) -> bool {
    let encoded = |w: &[u8]| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_lowercase()),
                (b'2', b'e' | b'f') | (b'5', b'c')
            )
    };
    let smuggled = path.contains(['%', '\\'])
        && (path.contains('\\') || path.as_bytes().windows(3).any(encoded));
    let dotted = (path.starts_with('.') || path.contains("/."))
        && path.split('/').any(|seg| seg == "." || seg == "..");
    !smuggled && !dotted
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn traversal_is_not_forwarded() {
        assert!(clean_path("/api-gateway/api/v2/dtables/u/rows/"));
        assert!(clean_path("/dtable-server/api/v1/dtables/u/metadata/"));
        assert!(clean_path("/api-gateway/api/v2/dtables/u/rows/My%20Table"));
        assert!(clean_path("/api-gateway/a.b/..c/"));
        for bad in [
            "/api-gateway/../api/v2.1/admin/",
            "/api-gateway/./x",
            "/api-gateway/%2e%2e/x",
            "/api-gateway/%2E%2E/x",
            "/api-gateway/a%2fb",
            "/api-gateway/a\\..\\b",
            "/api-gateway/a%5cb",
            "/api-gateway/a%2Fb",
            "/api-gateway/%2e./x",
            "/api-gateway/..",
            "..",
            "./api-gateway/",
        ] {
            assert!(!clean_path(bad), "{bad}");
        }
    }

    #[test]
    fn hop_by_hop_and_credentials_do_not_travel() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic abc"),
            ("authorization", "Token session"),
            ("host", "127.0.0.1:8799"),
            ("content-length", "5"),
            ("content-type", "application/json"),
            ("user-agent", "python-requests/2"),
            ("accept-encoding", "gzip"),
            ("cookie", "sessionid=for-127.0.0.1"),
            ("max-forwards", "0"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let f = forwarded_headers(h).unwrap();
        let mut names: Vec<&str> = f.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["accept-encoding", "content-type", "user-agent"]);
    }

    #[test]
    fn a_connection_header_naming_too_many_is_refused() {
        let listing = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("x-{i}")).collect();
            let mut h = HeaderMap::new();
            h.insert(
                "connection",
                HeaderValue::from_str(&names.join(", ")).unwrap(),
            );
            h.insert("x-0", HeaderValue::from_static("1"));
            h.insert("x-keep", HeaderValue::from_static("1"));
            h
        };
        let kept = forwarded_headers(listing(MAX_CONNECTION_NAMES)).unwrap();
        assert_eq!(
            kept.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["x-keep"]
        );
        assert!(forwarded_headers(listing(MAX_CONNECTION_NAMES + 1)).is_none());
        assert!(strip_hop_by_hop(&mut listing(MAX_CONNECTION_NAMES + 1)).is_err());
        // Empty list items (`a,,b`, a trailing comma) are not names.
        let mut h = listing(0);
        let commas = ",".repeat(MAX_CONNECTION_NAMES * 2);
        h.insert(
            "connection",
            HeaderValue::from_str(&format!("x-0{commas}")).unwrap(),
        );
        assert!(strip_hop_by_hop(&mut h).is_ok());
        assert!(!h.contains_key("x-0"));
    }

    #[test]
    fn answers_lose_hop_by_hop_headers_and_cookies() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("Connection", "Keep-Alive, X-Trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "application/json"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        strip_hop_by_hop(&mut h).unwrap();
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort();
        // Cookies of SeaTable's are not for the agent's clients.
        assert_eq!(names, ["content-type"]);
        // Nothing to strip: nothing changes.
        let before = h.clone();
        strip_hop_by_hop(&mut h).unwrap();
        assert_eq!(h, before);
    }
}
