//! The `legacy` binary: generate, refuse to overwrite, serve on port 0, stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_legacy");

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("legacy-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn generate_then_refuse_to_overwrite() {
    let dir = temp_dir("gen");
    let db = dir.join("sub/fitness.db");
    let out = Command::new(BIN)
        .args(["generate", "--users", "50", "--seed", "3", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = fitness_data::open(&db).unwrap();
    assert_eq!(fitness_data::queries::counts(&conn).unwrap().users, 50);
    let out = Command::new(BIN)
        .args(["generate", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "legacy: error: database {} already exists",
            db.display()
        )),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serving_a_missing_database_says_how_to_fix_it() {
    let dir = temp_dir("missing");
    let db = dir.join("none.db");
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is missing or empty; run `legacy generate"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[tokio::test]
async fn serves_until_sigterm() {
    let dir = temp_dir("serve");
    let db = dir.join("fitness.db");
    let mut child = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--generate-if-missing",
            "--users",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("legacy listening on ")
        .unwrap()
        .to_owned();
    let res = reqwest::get(format!("{url}/api/users/30")).await.unwrap();
    assert_eq!(res.status(), 200);
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
}
