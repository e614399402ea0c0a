//! Edge security through a running proxy in front of a recording upstream: every check
//! asserts the status and that nothing reached the upstream when it should not have.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const RSA_PRIVATE: &[u8] = include_bytes!("fixtures/keys/rsa-private.pem");
const RSA_OTHER: &[u8] = include_bytes!("fixtures/keys/rsa-other-private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("fixtures/keys/rsa-public.pem");
const EC_PRIVATE: &[u8] = include_bytes!("fixtures/keys/ec-private.pem");
const JWKS: &[u8] = include_bytes!("fixtures/keys/jwks.json");
const ISSUER: &str = "https://auth.fitness.example";
const AUDIENCE: &str = "fitness-api";
const APP: &str = "https://app.fitness.example";

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn claims(sub: &str, roles: &[&str]) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300, "roles": roles})
}

fn rs256(kid: Option<&str>, claims: &Value, key: &[u8]) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = kid.map(str::to_owned);
    encode(&h, claims, &EncodingKey::from_rsa_pem(key).unwrap()).unwrap()
}

fn token(sub: &str, roles: &[&str]) -> String {
    rs256(Some("rsa-1"), &claims(sub, roles), RSA_PRIVATE)
}

/// The routes of the fitness platform's user API, behind [auth] with the test JWKS.
fn secured(legacy: &TestUpstream, extra: &str) -> String {
    routes_toml(
        &[("legacy", legacy)],
        &format!(
            r#"[auth]
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["RS256", "ES256"]
jwks_file = "jwks.json"
leeway_seconds = 0
cookie = "session"
allowed_origins = ["{APP}"]
admin_roles = ["admin"]
strip_headers = ["x-remote-user"]

[limits]
max_uri_bytes = 512
max_headers = 40
max_body_bytes = 1000000
body_read_timeout_ms = 400
header_read_timeout_ms = 400

[[routes]]
name = "user-profile"
path = "/api/users/{{user_id}}"
owner = "user_id"

[[routes]]
name = "user-sub"
path = "/api/users/{{user_id}}/{{*rest}}"
owner = "user_id"
max_body_bytes = 100

[[routes]]
name = "coach-only"
path = "/api/coach/{{*rest}}"
roles = ["coach"]

[[routes]]
name = "catalogue"
path = "/api/content/{{*rest}}"
auth = "public"

[[routes]]
name = "feed"
path = "/api/feed"
auth = "optional"
content_security_policy = "default-src 'self'"
{extra}"#
        ),
    )
}

fn start(legacy: &TestUpstream, extra: &str) -> TestProxy {
    TestProxy::start_with_files(&secured(legacy, extra), &[("jwks.json", JWKS)])
}

async fn call(c: &TestClient, url: String, headers: &[(&str, &str)]) -> Got {
    call_m(c, "GET", url, headers, "").await
}

