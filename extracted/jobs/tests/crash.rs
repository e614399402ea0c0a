//! The crash test: the real `jobs` binary is killed (SIGKILL) after delivering an expiry
//! alert and before committing it; after a restart the job is retried once its lease
//! expires, and in the end every alert was delivered exactly once. The pause comes from the
//! test-only hook `JOBS_TEST_HOOK=hang-after-notify`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobs::notify::FileNotifier;

use crate::support::{DATASET_NOW, TestDb, expected_alerts};

fn jobs_cmd(db: &TestDb, notify: &Path, log: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_jobs"));
    c.env_remove("DATABASE_URL")
        .env("DATABASE_PATH", &db.path)
        .env("LISTEN", "127.0.0.1:0")
        .env("JOBS_NOTIFIER", "file")
        .env("JOBS_NOTIFY_FILE", notify)
        .env("JOBS_SCHEDULER", "off")
        .env("JOBS_CLOCK", "dataset")
        .env("JOBS_LEASE_SECS", "1")
        .env("JOBS_POLL_MS", "20")
        .env("JOBS_SHUTDOWN_GRACE_SECS", "5")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(db.file(&format!("{log}.out"))).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(db.file(&format!("{log}.err"))).unwrap(),
        ));
    c
}

fn wait_for<T>(what: &str, limit: Duration, db: &TestDb, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: String = ["first.err", "second.err"]
                .iter()
                .map(|f| std::fs::read_to_string(db.file(f)).unwrap_or_default())
                .collect();
            panic!("timed out waiting for {what}; worker logs:\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn enqueue(db: &TestDb, notify: &Path, kind: &str) {
    let out = jobs_cmd(db, notify, "cli")
        .args(["enqueue", kind])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "jobs enqueue {kind} failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["created"], true, "{v}");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killed_mid_alert_then_restarted_delivers_each_alert_exactly_once() {
    let db = TestDb::generate(7, 200);
    let notify = db.file("notifications.jsonl");
    let expected = expected_alerts(&db, DATASET_NOW, 7);
    assert!(
        expected >= 3,
        "the generated data has alerts due ({expected})"
    );
    let lines = || FileNotifier::read_all(&notify).unwrap().len() as i64;

    // 1. Scan enqueued; the first worker delivers one alert, then hangs before committing.
    enqueue(&db, &notify, "expiry-alerts");
    let mut first = KillOnDrop(
        jobs_cmd(&db, &notify, "first")
            .env("JOBS_TEST_HOOK", "hang-after-notify")
            .spawn()
            .unwrap(),
    );
    wait_for("the first delivery", Duration::from_secs(60), &db, || {
        (lines() >= 1).then_some(())
    });
    first.0.kill().unwrap(); // SIGKILL: no cleanup, no release
    first.0.wait().unwrap();
    assert_eq!(lines(), 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM notifications"),
        0,
        "nothing committed"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM jobs WHERE kind = 'expiry-alert' AND status = 'running'"),
        1,
        "the killed job still holds its lease"
    );
    let crashed_key = FileNotifier::read_all(&notify).unwrap()[0].key.clone();

    // 2. Restart without the hook: the lease expires, the job is retried, the file notifier
    //    recognises the key and does not deliver it again.
    let mut second = KillOnDrop(jobs_cmd(&db, &notify, "second").spawn().unwrap());
    wait_for(
        "every alert job to finish",
        Duration::from_secs(60),
        &db,
        || {
            (db.count("SELECT COUNT(*) FROM jobs WHERE kind = 'expiry-alert' AND status = 'done'")
                == expected)
                .then_some(())
        },
    );
    let sent = FileNotifier::read_all(&notify).unwrap();
    assert_eq!(sent.len() as i64, expected, "each alert delivered once");
    let mut keys: Vec<&str> = sent.iter().map(|n| n.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len() as i64, expected, "no duplicate key");
    assert_eq!(db.count("SELECT COUNT(*) FROM notifications"), expected);
    let (attempts, result): (i64, String) = db
        .conn()
        .query_row(
            "SELECT attempts, result FROM jobs WHERE idempotency_key = ?1",
            [&crashed_key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(attempts, 2, "retried once after the crash");
    assert!(result.contains("already delivered"), "{result}");

    // 3. The scan again (as the scheduler would): nothing new for this period.
    enqueue(&db, &notify, "expiry-alerts");
    wait_for("the second scan", Duration::from_secs(60), &db, || {
        (db.count("SELECT COUNT(*) FROM jobs WHERE kind = 'expiry-alerts' AND status = 'done'")
            == 2)
            .then_some(())
    });
    assert_eq!(lines(), expected);

    // 4. SIGTERM: graceful shutdown, exit 0.
    let pid = second.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_for("the worker to exit", Duration::from_secs(30), &db, || {
        second.0.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    let out = std::fs::read_to_string(db.file("second.out")).unwrap();
    assert!(
        out.starts_with("jobs admin listening on http://127.0.0.1:"),
        "{out}"
    );
}
