//! The mismatch store: shadow totals, differing fields, learned noise and a reservoir
//! sample of mismatches per route, in one SQLite file that survives restarts.
//!
//! Only the recorder thread writes (one transaction per batch); the admin API reads
//! through a second connection (WAL mode lets readers run beside the writer).
//! Callers redact before recording ([`Redaction`]); nothing here sees a raw secret.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use shadow_compare::DiffReport;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("shadow store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("shadow store: bad stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("shadow store: {0}")]
    Io(String),
    #[error("redact pattern {0:?}: {1}")]
    Pattern(String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Match,
    Mismatch,
    Error,
    Timeout,
    Skipped,
    Dropped,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Match,
        Outcome::Mismatch,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Skipped,
        Outcome::Dropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Mismatch => "mismatch",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Skipped => "skipped",
            Outcome::Dropped => "dropped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    /// UTF-8 text (lossy) of the body.
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub latency_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MismatchSample {
    pub request: RecordedRequest,
    pub legacy: RecordedResponse,
    pub candidate: RecordedResponse,
    pub report: DiffReport,
}

pub struct Observation {
    pub route: String,
    pub outcome: Outcome,
    pub at_unix_ms: i64,
    /// Differing fields (bounded by the caller), for mismatches.
    pub fields: Vec<String>,
    pub sample: Option<MismatchSample>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RouteSummary {
    pub route: String,
    #[serde(rename = "match")]
    pub matched: u64,
    pub mismatch: u64,
    pub error: u64,
    pub timeout: u64,
    pub skipped: u64,
    pub dropped: u64,
    /// match / (match + mismatch); 1.0 before any comparison.
    pub match_rate: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredMismatch {
    pub id: i64,
    pub at_unix_ms: i64,
    #[serde(flatten)]
    pub sample: MismatchSample,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldCount {
    pub pointer: String,
    pub count: u64,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS totals (route TEXT NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (route, outcome));
CREATE TABLE IF NOT EXISTS fields (route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (route, pointer));
CREATE TABLE IF NOT EXISTS learned (route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (route, pointer));
CREATE TABLE IF NOT EXISTS samples (route TEXT NOT NULL, slot INTEGER NOT NULL, at_unix_ms INTEGER NOT NULL,
  sample TEXT NOT NULL, PRIMARY KEY (route, slot));
CREATE TABLE IF NOT EXISTS seen (route TEXT PRIMARY KEY, mismatches INTEGER NOT NULL);
";

pub struct ShadowStore {
    conn: Connection,
    samples_per_route: usize,
    rng: u64,
}

impl ShadowStore {
    pub fn open(path: &Path, samples_per_route: usize, seed: u64) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(ShadowStore {
            conn,
            samples_per_route: samples_per_route.max(1),
            rng: seed | 1,
        })
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: only picks reservoir slots.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Records a batch in one transaction. Mismatch samples go through reservoir
    /// sampling (Algorithm R): the k-th mismatch of a route is kept with probability n/k.
    pub fn record(&mut self, batch: &[Observation]) -> Result<(), StoreError> {
        let n = self.samples_per_route as u64;
        let mut picks = Vec::new();
        for o in batch {
            if o.outcome == Outcome::Mismatch {
                let seen: u64 = self
                    .conn
                    .query_row(
                        "SELECT mismatches FROM seen WHERE route = ?1",
                        [&o.route],
                        |r| r.get::<_, i64>(0),
                    )
                    .optional()?
                    .unwrap_or(0) as u64
                    + picks
                        .iter()
                        .filter(|(r, _): &&(String, Option<u64>)| *r == o.route)
                        .count() as u64
                    + 1;
                let slot = if seen <= n {
                    Some(seen - 1)
                } else {
                    let j = self.next_random() % seen;
                    (j < n).then_some(j)
                };
                picks.push((o.route.clone(), slot));
            }
        }
        let tx = self.conn.transaction()?;
        let mut picks = picks.into_iter();
        for o in batch {
            tx.execute(
                "INSERT INTO totals (route, outcome, count) VALUES (?1, ?2, 1)
                 ON CONFLICT (route, outcome) DO UPDATE SET count = count + 1",
                params![o.route, o.outcome.as_str()],
            )?;
            if o.outcome != Outcome::Mismatch {
                continue;
            }
            tx.execute(
                "INSERT INTO seen (route, mismatches) VALUES (?1, 1)
                 ON CONFLICT (route) DO UPDATE SET mismatches = mismatches + 1",
                [&o.route],
            )?;
            for f in &o.fields {
                tx.execute(
                    "INSERT INTO fields (route, pointer, count) VALUES (?1, ?2, 1)
                     ON CONFLICT (route, pointer) DO UPDATE SET count = count + 1",
                    params![o.route, f],
                )?;
            }
            let slot = picks.next().and_then(|(_, s)| s);
            if let (Some(slot), Some(sample)) = (slot, &o.sample) {
                tx.execute(
                    "INSERT OR REPLACE INTO samples (route, slot, at_unix_ms, sample) VALUES (?1, ?2, ?3, ?4)",
                    params![o.route, slot as i64, o.at_unix_ms, serde_json::to_string(sample)?],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn record_learned(&mut self, route: &str, pointers: &[String]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for p in pointers {
            tx.execute(
                "INSERT INTO learned (route, pointer, count) VALUES (?1, ?2, 1)
                 ON CONFLICT (route, pointer) DO UPDATE SET count = count + 1",
                params![route, p],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn summary(&self) -> Result<Vec<RouteSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT route, outcome, count FROM totals ORDER BY route")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        let mut out: Vec<RouteSummary> = Vec::new();
        for row in rows {
            let (route, outcome, count) = row?;
            if out.last().is_none_or(|s| s.route != route) {
                out.push(RouteSummary {
                    route: route.clone(),
                    matched: 0,
                    mismatch: 0,
                    error: 0,
                    timeout: 0,
                    skipped: 0,
                    dropped: 0,
                    match_rate: 1.0,
                });
            }
            if let Some(s) = out.last_mut() {
                let count = count as u64;
                match outcome.as_str() {
                    "match" => s.matched = count,
                    "mismatch" => s.mismatch = count,
                    "error" => s.error = count,
                    "timeout" => s.timeout = count,
                    "skipped" => s.skipped = count,
                    "dropped" => s.dropped = count,
                    _ => {}
                }
            }
        }
        for s in &mut out {
            let compared = s.matched + s.mismatch;
            s.match_rate = if compared == 0 {
                1.0
            } else {
                s.matched as f64 / compared as f64
            };
        }
        Ok(out)
    }

    pub fn diffs(&self, route: &str, limit: usize) -> Result<Vec<StoredMismatch>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT rowid, at_unix_ms, sample FROM samples WHERE route = ?1 ORDER BY at_unix_ms DESC, rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![route, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at_unix_ms, sample) = row?;
            out.push(StoredMismatch {
                id,
                at_unix_ms,
                sample: serde_json::from_str(&sample)?,
            });
        }
        Ok(out)
    }

    pub fn fields(&self, route: &str, limit: usize) -> Result<Vec<FieldCount>, StoreError> {
        self.counts("fields", route, limit)
    }

    pub fn learned(&self, route: &str) -> Result<Vec<FieldCount>, StoreError> {
        self.counts("learned", route, 1000)
    }

    fn counts(
        &self,
        table: &str,
        route: &str,
        limit: usize,
    ) -> Result<Vec<FieldCount>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT pointer, count FROM {table} WHERE route = ?1 ORDER BY count DESC, pointer LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![route, limit as i64], |r| {
            Ok(FieldCount {
                pointer: r.get(0)?,
                count: r.get::<_, i64>(1)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes each stored mismatch of `route` as `{route}-{id}.json` into `dir`.
    pub fn export(&self, route: &str, dir: &Path) -> Result<usize, StoreError> {
        let all = self.diffs(route, usize::MAX >> 1)?;
        for m in &all {
            let fixture = serde_json::json!({
                "route": route,
                "request": m.sample.request,
                "legacy": m.sample.legacy,
                "candidate": m.sample.candidate,
                "differences": m.sample.report,
            });
            let path = dir.join(format!("{route}-{}.json", m.id));
            std::fs::write(&path, serde_json::to_vec_pretty(&fixture)?)
                .map_err(|e| StoreError::Io(format!("write {}: {e}", path.display())))?;
        }
        Ok(all.len())
    }
}

/// Secrets removed before a sample is stored: header values and JSON body fields.
pub struct Redaction {
    headers: Vec<String>,
    pointers: Vec<Vec<String>>,
}

pub const REDACTED: &str = "[REDACTED]";

impl Redaction {
    pub fn default_headers() -> Vec<String> {
        [
            "authorization",
            "cookie",
            "set-cookie",
            "proxy-authorization",
            "x-api-key",
        ]
        .map(String::from)
        .to_vec()
    }

    pub fn new(headers: &[String], json_pointers: &[String]) -> Result<Self, StoreError> {
        let pointers = json_pointers
            .iter()
            .map(|p| {
                shadow_compare::pointer::parse(p)
                    .map_err(|e| StoreError::Pattern(p.clone(), e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Redaction {
            headers: headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            pointers,
        })
    }

    fn headers(&self, headers: &mut [(String, String)]) {
        for (k, v) in headers.iter_mut() {
            if self.headers.iter().any(|h| h.eq_ignore_ascii_case(k)) {
                *v = REDACTED.to_owned();
            }
        }
    }

    /// Redacts matching fields of a JSON body; a body that is not JSON is kept as is.
    fn body(&self, body: &mut String) {
        if self.pointers.is_empty() {
            return;
        }
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(body) else {
            return;
        };
        for p in &self.pointers {
            redact_value(&mut v, p);
        }
        *body = v.to_string();
    }

    pub fn apply_request(&self, r: &mut RecordedRequest) {
        self.headers(&mut r.headers);
        self.body(&mut r.body);
    }

    pub fn apply_response(&self, r: &mut RecordedResponse) {
        self.headers(&mut r.headers);
        self.body(&mut r.body);
    }

    /// Redacts the values of differences whose pointer matches a redaction pattern.
    pub fn apply_report(&self, report: &mut DiffReport) {
        if self.pointers.is_empty() {
            return;
        }
        if let shadow_compare::BodyDiff::Json { differences, .. } = &mut report.body {
            for d in differences {
                let segs = shadow_compare::pointer::parse(&d.pointer).unwrap_or_default();
                if self.pointers.iter().any(|p| prefix_match(p, &segs)) {
                    d.legacy = d.legacy.as_ref().map(|_| REDACTED.into());
                    d.candidate = d.candidate.as_ref().map(|_| REDACTED.into());
                }
            }
        }
    }
}

/// Whether `pattern` (with `*` for one segment) matches `segs` or one of its ancestors.
fn prefix_match(pattern: &[String], segs: &[String]) -> bool {
    pattern.len() <= segs.len() && pattern.iter().zip(segs).all(|(p, s)| p == "*" || p == s)
}

fn redact_value(v: &mut serde_json::Value, pattern: &[String]) {
    let Some((first, rest)) = pattern.split_first() else {
        *v = REDACTED.into();
        return;
    };
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if first == "*" || first == k {
                    redact_value(child, rest);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                if first == "*" || *first == i.to_string() {
                    redact_value(child, rest);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mismatch(route: &str, n: i64) -> Observation {
        let resp = |body: &str| RecordedResponse {
            status: 200,
            headers: vec![],
            body: body.into(),
            latency_ms: 1.0,
        };
        Observation {
            route: route.into(),
            outcome: Outcome::Mismatch,
            at_unix_ms: n,
            fields: vec!["/a".into()],
            sample: Some(MismatchSample {
                request: RecordedRequest {
                    method: "GET".into(),
                    uri: format!("/x/{n}"),
                    headers: vec![],
                    body: String::new(),
                },
                legacy: resp("{\"a\":1}"),
                candidate: resp("{\"a\":2}"),
                report: shadow_compare::Comparator::default()
                    .compare_json(b"{\"a\":1}", b"{\"a\":2}")
                    .unwrap(),
            }),
        }
    }

    #[test]
    fn reservoir_is_bounded_and_totals_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut store = ShadowStore::open(&path, 10, 7).unwrap();
            let batch: Vec<_> = (0..1000).map(|n| mismatch("r", n)).collect();
            for chunk in batch.chunks(64) {
                store.record(chunk).unwrap();
            }
            let ok = Observation {
                route: "r".into(),
                outcome: Outcome::Match,
                at_unix_ms: 0,
                fields: vec![],
                sample: None,
            };
            store.record(&[ok]).unwrap();
        }
        let store = ShadowStore::open(&path, 10, 7).unwrap();
        let s = &store.summary().unwrap()[0];
        assert_eq!((s.matched, s.mismatch), (1, 1000));
        assert!((s.match_rate - 1.0 / 1001.0).abs() < 1e-12);
        assert_eq!(store.diffs("r", 100).unwrap().len(), 10);
        assert_eq!(
            store.fields("r", 10).unwrap(),
            vec![FieldCount {
                pointer: "/a".into(),
                count: 1000
            }]
        );
        // Reservoir, not "first 10": later mismatches made it in.
        assert!(
            store
                .diffs("r", 100)
                .unwrap()
                .iter()
                .any(|m| m.at_unix_ms >= 10)
        );
    }

    #[test]
    fn redaction_removes_secrets_from_headers_bodies_and_reports() {
        let r = Redaction::new(
            &Redaction::default_headers(),
            &["/password".into(), "/cards/*/number".into()],
        )
        .unwrap();
        let mut req = RecordedRequest {
            method: "POST".into(),
            uri: "/login".into(),
            headers: vec![
                ("Authorization".into(), "Bearer SECRET123".into()),
                ("x-ok".into(), "fine".into()),
            ],
            body: r#"{"password": "hunter2", "cards": [{"number": "4111"}], "user": "ana"}"#.into(),
        };
        r.apply_request(&mut req);
        let text = serde_json::to_string(&req).unwrap();
        for secret in ["SECRET123", "hunter2", "4111"] {
            assert!(!text.contains(secret), "{secret} left in {text}");
        }
        assert!(text.contains("ana") && text.contains("fine"));
        let mut report = shadow_compare::Comparator::default()
            .compare_json(br#"{"password": "a"}"#, br#"{"password": "b"}"#)
            .unwrap();
        r.apply_report(&mut report);
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("\"a\"") && !text.contains("\"b\""), "{text}");
    }
}
