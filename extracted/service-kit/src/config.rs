//! Configuration from the environment, checked once at startup. Every service reads the same
//! variables (documented in `docs/extracted.md`):
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `LISTEN` | address to bind | the service's own (`127.0.0.1:8091` ranking, `:8092` subscriptions, `:8093` preferences) |
//! | `DATABASE_URL` | `postgres://...` selects PostgreSQL; wins over `DATABASE_PATH` | unset |
//! | `DATABASE_PATH` | SQLite file of the shared database | `data/fitness.db` |
//! | `DATABASE_SCHEMA` | PostgreSQL schema (`search_path`) | unset (server default, `public`) |
//! | `DATABASE_POOL` | PostgreSQL connections per service | `4` |

use std::net::SocketAddr;
use std::path::PathBuf;

/// The SQLite file used when neither `DATABASE_URL` nor `DATABASE_PATH` is set.
pub const DEFAULT_DATABASE_PATH: &str = "data/fitness.db";

/// PostgreSQL connections per service when `DATABASE_POOL` is unset.
pub const DEFAULT_POOL: usize = 4;

/// Where the shared database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file made by `fitness-data` (`legacy generate`).
    Sqlite(PathBuf),
    /// A PostgreSQL server loaded with the same schema (`ficus-pg-load`).
    Postgres {
        url: String,
        schema: Option<String>,
        pool: usize,
    },
}

/// Checked settings of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    pub database: Database,
}

/// A setting that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid {name} {value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
}

impl ServiceConfig {
    /// From the process environment, with `default_listen` when `LISTEN` is unset.
    pub fn from_env(default_listen: SocketAddr) -> Result<Self, ConfigError> {
        Self::from_lookup(default_listen, |k| std::env::var(k).ok())
    }

    /// From any key lookup (tests pass a map); empty values count as unset.
    pub fn from_lookup(
        default_listen: SocketAddr,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let listen = match get("LISTEN") {
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "LISTEN",
                value: v.clone(),
                reason: "expected host:port such as 127.0.0.1:8091",
            })?,
            None => default_listen,
        };
        let database = match get("DATABASE_URL") {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let pool = match get("DATABASE_POOL") {
                    Some(v) => v
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or(ConfigError::Invalid {
                            name: "DATABASE_POOL",
                            value: v.clone(),
                            reason: "expected a number of connections from 1 to 64",
                        })?,
                    None => DEFAULT_POOL,
                };
                Database::Postgres {
                    url,
                    schema: get("DATABASE_SCHEMA"),
                    pool,
                }
            }
            Some(url) => {
                return Err(ConfigError::Invalid {
                    name: "DATABASE_URL",
                    value: redact(&url),
                    reason: "only postgres:// or postgresql:// urls are supported; use DATABASE_PATH for sqlite",
                });
            }
            None => Database::Sqlite(PathBuf::from(
                get("DATABASE_PATH").unwrap_or_else(|| DEFAULT_DATABASE_PATH.to_owned()),
            )),
        };
        Ok(Self { listen, database })
    }
}

/// The url with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ServiceConfig::from_lookup("127.0.0.1:8091".parse().unwrap(), |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_sqlite_on_the_default_port() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8091");
        assert_eq!(c.database, Database::Sqlite(DEFAULT_DATABASE_PATH.into()));
    }

    #[test]
    fn postgres_url_wins_over_path() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://u:p@h/db"),
            ("DATABASE_PATH", "x.db"),
            ("DATABASE_SCHEMA", "s1"),
        ])
        .unwrap();
        assert_eq!(
            c.database,
            Database::Postgres {
                url: "postgres://u:p@h/db".into(),
                schema: Some("s1".into()),
                pool: DEFAULT_POOL
            }
        );
    }

    #[test]
    fn bad_values_are_named() {
        let e = cfg(&[("LISTEN", "nope")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid LISTEN \"nope\": expected host:port such as 127.0.0.1:8091"
        );
        let e = cfg(&[("DATABASE_URL", "mysql://u:secret@h/db")]).unwrap_err();
        assert!(e.to_string().contains("mysql://u:***@h/db"), "{e}");
        assert!(cfg(&[("DATABASE_URL", "postgres://h/db"), ("DATABASE_POOL", "0")]).is_err());
    }
}
