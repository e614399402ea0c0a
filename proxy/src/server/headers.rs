//! Proxy header semantics: hop-by-hop removal, forwarding headers, `Via`, `Host`.
//!
//! Rules (also in docs/routes.md, "Headers"):
//! - Hop-by-hop headers are removed in both directions: `Connection` and every header it
//!   names, `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`,
//!   `TE` (except the value `trailers`), `Transfer-Encoding` (hyper re-frames bodies) and
//!   `Upgrade` (kept, with `Connection: upgrade`, on an upgrade request and its 101).
//!   `Trailer` is kept: it declares the trailers that follow the body.
//! - `Expect` is answered by Ficus (it sends `100 Continue` when it starts reading the
//!   body) and is not forwarded.
//! - `Host` is the client's (from `:authority` for HTTP/2) unless the upstream sets
//!   `rewrite_host = true`.
//! - `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` are built
//!   from the real peer. They are appended to only when the peer is in
//!   `listen.trusted_proxies`; otherwise the client's values are replaced.

use std::net::{IpAddr, SocketAddr};

use http::Version;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// What a connection knows about its peer, formatted once per connection.
pub struct Peer {
    pub addr: SocketAddr,
    pub trusted: bool,
    /// The peer address as a header value (`X-Forwarded-For` element).
    pub ip: HeaderValue,
    /// The peer as a `Forwarded` node (`192.0.2.1` or `"[2001:db8::1]"`).
    forwarded_node: String,
    /// The last (host, `Forwarded` element) built on this connection: clients on one
    /// connection nearly always send the same host, so this saves a format per request.
    forwarded_cache: std::sync::Mutex<Option<(Option<HeaderValue>, HeaderValue)>>,
}

impl Peer {
    pub fn new(addr: SocketAddr, trusted: bool) -> Self {
        let ip = addr.ip();
        let text = ip.to_string();
        let forwarded_node = match ip {
            IpAddr::V4(_) => text.clone(),
            IpAddr::V6(_) => format!("\"[{text}]\""),
        };
        Peer {
            addr,
            trusted,
            ip: HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown")),
            forwarded_node,
            forwarded_cache: std::sync::Mutex::new(None),
        }
    }
}

/// Whether the request asks for a protocol upgrade (WebSocket and the like). HTTP/1.1 only.
pub fn is_upgrade(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11
        && headers.contains_key(header::UPGRADE)
        && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Removes hop-by-hop headers. With `keep_upgrade`, `Upgrade` and `Connection: upgrade` survive.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Fast path: one pass over the (few) header names instead of a hash lookup per rule.
    if !keep_upgrade && !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(header::CONNECTION) {
        // `keep-alive` and `close` (the usual values) name nothing else to remove.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .collect();
        for name in named {
            if !(is_protected(&name) || keep_upgrade && name == header::UPGRADE) {
                headers.remove(&name);
            }
        }
        headers.remove(header::CONNECTION);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::PROXY_AUTHENTICATE);
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove(header::TRANSFER_ENCODING);
    if let Some(te) = headers.get(header::TE) {
        let only_trailers = te.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        });
        if only_trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        } else {
            headers.remove(header::TE);
        }
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::UPGRADE);
    }
}

/// Whether a request header calls for the removal pass: hop-by-hop or `Expect`.
/// (Identity headers are removed by `auth::strip_identity` on every request.)
pub fn needs_cleaning(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || name == header::EXPECT
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::UPGRADE
}

/// Headers a client cannot make Ficus drop by naming them in `Connection`.
fn is_protected(name: &HeaderName) -> bool {
    name == header::HOST || name == "x-request-id"
}

