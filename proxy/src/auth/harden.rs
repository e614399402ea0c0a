//! Response hardening: security headers on every response Ficus sends, proxied or its own.
//!
//! Set (overwriting the upstream's): `Content-Security-Policy` (the route's, default
//! `default-src 'none'; frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`,
//! `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, and `Cache-Control: no-store`
//! when the request was authenticated. Removed: `Server`, `X-Powered-By`.
//! `Strict-Transport-Security` is added by the TLS listener only.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

pub const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

static X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");
static REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");

/// Applies the hardening headers.
pub fn apply(headers: &mut HeaderMap, csp: &HeaderValue, authenticated: bool) {
    headers.remove(header::SERVER);
    headers.remove(&X_POWERED_BY);
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(&REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if authenticated {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_headers_are_replaced_and_leaks_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::SERVER, HeaderValue::from_static("Apache/2.2"));
        h.insert("x-powered-by", HeaderValue::from_static("PHP/5.4"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("script-src *"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
        apply(&mut h, &HeaderValue::from_static(DEFAULT_CSP), true);
        assert!(h.get(header::SERVER).is_none());
        assert!(h.get("x-powered-by").is_none());
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], DEFAULT_CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        let mut anon = HeaderMap::new();
        anon.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        apply(&mut anon, &HeaderValue::from_static(DEFAULT_CSP), false);
        assert_eq!(anon[header::CACHE_CONTROL], "max-age=60");
    }
}
