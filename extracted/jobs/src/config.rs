//! The worker's settings, read once from the environment (and an optional TOML schedule
//! file) and checked: [`Settings::from_env`]. Every problem is reported at once, naming the
//! variable and the bad value. Defaults are the `DEFAULT_*` constants and are listed in
//! `docs/jobs.md`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use service_kit::Database;

use crate::kind::Kind;
use crate::queue::Backoff;

/// Admin port when `LISTEN` is unset.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8094";
/// Worker loops per process (`JOBS_CONCURRENCY`).
pub const DEFAULT_CONCURRENCY: usize = 1;
/// Idle poll interval in milliseconds (`JOBS_POLL_MS`).
pub const DEFAULT_POLL_MS: u64 = 500;
/// Lease length in seconds (`JOBS_LEASE_SECS`); renewed every third of it while a job runs.
pub const DEFAULT_LEASE_SECS: i64 = 60;
/// Attempts before a job is dead-lettered (`JOBS_MAX_ATTEMPTS`).
pub const DEFAULT_MAX_ATTEMPTS: i64 = 5;
/// First retry delay in seconds (`JOBS_BACKOFF_SECS`), doubled per attempt.
pub const DEFAULT_BACKOFF_SECS: i64 = 30;
/// Longest retry delay in seconds (`JOBS_BACKOFF_MAX_SECS`).
pub const DEFAULT_BACKOFF_MAX_SECS: i64 = 3600;
/// Days before `current_period_end` an expiry alert is sent (`JOBS_ALERT_DAYS`).
pub const DEFAULT_ALERT_DAYS: i64 = 7;
/// Items per weekly digest (`JOBS_DIGEST_ITEMS`).
pub const DEFAULT_DIGEST_ITEMS: usize = 5;
/// File of the file notifier (`JOBS_NOTIFY_FILE`).
pub const DEFAULT_NOTIFY_FILE: &str = "data/notifications.jsonl";
/// Webhook timeout in milliseconds (`JOBS_WEBHOOK_TIMEOUT_MS`).
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5000;
/// Seconds a running job may take to finish after SIGTERM before its lease is released
/// (`JOBS_SHUTDOWN_GRACE_SECS`).
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifierConfig {
    Log,
    File(PathBuf),
    Webhook { url: String, timeout: Duration },
}

/// Which clock the worker runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockConfig {
    /// The wall clock.
    System,
    /// Starts at the database's `meta.dataset_now` and advances in real time (the demo's
    /// generated data is relative to that instant).
    Dataset,
    /// Starts at these unix seconds and advances in real time.
    StartAt(i64),
}

/// Test-only fault injection (`JOBS_TEST_HOOK`); never set it in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestHook {
    /// After an expiry alert was delivered and before its commit, hang forever (the crash
    /// test then SIGKILLs the process).
    HangAfterNotify,
    /// Same place, `std::process::abort()`.
    AbortAfterNotify,
}

/// Checked settings of the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database: Database,
    pub worker_id: String,
    pub concurrency: usize,
    pub poll_interval: Duration,
    pub lease_secs: i64,
    pub max_attempts: i64,
    pub backoff: Backoff,
    pub alert_days: i64,
    pub digest_items: usize,
    pub notifier: NotifierConfig,
    /// Whether this process runs the scheduler (`JOBS_SCHEDULER=off` disables it).
    pub scheduler: bool,
    /// Enabled schedules, by kind.
    pub schedules: Vec<(Kind, String)>,
    pub clock: ClockConfig,
    pub shutdown_grace: Duration,
    pub test_hook: Option<TestHook>,
}

/// Settings that do not parse; lists every problem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFile {
    #[serde(default)]
    schedules: BTreeMap<String, String>,
}

