//! `ficus route set|pause|resume|rollback`: route decisions from the command line.
//!
//! By default the command talks to the running proxy's admin API, which records the
//! decision in the state file beside routes.toml (routectl.rs). With `--write`,
//! `ficus route set` edits routes.toml itself instead — in place, keeping comments and
//! formatting (toml_edit) — for teams that keep routes in git; the running proxy picks
//! the edit up like any other. The edited file is validated before it is written. On a
//! route with `[routes.autopilot]`, `--write` also pauses the autopilot (see [`write`]).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use crate::config::Mode;

/// One route command.
pub struct Command {
    /// "set", "pause", "resume" or "rollback".
    pub action: &'static str,
    pub route: String,
    pub mode: Option<Mode>,
    pub percent: Option<f64>,
    pub reason: Option<String>,
}

/// Sends `cmd` to the admin API at `admin` (`http://host:port`); returns the JSON answer.
pub fn send(admin: &str, cmd: &Command) -> anyhow::Result<Value> {
    let path = match cmd.action {
        "set" => format!("/admin/routes/{}", cmd.route),
        action => format!("/admin/routes/{}/{action}", cmd.route),
    };
    let mut body = json!({ "by": actor() });
    if let Some(m) = cmd.mode {
        body["mode"] = json!(m.as_str());
    }
    if let Some(p) = cmd.percent {
        body["percent"] = json!(p);
    }
    if let Some(r) = &cmd.reason {
        body["reason"] = json!(r);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, text) = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(30),
            post(admin, &path, body.to_string()),
        )
        .await
        .context("the admin API did not answer within 30 s")?
    })?;
    let value: Value = serde_json::from_slice(&text)
        .with_context(|| format!("the admin API answered {status} with a non-JSON body"))?;
    if !status.is_success() {
        let errors = value["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            })
            .unwrap_or_default();
        bail!(
            "{}: {}{}",
            status,
            value["error"].as_str().unwrap_or("refused"),
            if errors.is_empty() {
                String::new()
            } else {
                format!("\n  {errors}")
            }
        );
    }
    Ok(value)
}

/// Who runs the command, for the audit log: `cli:USER@HOST`. The user is `$USER` (else
/// `$LOGNAME`), the host `$HOSTNAME` (else the kernel's hostname); what is unknown is left
/// out. Informational only: the admin API is unauthenticated and takes any `by`.
pub fn actor() -> String {
    let env = |k: &str| std::env::var(k).ok();
    let file = |p: &str| std::fs::read_to_string(p).ok();
    actor_of(
        env("USER").or_else(|| env("LOGNAME")),
        env("HOSTNAME")
            .or_else(|| file("/proc/sys/kernel/hostname"))
            .or_else(|| file("/etc/hostname")),
    )
}

fn actor_of(user: Option<String>, host: Option<String>) -> String {
    // One short printable token each: the value lands in logs and JSON.
    let clean = |s: Option<String>| {
        s.map(|s| {
            s.trim()
                .chars()
                .filter(|c| c.is_ascii_graphic() && *c != '@')
                .take(64)
                .collect::<String>()
        })
        .filter(|s| !s.is_empty())
    };
    match (clean(user), clean(host)) {
        (Some(u), Some(h)) => format!("cli:{u}@{h}"),
        (Some(u), None) => format!("cli:{u}"),
        (None, Some(h)) => format!("cli:@{h}"),
        (None, None) => "cli".into(),
    }
}