async fn call_m(
    c: &TestClient,
    method: &str,
    url: String,
    headers: &[(&str, &str)],
    body: &str,
) -> Got {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(c, b.body(Full::from(body.to_owned())).unwrap()).await
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_and_identity_is_injected() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();

    let missing = call(&c, proxy.url("/api/users/7"), &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    assert_eq!(missing.json()["error"], "authentication required");
    assert_eq!(legacy.count(), 0, "nothing reached the upstream");

    let t = token("7", &["member"]);
    let auth = bearer(&t);
    let ok = call(
        &c,
        proxy.url("/api/users/7"),
        &[
            ("authorization", &auth),
            ("x-ficus-subject", "1"),
            ("X_Ficus_Roles", "admin"),
            ("x-user-id", "1"),
            ("x_remote_user", "1"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200);
    let seen = &legacy.seen()[0];
    assert_eq!(seen.headers["x-ficus-subject"], "7");
    assert_eq!(seen.headers["x-ficus-roles"], "member");
    assert_eq!(seen.headers.get_all("x-ficus-subject").iter().count(), 1);
    for spoofed in ["x_ficus_roles", "x-user-id", "x_remote_user"] {
        assert!(
            seen.headers.get(spoofed).is_none(),
            "{spoofed} reached the upstream"
        );
    }
    // ES256 from the same JWKS.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec-1".into());
    let es = encode(
        &h,
        &claims("7", &[]),
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
    )
    .unwrap();
    assert_eq!(
        call(
            &c,
            proxy.url("/api/users/7"),
            &[("authorization", &bearer(&es))]
        )
        .await
        .status,
        200
    );
    assert_eq!(legacy.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_401_invalid_token() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();
    let good = token("7", &[]);
    let (_, rest) = good.split_once('.').unwrap();
    let (payload, _) = rest.split_once('.').unwrap();
    let header = |h: &str| URL_SAFE_NO_PAD.encode(h);
    let mut expired = claims("7", &[]);
    expired["exp"] = json!(now() - 120);
    let mut early = claims("7", &[]);
    early["nbf"] = json!(now() + 600);
    let mut wrong_aud = claims("7", &[]);
    wrong_aud["aud"] = json!("other-api");
    let mut wrong_iss = claims("7", &[]);
    wrong_iss["iss"] = json!("https://evil.example");
    // HS256 "signed" with the RSA public key: the classic key-confusion attack.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims("7", &[]),
        &EncodingKey::from_secret(RSA_PUBLIC).unwrap(),
    )
    .unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("expired", rs256(Some("rsa-1"), &expired, RSA_PRIVATE)),
        ("not yet valid", rs256(Some("rsa-1"), &early, RSA_PRIVATE)),
        (
            "wrong audience",
            rs256(Some("rsa-1"), &wrong_aud, RSA_PRIVATE),
        ),
        (
            "wrong issuer",
            rs256(Some("rsa-1"), &wrong_iss, RSA_PRIVATE),
        ),
        ("forged", rs256(Some("rsa-1"), &claims("7", &[]), RSA_OTHER)),
        ("forged, no kid", rs256(None, &claims("7", &[]), RSA_OTHER)),
        (
            "unknown kid",
            rs256(Some("nope"), &claims("7", &[]), RSA_PRIVATE),
        ),
        (
            "alg none",
            format!("{}.{payload}.", header(r#"{"alg":"none"}"#)),
        ),
        ("key confusion", confused),
        (
            "crit",
            format!(
                "{}.{rest}",
                header(r#"{"alg":"RS256","kid":"rsa-1","crit":["x"]}"#)
            ),
        ),
        ("oversized", format!("{}.{payload}.sig", "A".repeat(9000))),
        (
            "bad base64",
            format!("{}.{payload}.*", header(r#"{"alg":"RS256"}"#)),
        ),
        ("two parts", "abc.def".to_owned()),
    ];
    for (what, t) in cases {
        let got = call(
            &c,
            proxy.url("/api/users/7"),
            &[("authorization", &bearer(&t))],
        )
        .await;
        assert_eq!(got.status, 401, "{what}");
        let www = got.headers["www-authenticate"].to_str().unwrap();
        assert!(
            www.starts_with("Bearer error=\"invalid_token\""),
            "{what}: {www}"
        );
    }
    assert_eq!(legacy.count(), 0, "no bad token reached the upstream");
    let metrics = get(&c, &proxy.admin_url("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert_eq!(
        counter(&text, "ficus_rejected_total{reason=\"invalid_token\"}"),
        13.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_ownership_are_enforced_on_every_spelling() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();
    let member = bearer(&token("7", &["member"]));
    let admin = bearer(&token("1", &["admin"]));
    let coach = bearer(&token("9", &["coach"]));

    assert_eq!(
        call(
            &c,
            proxy.url("/api/coach/plans"),
            &[("authorization", &member)]
        )
        .await
        .status,
        403
    );
    assert_eq!(
        call(
            &c,
            proxy.url("/api/coach/plans"),
            &[("authorization", &coach)]
        )
        .await
        .status,
        200
    );

    for other in [
        "/api/users/8",
        "/api/users/08",
        "/api/users/%38",
        "/api/users/7/../8",
        "/api/users/7/%2e%2e/8",
        "//api//users/8/",
        "/api/users/./8/favorites",
        "/api/users/8/subscription",
    ] {
        let got = call(&c, proxy.url(other), &[("authorization", &member)]).await;
        assert_eq!(got.status, 403, "{other}");
        assert_eq!(
            got.json()["error"],
            "forbidden: not the owner of this resource"
        );
    }
    let upstream_before = legacy.count();
    assert_eq!(upstream_before, 1, "only the coach request got through");
    assert_eq!(
        call(&c, proxy.url("/api/users/8"), &[("authorization", &admin)])
            .await
            .status,
        200
    );
    let mine = call(
        &c,
        proxy.url("/api/users/%37/./favorites"),
        &[("authorization", &member)],
    )
    .await;
    assert_eq!(mine.status, 200);
    // The upstream gets exactly the form that was checked.
    assert_eq!(legacy.seen().last().unwrap().uri, "/api/users/7/favorites");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_paths_are_refused_with_400() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();
    let member = bearer(&token("7", &["member"]));
    for bad in [
        "/api/users/7%2f..%2f8",
        "/api/users/7%5c..%5c8",
        "/api/users/7;jsessionid=1",
        "/api/users/%00",
        "/api/users/%ff",
        "/api/users/%252e%252e/8",
        "/api/users/%zz",
    ] {
        let got = call(&c, proxy.url(bad), &[("authorization", &member)]).await;
        assert_eq!(got.status, 400, "{bad}");
        assert_eq!(got.json()["error"], "invalid path");
    }
    assert_eq!(legacy.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_writes_need_a_trusted_origin_and_bearer_writes_do_not() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();
    let cookie = format!("theme=dark; session={}", token("7", &["member"]));
    let url = || proxy.url("/api/users/7/favorites");
    let post = |headers: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = url();
        let cookie = cookie.clone();
        async move {
            let mut all: Vec<(&str, &str)> = vec![("cookie", cookie.as_str())];
            all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
            call_m(&c, "POST", url, &all, "{}").await.status
        }
    };
    assert_eq!(post(vec![]).await, 403, "no origin at all");
    assert_eq!(post(vec![("origin", "null".into())]).await, 403);
    assert_eq!(
        post(vec![("origin", "https://evil.example".into())]).await,
        403
    );
    assert_eq!(
        post(vec![
            ("sec-fetch-site", "cross-site".into()),
            ("origin", "https://evil.example".into())
        ])
        .await,
        403
    );
    assert_eq!(
        post(vec![("referer", "https://evil.example/x".into())]).await,
        403
    );
    assert_eq!(legacy.count(), 0, "no forged write reached the upstream");
    assert_eq!(post(vec![("origin", APP.into())]).await, 200);
    assert_eq!(
        post(vec![("sec-fetch-site", "same-origin".into())]).await,
        200
    );
    assert_eq!(
        post(vec![("referer", format!("{APP}/settings"))]).await,
        200
    );
    // A cookie GET is not a write.
    assert_eq!(call(&c, url(), &[("cookie", &cookie)]).await.status, 200);
    // Bearer tokens are not sent by browsers on their own: no CSRF check.
    let b = bearer(&token("7", &[]));
    let got = call_m(
        &c,
        "POST",
        url(),
        &[("authorization", &b), ("origin", "https://evil.example")],
        "{}",
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(legacy.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_is_required_public_is_anonymous_optional_verifies_when_present() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();
    assert_eq!(
        call(&c, proxy.url("/anything/else"), &[]).await.status,
        401,
        "[default] auth is required"
    );
    let t = bearer(&token("7", &[]));
    let public = call(
        &c,
        proxy.url("/api/content/1"),
        &[("authorization", &t), ("x-ficus-subject", "9")],
    )
    .await;
    assert_eq!(public.status, 200);
    let seen = legacy.seen();
    assert!(
        seen[0].headers.get("x-ficus-subject").is_none(),
        "public routes carry no identity"
    );
    assert!(
        seen[0].headers.get("authorization").is_some(),
        "credentials still reach the legacy app"
    );
    assert_eq!(call(&c, proxy.url("/api/feed"), &[]).await.status, 200);
    assert_eq!(
        call(
            &c,
            proxy.url("/api/feed"),
            &[("authorization", "Bearer x.y.z")]
        )
        .await
        .status,
        401
    );
    let feed = call(&c, proxy.url("/api/feed"), &[("authorization", &t)]).await;
    assert_eq!(feed.status, 200);
    assert_eq!(
        legacy.seen().last().unwrap().headers["x-ficus-subject"],
        "7"
    );
    assert_eq!(
        feed.headers["content-security-policy"],
        "default-src 'self'"
    );
    // CORS preflights carry no credentials: they pass, anonymously.
    let preflight = call_m(
        &c,
        "OPTIONS",
        proxy.url("/api/users/7"),
        &[
            ("origin", APP),
            ("access-control-request-method", "PATCH"),
            ("x-ficus-subject", "7"),
        ],
        "",
    )
    .await;
    assert_eq!(preflight.status, 200);
    let seen = legacy.seen().pop().unwrap();
    assert_eq!(seen.method, "OPTIONS");
    assert!(seen.headers.get("x-ficus-subject").is_none());
    let plain = call_m(&c, "OPTIONS", proxy.url("/api/users/7"), &[], "").await;
    assert_eq!(plain.status, 401, "a plain OPTIONS is not a preflight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_hardened_and_errors_reflect_nothing() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let c = client();
    let t = bearer(&token("7", &[]));
    for got in [
        call(&c, proxy.url("/api/users/7"), &[("authorization", &t)]).await,
        call(&c, proxy.url("/api/content/top"), &[]).await,
        call(
            &c,
            proxy.url("/api/users/8?q=%3Cscript%3Ealert(1)%3C/script%3E"),
            &[("authorization", &t)],
        )
        .await,
    ] {
        assert_eq!(
            got.headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(got.headers["x-content-type-options"], "nosniff");
        assert_eq!(got.headers["x-frame-options"], "DENY");
        assert_eq!(got.headers["referrer-policy"], "no-referrer");
        assert!(got.headers.get("server").is_none());
        assert!(got.headers.get("x-powered-by").is_none());
        assert!(!String::from_utf8_lossy(&got.body).contains("<script"));
        assert!(
            got.headers.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    let authed = call(&c, proxy.url("/api/users/7"), &[("authorization", &t)]).await;
    assert_eq!(authed.headers["cache-control"], "no-store");
    let anonymous = call(&c, proxy.url("/api/content/top"), &[]).await;
    assert!(anonymous.headers.get("cache-control").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_answer_414_431_413_408_and_429() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(
        &legacy,
        "\n[limits.per_client]\nrequests_per_second = 0.5\nburst = 30\n",
    );
    let c = client();
    let t = bearer(&token("7", &[]));
    let long = format!("/api/content/{}", "a".repeat(600));
    assert_eq!(call(&c, proxy.url(&long), &[]).await.status, 414);
    let many: Vec<(String, String)> = (0..50).map(|i| (format!("x-h{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        call(&c, proxy.url("/api/content/1"), &many).await.status,
        431
    );
    let big = "x".repeat(200);
    let got = call_m(
        &c,
        "POST",
        proxy.url("/api/users/7/favorites"),
        &[("authorization", &t)],
        &big,
    )
    .await;
    assert_eq!(got.status, 413, "Content-Length over the route's limit");
    assert_eq!(legacy.count(), 0);

    // Chunked, over the limit: cut off at the limit.
    let raw_auth = format!("authorization: {t}\r\n");
    let chunked = format!(
        "POST /api/users/7/favorites HTTP/1.1\r\nhost: x\r\n{raw_auth}transfer-encoding: chunked\r\n\r\nc8\r\n{big}\r\n0\r\n\r\n"
    );
    assert!(
        raw(&proxy, chunked.as_bytes())
            .await
            .starts_with("HTTP/1.1 413")
    );

    // A body that stops arriving: 408 after body_read_timeout_ms.
    let stalled = format!(
        "POST /api/users/7/favorites HTTP/1.1\r\nhost: x\r\n{raw_auth}content-length: 50\r\n\r\n0123456789"
    );
    assert!(
        raw(&proxy, stalled.as_bytes())
            .await
            .starts_with("HTTP/1.1 408")
    );

    // Rate limit per client address: the burst is spent by now or soon.
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let got = call(&c, proxy.url("/api/content/1"), &[]).await;
        if got.status == 429 {
            let retry: u64 = got.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=3).contains(&retry), "retry-after {retry}");
        }
        statuses.push(got.status.as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
}

/// Sends raw bytes, returns everything read until the proxy closes (bounded).
async fn raw(proxy: &TestProxy, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the proxy kept the connection open");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused_or_reframed() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(&legacy, "");
    let smuggled = "GET /api/content/smuggled HTTP/1.1\r\nhost: x\r\n\r\n";
    // Obfuscated Transfer-Encoding and conflicting lengths: 400, connection closed.
    for (what, head) in [
        ("xchunked", "transfer-encoding: xchunked\r\n".to_owned()),
        (
            "chunked, identity",
            "transfer-encoding: chunked, identity\r\n".to_owned(),
        ),
        (
            "two TE lines",
            "transfer-encoding: chunked\r\ntransfer-encoding: identity\r\n".to_owned(),
        ),
        (
            "space before colon",
            "transfer-encoding : chunked\r\n".to_owned(),
        ),
        (
            "two lengths",
            "content-length: 5\r\ncontent-length: 6\r\n".to_owned(),
        ),
        ("bad length", "content-length: +5\r\n".to_owned()),
    ] {
        let req =
            format!("POST /api/content/1 HTTP/1.1\r\nhost: x\r\n{head}\r\n0\r\n\r\n{smuggled}");
        let got = raw(&proxy, req.as_bytes()).await;
        assert!(got.starts_with("HTTP/1.1 400"), "{what}: {got}");
        assert_eq!(
            got.matches("HTTP/1.1").count(),
            1,
            "{what}: one response, then closed"
        );
    }
    assert_eq!(legacy.count(), 0);
    // Framing hyper would accept (chunked wins over the length; equal lengths merge) is
    // refused at the edge as well: 400, the connection closed, nothing forwarded, and
    // the bytes after the body never read as a second request. Both orders of the two
    // headers, since hyper drops the length whichever comes first.
    for (what, head, body) in [
        (
            "length then chunked",
            "content-length: 4\r\ntransfer-encoding: chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "chunked then length",
            "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "two equal lengths",
            "content-length: 3\r\ncontent-length: 3\r\n",
            "abc",
        ),
    ] {
        let req = format!("POST /api/content/1 HTTP/1.1\r\nhost: x\r\n{head}\r\n{body}{smuggled}");
        let got = raw(&proxy, req.as_bytes()).await;
        assert!(got.starts_with("HTTP/1.1 400"), "{what}: {got}");
        assert!(
            got.to_ascii_lowercase().contains("connection: close"),
            "{what}: {got}"
        );
        assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{what}: {got}");
    }
    // The same connection served a good request first: only the bad one is refused.
    let req = format!(
        "GET /api/content/2 HTTP/1.1\r\nhost: x\r\n\r\nPOST /api/content/1 HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n{smuggled}"
    );
    let got = raw(&proxy, req.as_bytes()).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(got.matches("HTTP/1.1 400").count(), 1, "{got}");
    assert_eq!(got.matches("HTTP/1.1 ").count(), 2, "{got}");
    let seen = legacy.seen();
    assert_eq!(seen.len(), 1, "only the good request reached the upstream");
    assert_eq!(seen[0].uri, "/api/content/2");
    let metrics = get(&client(), &proxy.admin_url("/metrics")).await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains("ficus_rejected_total{reason=\"conflicting_framing\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("ficus_rejected_total{reason=\"duplicate_content_length\"} 1"));
}

/// Slowloris: a head that has begun but is not complete within
/// `header_read_timeout_ms` (400 here) gets a JSON 408 and the connection is closed; an
/// idle keep-alive connection between requests is not a slow head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_gets_408_and_an_idle_connection_does_not() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = start(
        &legacy,
        "\n[[routes]]\nname = \"slow\"\npath = \"/slow/{ms}\"\nauth = \"public\"\n",
    );
    // The head trickles in, a byte at a time, and never ends.
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    let (mut rd, mut wr) = s.split();
    let trickle = async {
        for b in b"GET /api/content/1 HTTP/1.1\r\nhost: x\r\nx-slow: "
            .iter()
            .cycle()
            .take(400)
        {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut out = Vec::new();
    let read =
        async { tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut out)).await };
    let (_, read) = tokio::join!(trickle, read);
    assert!(read.is_ok(), "the proxy kept the slow connection open");
    let got = String::from_utf8_lossy(&out);
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(
        got.contains("\"error\":\"request head not received in time\""),
        "{got}"
    );
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
    assert_eq!(legacy.count(), 0);

    // A response that takes longer than the head timeout, with the next head already
    // begun behind it (pipelined): the first response arrives whole, then the 408.
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    s.write_all(b"GET /slow/900 HTTP/1.1\r\nhost: x\r\n\r\nGET /api/content/1 HTTP/1.1\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "closed after the 408");
    let got = String::from_utf8_lossy(&out);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert_eq!(got.matches("HTTP/1.1 408").count(), 1, "{got}");
    assert!(got.find("HTTP/1.1 408") > got.find("HTTP/1.1 200"), "{got}");

    // Idle between requests for longer than the head timeout: still served.
    let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
    let one = b"GET /api/content/1 HTTP/1.1\r\nhost: x\r\n\r\n";
    for _ in 0..2 {
        s.write_all(one).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Twice the head timeout: an idle connection is bounded by idle_timeout_ms.
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    let metrics = get(&client(), &proxy.admin_url("/metrics")).await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains("ficus_rejected_total{reason=\"header_timeout\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_at_accept() {
    let legacy = TestUpstream::start("legacy").await;
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy)],
        "[limits]\nmax_connections = 2\n",
    ));
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(proxy.proxy).await.unwrap();
        s.write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
        held.push(s);
    }
    let got = raw(&proxy, b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(got, "", "the third connection is closed without an answer");
    drop(held);
    let c = client();
    let metrics = get(&c, &proxy.admin_url("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert_eq!(counter(&text, "ficus_connections_refused_total"), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_minted_by_pyjwt_interoperate() {
    let legacy = TestUpstream::start("legacy").await;
    let secret = "pyjwt-interop-secret-at-least-32-bytes!";
    let text = secured(&legacy, "").replace(
        "jwks_file = \"jwks.json\"",
        "public_key_files = [\"rsa.pem\", \"ec.pem\"]\nhs256_secret_env = \"FICUS_TEST_SECRET\"",
    );
    let text = text.replace(
        "algorithms = [\"RS256\", \"ES256\"]",
        "algorithms = [\"RS256\", \"ES256\", \"HS256\"]",
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("rsa.pem"), RSA_PUBLIC).unwrap();
    std::fs::write(
        tmp.path().join("ec.pem"),
        include_bytes!("fixtures/keys/ec-public.pem"),
    )
    .unwrap();
    let config = tmp.path().join("routes.toml");
    std::fs::write(&config, text).unwrap();
    // The secret goes to the child's environment only.
    let proxy = TestProxy::spawn_env(&config, &[("FICUS_TEST_SECRET", secret)]);
    let c = client();
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
    let mint = |alg: &str, key: String, claims: Value| {
        let out = std::process::Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/mint.py"
            ))
            .args([alg, &key, "-", &claims.to_string()])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "PyJWT minting failed (scripts/test installs it: pip install pyjwt cryptography): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let good =
        json!({"sub": "7", "iss": ISSUER, "aud": AUDIENCE, "exp": "+300", "roles": ["member"]});
    for (alg, key) in [
        ("RS256", format!("{keys}/rsa-private.pem")),
        ("ES256", format!("{keys}/ec-private.pem")),
        ("HS256", secret.to_owned()),
    ] {
        let t = mint(alg, key.clone(), good.clone());
        let got = call(
            &c,
            proxy.url("/api/users/7"),
            &[("authorization", &bearer(&t))],
        )
        .await;
        assert_eq!(got.status, 200, "{alg}");
        assert_eq!(
            legacy.seen().last().unwrap().headers["x-ficus-subject"],
            "7"
        );
        let mut expired = good.clone();
        expired["exp"] = json!("-120");
        let t = mint(alg, key.clone(), expired);
        assert_eq!(
            call(
                &c,
                proxy.url("/api/users/7"),
                &[("authorization", &bearer(&t))]
            )
            .await
            .status,
            401,
            "{alg} expired"
        );
        let mut aud = good.clone();
        aud["aud"] = json!("someone-else");
        let t = mint(alg, key, aud);
        assert_eq!(
            call(
                &c,
                proxy.url("/api/users/7"),
                &[("authorization", &bearer(&t))]
            )
            .await
            .status,
            401,
            "{alg} audience"
        );
    }
    assert_eq!(legacy.count(), 3);
}

/// A JWKS endpoint whose document can be swapped, counting fetches.
struct JwksServer {
    addr: std::net::SocketAddr,
    doc: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    async fn start(doc: String) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc = std::sync::Arc::new(std::sync::Mutex::new(doc));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (d, f) = (doc.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (d, f) = (d.clone(), f.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let body = d.lock().unwrap().clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::<
                                bytes::Bytes,
                            >::from(
                                body
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        JwksServer { addr, doc, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn jwks_with(kids: &[&str]) -> String {
    let all: Value = serde_json::from_slice(JWKS).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({ "keys": keys }).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_is_cached_and_refetched_for_new_kids_at_most_once_per_interval() {
    let legacy = TestUpstream::start("legacy").await;
    let jwks = JwksServer::start(jwks_with(&["ec-1"])).await;
    let with_url = |min_refresh: u64| {
        secured(&legacy, "").replace(
            "jwks_file = \"jwks.json\"",
            &format!(
                "jwks_url = \"http://{}/.well-known/jwks.json\"\njwks_ttl_seconds = 3600\njwks_min_refresh_seconds = {min_refresh}",
                jwks.addr
            ),
        )
    };
    let c = client();
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec-1".into());
    let ec = bearer(
        &encode(
            &h,
            &claims("7", &[]),
            &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        )
        .unwrap(),
    );
    let rsa = bearer(&token("7", &[]));
    let user = |p: &TestProxy| p.url("/api/users/7");

    // Refetch allowed on every unknown kid (min_refresh = 0).
    let eager = TestProxy::start(&with_url(0));
    assert_eq!(
        call(&c, user(&eager), &[("authorization", &ec)])
            .await
            .status,
        200
    );
    assert_eq!(
        call(&c, user(&eager), &[("authorization", &ec)])
            .await
            .status,
        200
    );
    assert_eq!(jwks.fetches(), 1, "cached for the TTL");
    *jwks.doc.lock().unwrap() = jwks_with(&["ec-1", "rsa-1"]);
    assert_eq!(
        call(&c, user(&eager), &[("authorization", &rsa)])
            .await
            .status,
        200,
        "key rotation picked up"
    );
    assert_eq!(jwks.fetches(), 2);
    assert_eq!(
        call(&c, user(&eager), &[("authorization", &rsa)])
            .await
            .status,
        200
    );
    assert_eq!(jwks.fetches(), 2, "known kid: no fetch");
    drop(eager);

    // A fresh process, at most one refetch per hour: unknown kids cannot hammer the IdP.
    *jwks.doc.lock().unwrap() = jwks_with(&["ec-1"]);
    let careful = TestProxy::start(&with_url(3600));
    for _ in 0..5 {
        assert_eq!(
            call(&c, user(&careful), &[("authorization", &rsa)])
                .await
                .status,
            401
        );
    }
    assert_eq!(jwks.fetches(), 3, "one fetch for five unknown-kid tokens");
    assert_eq!(
        call(&c, user(&careful), &[("authorization", &ec)])
            .await
            .status,
        200
    );
    assert_eq!(legacy.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_override_and_cohort_follow_the_verified_token() {
    let legacy = TestUpstream::start("legacy").await;
    let new = TestUpstream::start("new").await;
    let text = secured(&legacy, "").replace(
        "[auth]",
        &format!("[upstreams.new]\nurl = \"{}\"\n\n[auth]", new.url()),
    ) + r#"
[[routes]]
name = "feed-canary"
path = "/api/canary/{*rest}"
mode = "canary"
extracted = "new"
[routes.canary]
percent = 0
allow = ["42"]
override_header = "X-Ficus-Route"
override_roles = ["staff"]

[limits.per_subject]
requests_per_second = 0.5
burst = 3
"#;
    let proxy = TestProxy::start_with_files(&text, &[("jwks.json", JWKS)]);
    let c = client();
    let side = |got: &Got| got.headers["x-upstream"].to_str().unwrap().to_owned();
    let member = bearer(&token("7", &["member"]));
    let staff = bearer(&token("9", &["staff"]));
    let got = call(
        &c,
        proxy.url("/api/canary/a"),
        &[("authorization", &member), ("x-ficus-route", "extracted")],
    )
    .await;
    assert_eq!(side(&got), "legacy", "override ignored without the role");
    let got = call(
        &c,
        proxy.url("/api/canary/a"),
        &[("authorization", &staff), ("x-ficus-route", "extracted")],
    )
    .await;
    assert_eq!(side(&got), "new", "override honoured for staff");
    assert!(
        new.seen()[0].headers.get("x-ficus-route").is_none(),
        "the override header is not forwarded"
    );
    // The cohort is the verified subject: user 42 is allowed, whatever header it sends.
    let vip = bearer(&token("42", &[]));
    let got = call(&c, proxy.url("/api/canary/a"), &[("authorization", &vip)]).await;
    assert_eq!(side(&got), "new");
    let got = call(
        &c,
        proxy.url("/api/canary/a"),
        &[("authorization", &member), ("x-ficus-subject", "42")],
    )
    .await;
    assert_eq!(
        side(&got),
        "legacy",
        "a spoofed subject does not choose the cohort"
    );
    // Per-subject rate limit: user 7 has spent 2 of 3; another user is not affected.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            call(
                &c,
                proxy.url("/api/canary/b"),
                &[("authorization", &member)],
            )
            .await
            .status
            .as_u16(),
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let other = bearer(&token("8", &[]));
    assert_eq!(
        call(&c, proxy.url("/api/canary/b"), &[("authorization", &other)])
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_over_https_with_a_private_ca() {
    use std::sync::Arc;
    let legacy = TestUpstream::start("legacy").await;
    // A CA and a server certificate for 127.0.0.1.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let f = fetches.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, f) = (acceptor.clone(), f.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |_req| {
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            Full::<bytes::Bytes>::from(JWKS.to_vec()),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    let text = secured(&legacy, "").replace(
        "jwks_file = \"jwks.json\"",
        &format!("jwks_url = \"https://{addr}/jwks.json\"\njwks_ca_file = \"ca.pem\""),
    );
    let proxy = TestProxy::start_with_files(&text, &[("ca.pem", ca.pem().as_bytes())]);
    let c = client();
    let t = bearer(&token("7", &[]));
    assert_eq!(
        call(&c, proxy.url("/api/users/7"), &[("authorization", &t)])
            .await
            .status,
        200
    );
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);

    // Without the private CA the identity provider is not trusted: no keys, 401.
    let untrusted = secured(&legacy, "").replace(
        "jwks_file = \"jwks.json\"",
        &format!("jwks_url = \"https://{addr}/jwks.json\"\njwks_ca_file = \"other-ca.pem\""),
    );
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let proxy =
        TestProxy::start_with_files(&untrusted, &[("other-ca.pem", other.pem().as_bytes())]);
    let got = call(&c, proxy.url("/api/users/7"), &[("authorization", &t)]).await;
    assert_eq!(got.status, 401);
    assert!(
        got.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("signing keys unavailable")
    );
    assert_eq!(legacy.count(), 1);
}