impl Settings {
    /// Defaults on `database`, scheduler off (tests and in-process use).
    pub fn new(database: Database) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database,
            worker_id: format!("jobs-{}", std::process::id()),
            concurrency: DEFAULT_CONCURRENCY,
            poll_interval: Duration::from_millis(DEFAULT_POLL_MS),
            lease_secs: DEFAULT_LEASE_SECS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff: Backoff {
                base_secs: DEFAULT_BACKOFF_SECS,
                max_secs: DEFAULT_BACKOFF_MAX_SECS,
            },
            alert_days: DEFAULT_ALERT_DAYS,
            digest_items: DEFAULT_DIGEST_ITEMS,
            notifier: NotifierConfig::Log,
            scheduler: false,
            schedules: default_schedules(),
            clock: ClockConfig::System,
            shutdown_grace: Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS),
            test_hook: None,
        }
    }

    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any key lookup (tests pass a map); empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut errors = Vec::new();
        let default_listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8094)));
        let service = match service_kit::ServiceConfig::from_lookup(default_listen, get) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e.to_string());
                service_kit::ServiceConfig {
                    listen: default_listen,
                    database: Database::Sqlite(service_kit::config::DEFAULT_DATABASE_PATH.into()),
                }
            }
        };
        let mut s = Self::new(service.database);
        s.listen = service.listen;
        s.scheduler = true;

        fn num<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
            get: &dyn Fn(&str) -> Option<String>,
            errors: &mut Vec<String>,
            name: &str,
            default: T,
            min: T,
            max: T,
        ) -> T {
            match get(name) {
                None => default,
                Some(v) => match v.parse::<T>() {
                    Ok(n) if n >= min && n <= max => n,
                    _ => {
                        errors.push(format!(
                            "invalid {name} {v:?}: expected a number from {min} to {max}"
                        ));
                        default
                    }
                },
            }
        }
        let g: &dyn Fn(&str) -> Option<String> = &get;
        if let Some(id) = get("JOBS_WORKER_ID") {
            s.worker_id = id;
        }
        s.concurrency = num(
            g,
            &mut errors,
            "JOBS_CONCURRENCY",
            DEFAULT_CONCURRENCY,
            1,
            16,
        );
        s.poll_interval = Duration::from_millis(num(
            g,
            &mut errors,
            "JOBS_POLL_MS",
            DEFAULT_POLL_MS,
            10,
            60_000,
        ));
        s.lease_secs = num(
            g,
            &mut errors,
            "JOBS_LEASE_SECS",
            DEFAULT_LEASE_SECS,
            1,
            86_400,
        );
        s.max_attempts = num(
            g,
            &mut errors,
            "JOBS_MAX_ATTEMPTS",
            DEFAULT_MAX_ATTEMPTS,
            1,
            100,
        );
        s.backoff = Backoff {
            base_secs: num(
                g,
                &mut errors,
                "JOBS_BACKOFF_SECS",
                DEFAULT_BACKOFF_SECS,
                0,
                86_400,
            ),
            max_secs: num(
                g,
                &mut errors,
                "JOBS_BACKOFF_MAX_SECS",
                DEFAULT_BACKOFF_MAX_SECS,
                0,
                7 * 86_400,
            ),
        };
        s.alert_days = num(
            g,
            &mut errors,
            "JOBS_ALERT_DAYS",
            DEFAULT_ALERT_DAYS,
            1,
            365,
        );
        s.digest_items = num(
            g,
            &mut errors,
            "JOBS_DIGEST_ITEMS",
            DEFAULT_DIGEST_ITEMS,
            1,
            50,
        );
        s.shutdown_grace = Duration::from_secs(num(
            g,
            &mut errors,
            "JOBS_SHUTDOWN_GRACE_SECS",
            DEFAULT_SHUTDOWN_GRACE_SECS,
            0,
            3600,
        ));
        s.notifier = match get("JOBS_NOTIFIER").as_deref() {
            None | Some("log") => NotifierConfig::Log,
            Some("file") => NotifierConfig::File(PathBuf::from(
                get("JOBS_NOTIFY_FILE").unwrap_or_else(|| DEFAULT_NOTIFY_FILE.to_owned()),
            )),
            Some("webhook") => {
                let timeout = Duration::from_millis(num(
                    g,
                    &mut errors,
                    "JOBS_WEBHOOK_TIMEOUT_MS",
                    DEFAULT_WEBHOOK_TIMEOUT_MS,
                    1,
                    600_000,
                ));
                match get("JOBS_WEBHOOK_URL") {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        NotifierConfig::Webhook { url, timeout }
                    }
                    Some(url) => {
                        errors.push(format!(
                            "invalid JOBS_WEBHOOK_URL {url:?}: expected an http:// url"
                        ));
                        NotifierConfig::Log
                    }
                    None => {
                        errors.push(
                            "JOBS_NOTIFIER=webhook needs JOBS_WEBHOOK_URL (e.g. http://127.0.0.1:9000/notify)"
                                .to_owned(),
                        );
                        NotifierConfig::Log
                    }
                }
            }
            Some(other) => {
                errors.push(format!(
                    "invalid JOBS_NOTIFIER {other:?}: expected log, file or webhook"
                ));
                NotifierConfig::Log
            }
        };
        s.scheduler = match get("JOBS_SCHEDULER").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                errors.push(format!(
                    "invalid JOBS_SCHEDULER {other:?}: expected on or off"
                ));
                true
            }
        };
        s.clock = match get("JOBS_CLOCK").as_deref() {
            None | Some("system") => ClockConfig::System,
            Some("dataset") => ClockConfig::Dataset,
            Some(v) => match v.parse::<i64>() {
                Ok(t) if t >= 0 => ClockConfig::StartAt(t),
                _ => {
                    errors.push(format!(
                        "invalid JOBS_CLOCK {v:?}: expected system, dataset or unix seconds"
                    ));
                    ClockConfig::System
                }
            },
        };
        s.test_hook = match get("JOBS_TEST_HOOK").as_deref() {
            None => None,
            Some("hang-after-notify") => Some(TestHook::HangAfterNotify),
            Some("abort-after-notify") => Some(TestHook::AbortAfterNotify),
            Some(other) => {
                errors.push(format!(
                    "invalid JOBS_TEST_HOOK {other:?}: expected hang-after-notify or abort-after-notify (test only)"
                ));
                None
            }
        };

        // Schedules: defaults < JOBS_SCHEDULE_FILE < JOBS_SCHEDULE_<KIND>; "off" disables.
        let mut exprs: BTreeMap<Kind, Option<String>> = Kind::ALL
            .iter()
            .filter_map(|k| k.default_schedule().map(|e| (*k, Some(e.to_owned()))))
            .collect();
        if let Some(path) = get("JOBS_SCHEDULE_FILE") {
            match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| toml::from_str::<ScheduleFile>(&t).map_err(|e| e.to_string()))
            {
                Ok(file) => {
                    for (name, expr) in file.schedules {
                        match Kind::parse(&name) {
                            Ok(Kind::ExpiryAlert) | Err(_) => errors.push(format!(
                                "{path}: [schedules] {name:?} is not a schedulable job kind"
                            )),
                            Ok(k) => {
                                exprs.insert(k, (expr != "off").then_some(expr));
                            }
                        }
                    }
                }
                Err(e) => errors.push(format!("cannot read JOBS_SCHEDULE_FILE {path:?}: {e}")),
            }
        }
        for k in Kind::ALL.iter().filter(|k| k.default_schedule().is_some()) {
            if let Some(expr) = get(&format!("JOBS_SCHEDULE_{}", k.env_suffix())) {
                exprs.insert(*k, (expr != "off").then_some(expr));
            }
        }
        s.schedules = Vec::new();
        for (k, expr) in exprs {
            if let Some(expr) = expr {
                match crate::schedule::parse(k, &expr) {
                    Ok(_) => s.schedules.push((k, expr)),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        if errors.is_empty() {
            Ok(s)
        } else {
            Err(ConfigError(errors))
        }
    }
}

/// Every kind's default schedule.
pub fn default_schedules() -> Vec<(Kind, String)> {
    Kind::ALL
        .iter()
        .filter_map(|k| k.default_schedule().map(|e| (*k, e.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let s = cfg(&[]).unwrap();
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.database, Database::Sqlite("data/fitness.db".into()));
        assert_eq!(s.notifier, NotifierConfig::Log);
        assert!(s.scheduler);
        assert_eq!(s.schedules.len(), 6);
        assert_eq!(s.alert_days, 7);
        assert_eq!(s.clock, ClockConfig::System);
        assert_eq!(s.test_hook, None);
    }

    #[test]
    fn overrides_and_schedule_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "[schedules]\nsession-cleanup = \"off\"\nweekly-digest = \"0 0 7 * * Sun\"\n",
        )
        .unwrap();
        let s = cfg(&[
            ("JOBS_SCHEDULE_FILE", file.to_str().unwrap()),
            ("JOBS_SCHEDULE_RANKING_RECOMPUTE", "*/5 * * * *"),
            ("JOBS_NOTIFIER", "file"),
            ("JOBS_NOTIFY_FILE", "/tmp/n.jsonl"),
            ("JOBS_ALERT_DAYS", "3"),
            ("JOBS_CLOCK", "dataset"),
        ])
        .unwrap();
        assert!(!s.schedules.iter().any(|(k, _)| *k == Kind::SessionCleanup));
        assert!(
            s.schedules
                .contains(&(Kind::WeeklyDigest, "0 0 7 * * Sun".into()))
        );
        assert!(
            s.schedules
                .contains(&(Kind::RankingRecompute, "*/5 * * * *".into()))
        );
        assert_eq!(s.notifier, NotifierConfig::File("/tmp/n.jsonl".into()));
        assert_eq!(s.alert_days, 3);
        assert_eq!(s.clock, ClockConfig::Dataset);
    }

    #[test]
    fn every_problem_is_reported_with_its_value() {
        let e = cfg(&[
            ("JOBS_LEASE_SECS", "0"),
            ("JOBS_NOTIFIER", "pigeon"),
            ("JOBS_SCHEDULE_SESSION_CLEANUP", "sometimes"),
            ("LISTEN", "nope"),
        ])
        .unwrap_err();
        assert_eq!(e.0.len(), 4, "{e}");
        let text = e.to_string();
        assert!(text.contains("invalid JOBS_LEASE_SECS \"0\""), "{text}");
        assert!(text.contains("invalid JOBS_NOTIFIER \"pigeon\""), "{text}");
        assert!(text.contains("\"sometimes\""), "{text}");
        assert!(text.contains("invalid LISTEN \"nope\""), "{text}");
        let e = cfg(&[("JOBS_NOTIFIER", "webhook")]).unwrap_err();
        assert!(e.to_string().contains("JOBS_WEBHOOK_URL"), "{e}");
    }
}