async fn post(admin: &str, path: &str, body: String) -> anyhow::Result<(http::StatusCode, Bytes)> {
    let uri: http::Uri = admin.parse().context("--admin is not a URL")?;
    let authority = uri.authority().context("--admin has no host")?.clone();
    let stream = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .with_context(|| format!("connect to the admin API at {authority}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::post(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// The admin URL of a routes file: `http://` + `listen.admin` (`FICUS_LISTEN_ADMIN` wins),
/// with an unspecified address replaced by loopback.
pub fn admin_url(config: &Path) -> anyhow::Result<String> {
    let addr = match std::env::var(crate::config::ENV_LISTEN_ADMIN) {
        Ok(a) => a,
        Err(_) => {
            let text = std::fs::read_to_string(config)
                .with_context(|| format!("read {}", config.display()))?;
            let doc: toml::Table = text
                .parse()
                .with_context(|| format!("parse {}", config.display()))?;
            doc.get("listen")
                .and_then(|l| l.get("admin"))
                .and_then(|a| a.as_str())
                .with_context(|| format!("{} has no listen.admin", config.display()))?
                .to_owned()
        }
    };
    let addr: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("listen.admin {addr:?} is not ip:port"))?;
    let ip = if addr.ip().is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        addr.ip()
    };
    Ok(format!(
        "http://{}",
        std::net::SocketAddr::new(ip, addr.port())
    ))
}

/// Edits route `route` of routes file `text`: `mode`, and `[routes.canary] percent`.
/// Comments, key order and formatting of everything else are kept.
pub fn edit(
    text: &str,
    route: &str,
    mode: Option<Mode>,
    percent: Option<f64>,
) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().context("parse the routes file")?;
    let routes = doc
        .get_mut("routes")
        .and_then(|r| r.as_array_of_tables_mut())
        .context("the routes file has no [[routes]]")?;
    let table = routes
        .iter_mut()
        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(route))
        .with_context(|| format!("no route named {route:?}"))?;
    if let Some(m) = mode {
        set_keeping_decor(table, "mode", toml_edit::value(m.as_str()));
    }
    let wants_canary = mode == Some(Mode::Canary)
        || (mode.is_none() && table.get("mode").and_then(|m| m.as_str()) == Some("canary"));
    if percent.is_some() && !wants_canary {
        bail!("--percent applies to mode = \"canary\" only");
    }
    if wants_canary {
        let canary = table
            .entry("canary")
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let canary = canary
            .as_table_like_mut()
            .context("routes.canary is not a table")?;
        match (percent, canary.get("percent").is_some()) {
            (Some(p), _) => {
                let v = if p.fract() == 0.0 && p.abs() < 1e15 {
                    toml_edit::value(p as i64)
                } else {
                    toml_edit::value(p)
                };
                match canary.get_mut("percent") {
                    Some(item) => {
                        let decor = item.as_value().map(|v| v.decor().clone());
                        *item = v;
                        if let (Some(d), Some(v)) = (decor, item.as_value_mut()) {
                            *v.decor_mut() = d;
                        }
                    }
                    None => {
                        canary.insert("percent", v);
                    }
                }
            }
            (None, false) => bail!("mode = \"canary\" needs --percent"),
            (None, true) => {}
        }
    }
    Ok(doc.to_string())
}

fn set_keeping_decor(table: &mut toml_edit::Table, key: &str, new: toml_edit::Item) {
    match table.get_mut(key) {
        Some(item) => {
            let decor = item.as_value().map(|v| v.decor().clone());
            *item = new;
            if let (Some(d), Some(v)) = (decor, item.as_value_mut()) {
                *v.decor_mut() = d;
            }
        }
        None => {
            table.insert(key, new);
        }
    }
}

/// `ficus route set --write`: edit, validate, then replace the file atomically; returns
/// what was done.
///
/// Manual changes win over the autopilot, and an edit of the route makes its recorded
/// decision stale (dropped with its `paused` flag), so on a route with
/// `[routes.autopilot]` the autopilot is paused at the written value: through the admin
/// API at `admin` (default: [`admin_url`]) once the file is in place — the proxy reloads
/// the edit first — or, when no proxy answers there, by recording the paused decision in
/// the state file before the file is replaced ([`crate::routectl::pause_offline`]).
pub fn write(
    config: &Path,
    route: &str,
    mode: Option<Mode>,
    percent: Option<f64>,
    admin: Option<String>,
    reason: Option<&str>,
) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(config).with_context(|| format!("read {}", config.display()))?;
    let edited = edit(&text, route, mode, percent)?;
    if let Err(errors) = crate::config::parse(config, &edited, &crate::metrics::Metrics::new()) {
        bail!("the edited file does not validate, nothing written:\n{errors}");
    }
    let updated = format!("{}: route {route:?} updated", config.display());
    let file: crate::config::RoutesFile =
        toml::from_str(&edited).context("parse the edited file")?;
    let Some(written) = file
        .routes
        .iter()
        .find(|r| r.name == route && r.autopilot.is_some())
    else {
        replace(config, &edited)?;
        return Ok(format!("{updated}; a running ficus reloads it"));
    };
    let at = crate::overlay::Base::of(written);
    let why = format!(
        "{}; autopilot paused",
        reason.unwrap_or("routes.toml edited with `ficus route set --write`")
    );
    let admin = match admin {
        Some(a) => a,
        None => admin_url(config)?,
    };
    if answers(&admin) {
        replace(config, &edited)?;
        let pause = Command {
            action: "set",
            route: route.to_owned(),
            mode: Some(at.mode),
            percent: at.percent.filter(|_| at.mode == Mode::Canary),
            reason: Some(why),
        };
        send(&admin, &pause).with_context(|| {
            format!(
                "{updated}, but its autopilot could not be paused: run `ficus route pause {route}`"
            )
        })?;
        Ok(format!(
            "{updated}; ficus at {admin} applied it and paused the route's autopilot (`ficus route resume {route}` hands it back)"
        ))
    } else {
        crate::routectl::pause_offline(config, route, at, &actor(), &why)
            .context("record the autopilot pause; routes.toml left alone")?;
        replace(config, &edited)?;
        Ok(format!(
            "{updated}; no ficus answered at {admin}: the route's autopilot pause is recorded in {} for the next start (`ficus route resume {route}` hands it back)",
            crate::overlay::path_for(config).display()
        ))
    }
}

