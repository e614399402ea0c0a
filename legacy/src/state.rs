//! What every handler shares: the database connection, the JWT key and the session-token
//! generator. The legacy is naive on purpose: one connection behind one mutex.

use std::sync::{Arc, Mutex};

use fitness_data::rusqlite::Connection;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::error::ApiError;

/// The JWT secret used when `LEGACY_JWT_SECRET` is not set. Public, for demos only.
pub const DEFAULT_JWT_SECRET: &str = "ficus-legacy-demo-secret-do-not-use-in-production";

/// How long a login session lasts (24 h).
pub const SESSION_TTL_SECS: i64 = 24 * 3600;

/// How long a JWT lasts (1 h).
pub const JWT_TTL_SECS: i64 = 3600;

/// Settings of the legacy app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// HS256 secret of the JWTs it issues and accepts.
    pub jwt_secret: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            jwt_secret: DEFAULT_JWT_SECRET.to_owned(),
        }
    }
}

impl Config {
    /// From the environment: `LEGACY_JWT_SECRET` (default [`DEFAULT_JWT_SECRET`]).
    pub fn from_env() -> Self {
        match std::env::var("LEGACY_JWT_SECRET") {
            Ok(secret) if !secret.is_empty() => Self { jwt_secret: secret },
            _ => Self::default(),
        }
    }
}

/// Shared state of the legacy app; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    db: Arc<Mutex<Connection>>,
    pub(crate) config: Arc<Config>,
    tokens: Arc<Mutex<ChaCha20Rng>>,
}

impl AppState {
    /// State over an open, populated database.
    pub fn new(conn: Connection, config: Config) -> Self {
        Self {
            db: Arc::new(Mutex::new(conn)),
            config: Arc::new(config),
            tokens: Arc::new(Mutex::new(ChaCha20Rng::from_os_rng())),
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs `f` on the connection in the blocking pool.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let mut conn = db
                .lock()
                .map_err(|_| ApiError::Internal("database mutex poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("database task failed: {e}")))?
    }

    /// A new unguessable session token (32 random bytes, hex).
    pub fn new_session_token(&self) -> Result<String, ApiError> {
        let mut rng = self
            .tokens
            .lock()
            .map_err(|_| ApiError::Internal("token rng mutex poisoned".into()))?;
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }
}