/// Sets `X-Forwarded-*`, `Forwarded` and `Host` on a request bound for an upstream.
/// `host` is the host the client asked for (Host header or `:authority`).
pub fn set_forwarding(
    headers: &mut HeaderMap,
    peer: &Peer,
    host: Option<&HeaderValue>,
    proto: &'static str,
) {
    if peer.trusted {
        append_list(headers, &X_FORWARDED_FOR, &peer.ip);
    } else {
        headers.insert(&X_FORWARDED_FOR, peer.ip.clone());
    }
    if !(peer.trusted && headers.contains_key(&X_FORWARDED_PROTO)) {
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !(peer.trusted && headers.contains_key(&X_FORWARDED_HOST)) {
        match host {
            Some(h) => headers.insert(&X_FORWARDED_HOST, h.clone()),
            None => headers.remove(&X_FORWARDED_HOST),
        };
    }
    let cached = peer.forwarded_cache.lock().ok().and_then(|c| match &*c {
        Some((h, v)) if h.as_ref() == host => Some(v.clone()),
        _ => None,
    });
    let element = match cached {
        Some(v) => Some(v),
        None => {
            let mut element = format!("for={};proto={proto}", peer.forwarded_node);
            if let Some(h) = host.and_then(|h| h.to_str().ok()) {
                element.push_str(";host=\"");
                element.push_str(h);
                element.push('"');
            }
            let v = HeaderValue::from_str(&element).ok();
            if let (Some(v), Ok(mut c)) = (&v, peer.forwarded_cache.lock()) {
                *c = Some((host.cloned(), v.clone()));
            }
            v
        }
    };
    if let Some(v) = element {
        if peer.trusted {
            append_list(headers, &header::FORWARDED, &v);
        } else {
            headers.insert(header::FORWARDED, v);
        }
    }
}

/// Appends `1.1 ficus` (or `2 ficus`) to `Via`.
pub fn add_via(headers: &mut HeaderMap, version: Version) {
    let me = match version {
        Version::HTTP_2 => HeaderValue::from_static("2 ficus"),
        Version::HTTP_10 => HeaderValue::from_static("1.0 ficus"),
        _ => HeaderValue::from_static("1.1 ficus"),
    };
    append_list(headers, &header::VIA, &me);
}

/// Appends `value` to a comma-separated list header, merging repeated fields into one.
fn append_list(headers: &mut HeaderMap, name: &HeaderName, value: &HeaderValue) {
    use http::header::Entry;
    // One lookup in the common case (the header is absent).
    let mut entry = match headers.entry(name) {
        Entry::Vacant(v) => {
            v.insert(value.clone());
            return;
        }
        Entry::Occupied(o) => o,
    };
    let mut merged = Vec::new();
    for v in entry.iter() {
        merged.extend_from_slice(v.as_bytes());
        merged.extend_from_slice(b", ");
    }
    merged.extend_from_slice(value.as_bytes());
    if let Ok(v) = HeaderValue::from_bytes(&merged) {
        entry.insert(v);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "close"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("proxy-authorization", "Basic x"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("upgrade", "websocket"),
            ("trailer", "x-checksum"),
            ("x-end-to-end", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["trailer", "x-end-to-end"]);
    }

    #[test]
    fn te_trailers_survives_and_upgrade_is_kept_on_request() {
        let mut h = map(&[
            ("te", "trailers, deflate"),
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert!(is_upgrade(Version::HTTP_11, &h));
        assert!(!is_upgrade(Version::HTTP_10, &h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["te"], "trailers");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn connection_cannot_remove_host_or_request_id() {
        let mut h = map(&[
            ("connection", "host, x-request-id"),
            ("host", "a"),
            ("x-request-id", "r"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h["host"], "a");
        assert_eq!(h["x-request-id"], "r");
    }

    #[test]
    fn forwarding_replaces_untrusted_and_appends_trusted() {
        let spoofed = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=6.6.6.6"),
        ];
        let host = HeaderValue::from_static("api.example");
        let mut h = map(&spoofed);
        set_forwarding(
            &mut h,
            &Peer::new("10.1.2.3:5000".parse().unwrap(), false),
            Some(&host),
            "http",
        );
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example");
        assert_eq!(
            h["forwarded"],
            "for=10.1.2.3;proto=http;host=\"api.example\""
        );

        let mut h = map(&spoofed);
        set_forwarding(
            &mut h,
            &Peer::new("[::1]:5000".parse().unwrap(), true),
            Some(&host),
            "http",
        );
        assert_eq!(h["x-forwarded-for"], "6.6.6.6, ::1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=6.6.6.6, for=\"[::1]\";proto=http;host=\"api.example\""
        );
    }

    #[test]
    fn via_is_appended() {
        let mut h = map(&[("via", "1.0 edge")]);
        add_via(&mut h, Version::HTTP_11);
        assert_eq!(h["via"], "1.0 edge, 1.1 ficus");
    }
}
