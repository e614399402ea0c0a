//! `ficus check`: validate a routes file and print its table (or every error).

use std::fmt::Write;
use std::path::Path;

use crate::config::{self, ConfigErrors, RouteTable};
use crate::metrics::Metrics;

/// Validates `path`; on success returns the printed table, on failure the errors.
pub fn check(path: &Path) -> Result<String, ConfigErrors> {
    let table = config::load(path, &Metrics::new())?;
    Ok(render(&table))
}

pub fn render(table: &RouteTable) -> String {
    let rows: Vec<[String; 6]> = table
        .routes
        .iter()
        .map(|r| {
            let methods = r.methods.as_ref().map_or_else(
                || "*".to_owned(),
                |ms| ms.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","),
            );
            [
                r.name.clone(),
                methods,
                r.pattern.as_str().to_owned(),
                r.mode.as_str().to_owned(),
                table.upstreams[r.target].name.clone(),
                access(&r.access),
            ]
        })
        .collect();
    let header = ["NAME", "METHODS", "PATH", "MODE", "TARGET", "ACCESS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: ok, {} routes, version {}",
        table.source.display(),
        rows.len(),
        table.version
    );
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let legacy = &table.upstreams[table.legacy];
    let _ = writeln!(
        out,
        "unmatched requests -> {} ({}), {}",
        legacy.name,
        legacy.url,
        access(&table.default_access)
    );
    if table.auth.is_none() {
        let _ = writeln!(
            out,
            "warning: no [auth] table: authentication is off and every route is public"
        );
    }
    out
}

/// `auth`, then roles and owner when set: "required roles=coach owner=user_id".
fn access(a: &crate::auth::Access) -> String {
    let mut s = a.auth.as_str().to_owned();
    if !a.roles.is_empty() {
        s.push_str(&format!(" roles={}", a.roles.join(",")));
    }
    if let Some(o) = &a.owner {
        s.push_str(&format!(" owner={o}"));
    }
    s
}
