//! Cross-site request forgery defence for cookie-authenticated unsafe requests.
//!
//! A browser attaches cookies to cross-site requests; it does not attach an
//! `Authorization` header, so bearer-token requests are exempt. For a cookie-authenticated
//! POST/PUT/PATCH/DELETE (any method but GET, HEAD, OPTIONS, TRACE):
//! 1. `Sec-Fetch-Site: same-origin` or `none` (typed URL, bookmark) passes;
//! 2. else `Origin` must be one of `allowed_origins` (`Origin: null` never is);
//! 3. without `Origin`, the origin of `Referer` must be;
//! 4. anything else is refused (403).
//!
//! Origins compare as ASCII case-insensitive `scheme://host[:port]` strings.

use http::{HeaderMap, Method};

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("cross-site request refused")]
    CrossSite,
    #[error("request origin is null")]
    NullOrigin,
    #[error("request has no origin")]
    NoOrigin,
}

/// Whether `method` can change state.
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Checks a cookie-authenticated request with an unsafe method.
pub fn check(headers: &HeaderMap, allowed_origins: &[String]) -> Result<(), CsrfError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.as_bytes();
        if site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none") {
            return Ok(());
        }
    }
    let allowed = |origin: &str| {
        let origin = origin.trim_end_matches('/');
        allowed_origins
            .iter()
            .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    };
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin.to_str().map_err(|_| CsrfError::CrossSite)?.trim();
        if origin.eq_ignore_ascii_case("null") {
            return Err(CsrfError::NullOrigin);
        }
        return if allowed(origin) {
            Ok(())
        } else {
            Err(CsrfError::CrossSite)
        };
    }
    if let Some(referer) = headers.get(http::header::REFERER) {
        let referer = referer.to_str().map_err(|_| CsrfError::CrossSite)?;
        return match origin_of(referer) {
            Some(origin) if allowed(origin) => Ok(()),
            _ => Err(CsrfError::CrossSite),
        };
    }
    Err(CsrfError::NoOrigin)
}

/// `scheme://authority` of an absolute URL.
fn origin_of(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")?;
    let rest = &url[scheme_end + 3..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    Some(&url[..scheme_end + 3 + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    const ALLOWED: &[&str] = &["https://app.fitness.example"];

    fn run(pairs: &[(&'static str, &'static str)]) -> Result<(), CsrfError> {
        let allowed: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
        check(&headers(pairs), &allowed)
    }

    #[test]
    fn decisions() {
        assert_eq!(run(&[("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(run(&[("sec-fetch-site", "none")]), Ok(()));
        assert_eq!(run(&[("origin", "https://app.fitness.example")]), Ok(()));
        assert_eq!(run(&[("origin", "HTTPS://APP.fitness.example/")]), Ok(()));
        assert_eq!(
            run(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example")
            ]),
            Err(CsrfError::CrossSite)
        );
        assert_eq!(
            run(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://app.fitness.example")
            ]),
            Ok(())
        );
        assert_eq!(run(&[("origin", "null")]), Err(CsrfError::NullOrigin));
        assert_eq!(
            run(&[("referer", "https://app.fitness.example/page?x=1")]),
            Ok(())
        );
        assert_eq!(
            run(&[("referer", "https://app.fitness.example.evil.example/")]),
            Err(CsrfError::CrossSite)
        );
        assert_eq!(run(&[("referer", "not a url")]), Err(CsrfError::CrossSite));
        assert_eq!(run(&[]), Err(CsrfError::NoOrigin));
    }

    #[test]
    fn safe_methods_are_not_checked() {
        assert!(!is_unsafe(&Method::GET));
        assert!(!is_unsafe(&Method::HEAD));
        assert!(is_unsafe(&Method::POST));
        assert!(is_unsafe(&Method::DELETE));
        assert!(is_unsafe(&Method::from_bytes(b"PROPFIND").expect("method")));
    }
}
