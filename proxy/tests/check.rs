//! `ficus check`: output and errors, as snapshots.

use std::process::Command;

use crate::support::ficus_bin;

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(ficus_bin())
        .arg("check")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (
        out.status.code().unwrap(),
        text.replace(&dir.path().display().to_string(), "[DIR]"),
    )
}

#[test]
fn the_repository_routes_file_is_valid() {
    // Checked beside the secret file the demo writes (demo-data/legacy-jwt-secret).
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../routes.toml")).unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::create_dir(dir.path().join("demo-data")).unwrap();
    std::fs::write(
        dir.path().join("demo-data/legacy-jwt-secret"),
        fitness_legacy::state::DEFAULT_JWT_SECRET,
    )
    .unwrap();
    let out = Command::new(ficus_bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_prints_the_table() {
    let (code, out) = check(
        r#"legacy = "legacy"
[listen]
proxy = "127.0.0.1:8080"
admin = "127.0.0.1:9901"
[upstreams.legacy]
url = "http://127.0.0.1:8081"
[upstreams.ranking]
url = "http://127.0.0.1:8091"
[[routes]]
name = "top-content"
path = "/api/content/top"
methods = ["GET"]
mode = "extracted"
extracted = "ranking"
[[routes]]
name = "users"
path = "/api/users/{id}"
"#,
    );
    assert_eq!(code, 0);
    insta::with_settings!({filters => vec![(r"version [0-9a-f]{16}", "version [VERSION]")]}, {
        insta::assert_snapshot!(out);
    });
}

#[test]
fn check_reports_every_error_with_line_and_fix() {
    let (code, out) = check(
        r#"legacy = "monolith"
[listen]
proxy = "127.0.0.1:8080"
admin = "not-an-address"
[upstreams.legacy]
url = "ftp://127.0.0.1:8081"
[upstreams.ranking]
url = "http://127.0.0.1:8091"
[[routes]]
name = "top"
path = "/api/content/top"
mode = "extracted"
extracted = "rankng"
[[routes]]
name = "top"
path = "api/x"
[[routes]]
name = "a"
path = "/api/users/{id}"
methods = ["GET"]
[[routes]]
name = "b"
path = "/api/users/{user_id}"
methods = ["GET", "PUT"]
[[routes]]
name = "c"
path = "/api/c"
mode = "extracted"
[[routes]]
name = "d"
path = "/api/d/{*rest}/x"
methods = ["get", "NOT A METHOD"]
"#,
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}

/// A route named ".." passed validation, but every URL naming it resolves the dot segment
/// (browsers and curl alike, `%2E%2E` included): the dashboard's drill-down and
/// `/admin/routes/{name}` could never reach it.
#[test]
fn dot_segment_route_names_are_refused() {
    for name in [".", ".."] {
        let (code, out) = check(&format!(
            "legacy = \"legacy\"\n[listen]\nproxy = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:2\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:3\"\n[[routes]]\nname = \"{name}\"\npath = \"/a\"\n"
        ));
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("route name \"{name}\" is a URL dot segment")),
            "{out}"
        );
    }
    let (code, out) = check(
        "legacy = \"legacy\"\n[listen]\nproxy = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:2\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:3\"\n[[routes]]\nname = \"v1.2\"\npath = \"/a\"\n",
    );
    assert_eq!(code, 0, "dots inside a name are fine: {out}");
}

#[test]
fn syntax_and_unknown_keys_point_at_the_line() {
    let (code, out) = check(
        "legacy = \"legacy\"\n[listen]\nproxy = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:2\"\nbogus = 1\n",
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!("unknown_key", out);
    let (code, out) = check("legacy = \"legacy\"\n[listen\n");
    assert_eq!(code, 1);
    insta::assert_snapshot!("truncated", out);
    let (code, out) = check(
        "legacy = \"legacy\"\n[listen]\nproxy = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:2\"\n[[routes]]\nname = \"x\"\npath = \"/x\"\nmode = \"shadowy\"\n",
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!("bad_mode", out);
}

#[test]
fn environment_overrides_listen_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.toml");
    std::fs::write(&path, "legacy = \"l\"\n[listen]\nproxy = \"127.0.0.1:1\"\nadmin = \"127.0.0.1:2\"\n[upstreams.l]\nurl = \"http://127.0.0.1:3\"\n").unwrap();
    let out = Command::new(ficus_bin())
        .arg("check")
        .arg(&path)
        .env("FICUS_LISTEN_ADMIN", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen.admin 127.0.0.1:1 equals listen.proxy"),
        "{err}"
    );
}

#[test]
fn shadow_settings_are_validated() {
    let (code, out) = check(
        r#"legacy = "legacy"
[listen]
proxy = "127.0.0.1:8080"
admin = "127.0.0.1:9901"
[upstreams.legacy]
url = "http://127.0.0.1:8081"
[upstreams.ranking]
url = "http://127.0.0.1:8091"
[[routes]]
name = "top-content"
path = "/api/content/top"
mode = "shadow"
extracted = "ranking"
[routes.shadow]
sample = 1.5
cohort = "everyone"
ignore = ["generated_at", "/items/*/score"]
redact = ["password"]
[[routes]]
name = "no-candidate"
path = "/api/x"
mode = "shadow"
"#,
    );
    assert_eq!(code, 1);
    insta::assert_snapshot!(out);
}
