//! Configuration: routes.toml on disk -> validated [`RouteTable`] -> hot reload.
//!
//! `file` mirrors the TOML, `table` validates it, `reload` watches and swaps it.
//! Only a checked [`RouteTable`] ever reaches the data plane.

pub mod error;
pub mod file;
pub mod reload;
pub mod table;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors};
pub use file::{Mode, RoutesFile};
pub use table::{RouteMatch, RouteTable, Upstream};

use crate::metrics::Metrics;

/// Environment variables that override `[listen]` (for containers and tests).
pub const ENV_LISTEN_PROXY: &str = "FICUS_LISTEN_PROXY";
pub const ENV_LISTEN_ADMIN: &str = "FICUS_LISTEN_ADMIN";

/// Reads, parses and validates a routes file, reporting every error at once.
pub fn load(path: &Path, metrics: &Metrics) -> Result<RouteTable, ConfigErrors> {
    load_keeping(path, metrics, None)
}

/// [`load`] in a running process: `keep` are the certificates serving now (see
/// [`crate::tls::TlsSettings::build`]).
pub fn load_keeping(
    path: &Path,
    metrics: &Metrics,
    keep: Option<&crate::tls::LastGood>,
) -> Result<RouteTable, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(path, None, format!("cannot read the routes file: {e}"))
    })?;
    parse_keeping(path, &text, metrics, keep)
}

/// Parses and validates routes file `text` read from `path`.
pub fn parse(path: &Path, text: &str, metrics: &Metrics) -> Result<RouteTable, ConfigErrors> {
    parse_keeping(path, text, metrics, None)
}

fn parse_keeping(
    path: &Path,
    text: &str,
    metrics: &Metrics,
    keep: Option<&crate::tls::LastGood>,
) -> Result<RouteTable, ConfigErrors> {
    // Pass 1, `toml`: syntax, unknown keys and types, with the line of the offending key.
    if let Err(e) = toml::from_str::<RoutesFile>(text) {
        let line = e.span().map(|s| error::line_of(text, s.start));
        return Err(ConfigErrors::single(
            path,
            line,
            e.message().trim().to_owned(),
        ));
    }
    // Route decisions of the route commands and the autopilot (overlay.rs).
    let overlay_path = crate::overlay::path_for(path);
    let overlay = crate::overlay::Overlay::read(&overlay_path)
        .map_err(|e| ConfigErrors::single(&overlay_path, None, e))?;
    build_with_overlay(path, text, overlay, metrics, keep)
}

/// Validates routes file `text` (already known to parse) with route decisions applied.
pub fn build_with_overlay(
    path: &Path,
    text: &str,
    mut overlay: crate::overlay::Overlay,
    metrics: &Metrics,
    keep: Option<&crate::tls::LastGood>,
) -> Result<RouteTable, ConfigErrors> {
    // Pass 2, `config`: the same file layered with the FICUS_* environment overrides.
    let mut file = layered(text).map_err(|e| ConfigErrors::single(path, None, e.to_string()))?;
    let stale = overlay.apply(&mut file);
    overlay.prune(&stale);
    let mut table = RouteTable::build(path, text, file, metrics, keep)?;
    if !overlay.routes.is_empty() {
        // The version covers the decisions in force too.
        let json = serde_json::to_string(&overlay).unwrap_or_default();
        table.version = format!(
            "{:016x}",
            table::fnv1a(format!("{}\0{json}", table.version).as_bytes())
        );
    }
    table.overlay = overlay;
    table.overlay_stale = stale;
    Ok(table)
}

fn layered(text: &str) -> Result<RoutesFile, config::ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .set_override_option("listen.proxy", std::env::var(ENV_LISTEN_PROXY).ok())?
        .set_override_option("listen.admin", std::env::var(ENV_LISTEN_ADMIN).ok())?
        .build()?
        .try_deserialize()
}

#[cfg(test)]
mod tests;
