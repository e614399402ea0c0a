//! Serde types that mirror routes.toml exactly (`deny_unknown_fields` everywhere).
//!
//! Nothing here is validated beyond types: [`super::table::RouteTable`] turns a
//! [`RoutesFile`] into the checked table the data plane uses. Keys documented in
//! docs/routes.md; keep the two in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoutesFile {
    /// Name of the upstream that serves every request no route claims.
    pub legacy: String,
    pub listen: ListenFile,
    #[serde(default)]
    pub server: ServerFile,
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamFile>,
    #[serde(default)]
    pub routes: Vec<RouteFile>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenFile {
    pub proxy: String,
    pub admin: String,
    /// Peers (CIDR or address) whose `X-Forwarded-*`/`Forwarded` headers are kept and appended to.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    /// Time given to in-flight requests on SIGTERM/SIGINT or handoff (default 30000).
    pub grace_period_ms: Option<u64>,
    /// During a drain, idle HTTP/1 keep-alive connections are closed after this long (default 1000).
    pub drain_idle_ms: Option<u64>,
    /// Close client connections idle for this long (default 60000).
    pub client_idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamFile {
    pub url: String,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    /// Idle keep-alive connections kept per worker thread (default 256).
    pub max_idle_per_thread: Option<usize>,
    /// Send the upstream's own authority as `Host` instead of the client's (default false).
    #[serde(default)]
    pub rewrite_host: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Legacy,
    Extracted,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::Extracted => "extracted",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: String,
    pub path: String,
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub mode: Mode,
    pub extracted: Option<String>,
}
