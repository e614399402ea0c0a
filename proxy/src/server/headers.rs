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
    /// The first (host, `Forwarded` element) built on this connection: clients on one
    /// connection nearly always send the same host, so this saves a format per request
    /// (and, set once, it is read without a lock).
    forwarded_cache: std::sync::OnceLock<(Option<HeaderValue>, HeaderValue)>,
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
            forwarded_cache: std::sync::OnceLock::new(),
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
    // One pass over the (few) headers records which hop-by-hop headers are present, so
    // only those cost a hash lookup (an upstream's response usually has just
    // `Connection: keep-alive`), and whether a `Connection` value names other headers
    // (`keep-alive` and `close`, the usual values, alone name nothing to remove).
    let (mut present, mut names_others) = (0u8, false);
    for (name, value) in headers.iter() {
        let bit = hop_bit(name);
        present |= bit;
        if bit == hop::CONNECTION {
            let v = value.as_bytes();
            names_others |=
                !(v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close"));
        }
    }
    if present == 0 && !keep_upgrade {
        return;
    }
    if names_others {
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
    }
    if present & hop::CONNECTION != 0 {
        headers.remove(header::CONNECTION);
    }
    let removals: [(u8, &HeaderName); 5] = [
        (hop::KEEP_ALIVE, &KEEP_ALIVE),
        (hop::PROXY_CONNECTION, &PROXY_CONNECTION),
        (hop::PROXY_AUTHENTICATE, &header::PROXY_AUTHENTICATE),
        (hop::PROXY_AUTHORIZATION, &header::PROXY_AUTHORIZATION),
        (hop::TRANSFER_ENCODING, &header::TRANSFER_ENCODING),
    ];
    for (bit, name) in removals {
        if present & bit != 0 {
            headers.remove(name);
        }
    }
    if present & hop::TE != 0 {
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
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else if present & hop::UPGRADE != 0 {
        headers.remove(header::UPGRADE);
    }
}

/// Bits of [`hop_bit`]: which hop-by-hop headers a map has.
mod hop {
    pub const CONNECTION: u8 = 1;
    pub const KEEP_ALIVE: u8 = 1 << 1;
    pub const PROXY_CONNECTION: u8 = 1 << 2;
    pub const PROXY_AUTHENTICATE: u8 = 1 << 3;
    pub const PROXY_AUTHORIZATION: u8 = 1 << 4;
    pub const TRANSFER_ENCODING: u8 = 1 << 5;
    pub const TE: u8 = 1 << 6;
    pub const UPGRADE: u8 = 1 << 7;
}

/// The [`hop`] bit of a hop-by-hop header name; 0 for any other name. One match on the
/// (lowercase) name: its length rules out almost every other header at once.
fn hop_bit(name: &HeaderName) -> u8 {
    match name.as_str() {
        "connection" => hop::CONNECTION,
        "keep-alive" => hop::KEEP_ALIVE,
        "proxy-connection" => hop::PROXY_CONNECTION,
        "proxy-authenticate" => hop::PROXY_AUTHENTICATE,
        "proxy-authorization" => hop::PROXY_AUTHORIZATION,
        "transfer-encoding" => hop::TRANSFER_ENCODING,
        "te" => hop::TE,
        "upgrade" => hop::UPGRADE,
        _ => 0,
    }
}

/// Whether a request header calls for the removal pass: hop-by-hop or `Expect`.
/// (Identity headers are removed by `auth::strip_identity` on every request.)
pub fn needs_cleaning(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || name == header::EXPECT
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    hop_bit(name) != 0
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
    let cached = peer
        .forwarded_cache
        .get()
        .and_then(|(h, v)| (h.as_ref() == host).then(|| v.clone()));
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
            if let Some(v) = &v {
                let _ = peer.forwarded_cache.set((host.cloned(), v.clone()));
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
    fn hop_bits_name_each_hop_by_hop_header_in_any_case_and_nothing_else() {
        let hops = [
            ("Connection", hop::CONNECTION),
            ("KEEP-ALIVE", hop::KEEP_ALIVE),
            ("Proxy-Connection", hop::PROXY_CONNECTION),
            ("proxy-authenticate", hop::PROXY_AUTHENTICATE),
            ("Proxy-Authorization", hop::PROXY_AUTHORIZATION),
            ("Transfer-Encoding", hop::TRANSFER_ENCODING),
            ("TE", hop::TE),
            ("Upgrade", hop::UPGRADE),
        ];
        let mut all = 0;
        for (name, bit) in hops {
            assert_eq!(
                hop_bit(&HeaderName::from_bytes(name.as_bytes()).unwrap()),
                bit,
                "{name}"
            );
            all |= bit;
        }
        assert_eq!(all, u8::MAX, "one bit each");
        // Same lengths, other names; standard and custom names alike.
        for name in [
            "x-request-",
            "keep-alivf",
            "tk",
            "upgradE-",
            "trailer",
            "content-length",
            "via",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(hop_bit(&name), 0, "{name}");
        }
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
    fn the_usual_connection_values_alone_are_removed_and_nothing_else() {
        for value in ["keep-alive", "Keep-Alive", "close", "CLOSE"] {
            let mut h = map(&[
                ("connection", value),
                ("keep-alive", "timeout=5"),
                ("content-length", "2"),
                ("x-end-to-end", "yes"),
            ]);
            strip_hop_by_hop(&mut h, false);
            let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
            left.sort_unstable();
            assert_eq!(left, vec!["content-length", "x-end-to-end"], "{value}");
        }
        // Nothing hop-by-hop: the map is untouched.
        let mut h = map(&[("content-type", "text/plain"), ("x-a", "1")]);
        let before = h.clone();
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h, before);
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
    fn forwarded_follows_the_host_of_each_request_on_a_connection() {
        let peer = Peer::new("10.1.2.3:5000".parse().unwrap(), false);
        for host in ["a.example", "b.example", "a.example", "b.example"] {
            let mut h = HeaderMap::new();
            set_forwarding(&mut h, &peer, Some(&HeaderValue::from_static(host)), "http");
            assert_eq!(
                h["forwarded"],
                format!("for=10.1.2.3;proto=http;host=\"{host}\"")
            );
        }
        let mut h = HeaderMap::new();
        set_forwarding(&mut h, &peer, None, "http");
        assert_eq!(h["forwarded"], "for=10.1.2.3;proto=http");
    }

    #[test]
    fn via_is_appended() {
        let mut h = map(&[("via", "1.0 edge")]);
        add_via(&mut h, Version::HTTP_11);
        assert_eq!(h["via"], "1.0 edge, 1.1 ficus");
    }
}
