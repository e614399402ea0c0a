//! `shadow-compare diff`: the built binary on temp files; exit codes and output.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_shadow-compare");

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

const LEGACY: &str = r#"{"generated_at": "2026-01-01", "total": 3,
  "items": [{"id": 1, "name": "run", "score": 0.91}, {"id": 2, "name": "swim", "score": 0.5}],
  "tags": ["a", "b"], "owner": {"id": 7}}"#;
const CANDIDATE: &str = r#"{"generated_at": "2026-01-02", "total": "3",
  "items": [{"id": 2, "name": "swim", "score": 0.52}, {"id": 1, "name": "ride", "score": 0.91}],
  "tags": ["b", "a"], "extra": true}"#;

#[test]
fn equal_exits_zero() {
    let files = Files::new();
    let a = files.write("a.json", r#"{"a": 1, "b": [1, 2]}"#);
    let b = files.write("b.json", "{\"b\":[1,2.0],\n \"a\":1}");
    let output = run(&["diff", &a, &b]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "equal\n");
}

#[test]
fn different_exits_one_with_plain_text_when_piped() {
    let files = Files::new();
    let a = files.write("legacy.json", LEGACY);
    let b = files.write("candidate.json", CANDIDATE);
    let output = run(&["diff", &a, &b]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    insta::assert_snapshot!("cli_diff_text", text);
}

#[test]
fn rules_from_flags() {
    let files = Files::new();
    let a = files.write("legacy.json", LEGACY);
    let b = files.write("candidate.json", CANDIDATE);
    let output = run(&[
        "diff",
        &a,
        &b,
        "--ignore",
        "/generated_at",
        "--ignore",
        "/owner",
        "--unordered",
        "/tags",
        "--key",
        "/items=id",
        "--tolerance",
        "0.05",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    insta::assert_snapshot!("cli_diff_text_with_rules", stdout(&output));
}

#[test]
fn rules_from_toml_file() {
    let files = Files::new();
    let a = files.write("legacy.json", LEGACY);
    let b = files.write("candidate.json", CANDIDATE);
    let rules = files.write(
        "rules.toml",
        r#"
        ignore = ["/generated_at", "/owner", "/extra", "/total", "/items/*/name"]
        arrays = { "/items" = { key = "id" }, "/tags" = "unordered" }
        numbers = { tolerance = 0.05 }
        "#,
    );
    let output = run(&["diff", &a, &b, "--rules", &rules]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output), "equal\n");
}

#[test]
fn json_format() {
    let files = Files::new();
    let a = files.write("legacy.json", LEGACY);
    let b = files.write("candidate.json", CANDIDATE);
    let output = run(&["diff", &a, &b, "--format", "json", "--key", "/items=id"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(parsed["equal"], false);
    insta::assert_snapshot!("cli_diff_json", text);

    let output = run(&["diff", &a, &a, "--format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    insta::assert_snapshot!(stdout(&output), @r#"
    {
      "equal": true,
      "body": {
        "kind": "identical"
      }
    }
    "#);
}

#[test]
fn errors_exit_two() {
    let files = Files::new();
    let good = files.write("good.json", "{}");
    let bad = files.write("bad.json", "{\"a\": ");
    let missing = files.path().join("missing.json");
    let missing = missing.to_string_lossy();
    let dir = files.path().to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["diff", &good, &bad],
            "candidate body is not valid JSON",
        ),
        (vec!["diff", &bad, &good], "legacy body is not valid JSON"),
        (vec!["diff", &good, &missing], "reading candidate file"),
        (
            vec!["diff", &good, &good, "--ignore", "items"],
            "ignore[0]: pointer \"items\" must be empty or start with \"/\" (write \"/items\")",
        ),
        (
            vec!["diff", &good, &good, "--key", "/items"],
            "--key \"/items\" must be POINTER=FIELD",
        ),
        (
            vec!["diff", &good, &good, "--tolerance", "-1"],
            "numbers.tolerance: -1 must be a finite number >= 0",
        ),
        (
            vec!["diff", &good, &good, "--format", "yaml"],
            "invalid value 'yaml'",
        ),
        (
            vec!["diff", &good, &good, "--rules", &dir],
            "reading rules file",
        ),
    ];
    for (args, expected) in cases {
        let output = run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}