/// Whether something accepts connections at admin URL `admin`.
fn answers(admin: &str) -> bool {
    use std::net::ToSocketAddrs;
    let Some(authority) = admin
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().cloned())
    else {
        return false;
    };
    let port = authority.port_u16().unwrap_or(80);
    (authority.host(), port)
        .to_socket_addrs()
        .map(|mut addrs| {
            addrs.any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(5)).is_ok())
        })
        .unwrap_or(false)
}

/// Replaces `config` with `text` atomically (temp file + rename).
fn replace(config: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = config.with_extension("toml.ficus-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, config).with_context(|| format!("replace {}", config.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# the team's routes
legacy = "legacy"

[[routes]]
name = "top-content"   # the busiest one
path = "/api/content/top"
mode = "shadow"        # legacy answers
extracted = "ranking"

[routes.shadow]
ignore = ["/generated_at"]

[[routes]]
name = "prefs"
path = "/p"
mode = "canary"
extracted = "p"
[routes.canary]
percent = 5   # started small
cohort = "subject"
"#;

    #[test]
    fn edits_keep_comments_and_formatting() {
        let out = edit(FILE, "top-content", Some(Mode::Canary), Some(10.0)).expect("edit");
        assert!(out.starts_with("# the team's routes\n"), "{out}");
        assert!(
            out.contains("name = \"top-content\"   # the busiest one"),
            "{out}"
        );
        assert!(
            out.contains("mode = \"canary\"        # legacy answers"),
            "{out}"
        );
        assert!(
            out.contains("[routes.shadow]\nignore = [\"/generated_at\"]"),
            "{out}"
        );
        let doc: toml::Table = out.parse().expect("valid TOML");
        let r = &doc["routes"].as_array().expect("routes")[0];
        assert_eq!(r["canary"]["percent"].as_integer(), Some(10));

        let out = edit(FILE, "prefs", None, Some(25.0)).expect("edit");
        assert!(out.contains("percent = 25   # started small"), "{out}");
        assert_eq!(out.lines().count(), FILE.lines().count());

        let out = edit(FILE, "prefs", Some(Mode::Legacy), None).expect("edit");
        assert!(out.contains("mode = \"legacy\"\n"), "{out}");
    }

    #[test]
    fn the_actor_names_user_and_host_when_known() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(actor_of(s("alice"), s("build-7\n")), "cli:alice@build-7");
        assert_eq!(actor_of(s("alice"), None), "cli:alice");
        assert_eq!(actor_of(s(""), s("box")), "cli:@box");
        assert_eq!(actor_of(None, s(" ")), "cli");
        assert_eq!(actor_of(s("a b@c"), s("h")), "cli:abc@h");
    }

    #[test]
    fn bad_edits_are_refused() {
        assert!(edit(FILE, "nope", Some(Mode::Legacy), None).is_err());
        assert!(edit(FILE, "top-content", Some(Mode::Canary), None).is_err());
        assert!(edit(FILE, "top-content", Some(Mode::Extracted), Some(5.0)).is_err());
    }
}
