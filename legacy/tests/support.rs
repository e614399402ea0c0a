//! Starting a legacy server over generated data, and a thin HTTP client around it.

use fitness_data::password::{demo_email, demo_password};
use fitness_data::rusqlite::Connection;
use fitness_data::{GenerateConfig, generate, open_in_memory};
use fitness_legacy::{AppState, Config, Running, start};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

/// Seed and size of the dataset most tests use.
pub const SEED: u64 = 42;
pub const USERS: u32 = 200;

/// A small generated database.
pub fn db(seed: u64, users: u32) -> Connection {
    let mut conn = open_in_memory().unwrap();
    generate(&mut conn, &GenerateConfig::small(seed, users)).unwrap();
    conn
}

/// The app state over a small generated database.
pub fn state() -> AppState {
    AppState::new(db(SEED, USERS), Config::default())
}

/// A running legacy over its own small dataset, plus a client.
pub struct TestLegacy {
    pub server: Running,
    pub http: reqwest::Client,
}

impl TestLegacy {
    pub async fn start() -> Self {
        Self::with_state(state()).await
    }

    pub async fn with_state(state: AppState) -> Self {
        let server = start(state, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        Self {
            server,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// Logs user `id` in with the demo password; returns (session cookie value, jwt).
    pub async fn login(&self, id: i64) -> (String, String) {
        let res = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&json!({"email": demo_email(id), "password": demo_password(id)}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let cookie = res
            .headers()
            .get(SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let session = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("legacy_session=")
            .unwrap()
            .to_owned();
        let body: Value = res.json().await.unwrap();
        (session, body["token"].as_str().unwrap().to_owned())
    }

    /// A request with the session cookie of `session`.
    pub fn with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        session: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header(COOKIE, format!("legacy_session={session}"))
    }

    /// A request with `Authorization: Bearer jwt`.
    pub fn with_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        jwt: &str,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(jwt)
    }
}

/// Status and JSON body.
pub async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// Asserts a JSON error body with this status, code and message.
pub async fn assert_error(res: reqwest::Response, status: u16, code: &str, message: &str) {
    let (s, body) = json(res).await;
    assert_eq!(
        (s, body["error"].as_str(), body["message"].as_str()),
        (status, Some(code), Some(message)),
        "{body}"
    );
}
