//! [`ShadowStore`]: one SQLite connection and the reads and writes the proxy, the admin
//! API and the export command need. Writes one transaction per batch; never redacts
//! (callers do, with [`crate::Redaction`]) and never blocks on anything but SQLite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;
use shadow_compare::DiffReport;

use crate::error::StoreError;
use crate::record::{
    FieldCount, Observation, Outcome, RecordedRequest, RecordedResponse, RouteSummary,
    StoredMismatch,
};
use crate::reservoir::Reservoir;
use crate::schema;

/// The pointer under which fields beyond [`StoreConfig::max_fields_per_route`] are counted.
pub const OTHER_FIELD: &str = "(other)";

/// How the store bounds itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Mismatches kept per route by the reservoir (default 100; 0 keeps none).
    pub samples_per_route: usize,
    /// Distinct field pointers counted per route (default 200); later new pointers are
    /// counted under [`OTHER_FIELD`]. Also bounds learned fields.
    pub max_fields_per_route: usize,
    /// Bytes kept of each stored body (request, legacy and candidate responses; default
    /// 64 KiB): longer bodies are cut and marked `body_truncated_from`, so a sample costs
    /// at most about three times this.
    pub max_body_bytes: usize,
    /// Seed of the reservoir's RNG. A fixed seed is fine in production: the random number
    /// of the k-th mismatch depends on (seed, route, k), and k persists in the file.
    pub seed: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            samples_per_route: 100,
            max_fields_per_route: 200,
            max_body_bytes: 64 * 1024,
            seed: 0x5eed_f1c5,
        }
    }
}

/// The mismatch store. Not `Sync`: give the writer its own instance (the proxy's recorder
/// thread) and open a second one on the same file for readers; WAL mode lets them run
/// side by side.
pub struct ShadowStore {
    conn: Connection,
    cfg: StoreConfig,
    reservoir: Reservoir,
}

impl std::fmt::Debug for ShadowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShadowStore")
            .field("path", &self.conn.path())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl ShadowStore {
    /// Opens (or creates) the store at `path`: schema, WAL mode, `synchronous = NORMAL`
    /// (a power cut can lose the last batches, never corrupt the file), `secure_delete`.
    /// Reopening keeps everything.
    pub fn open(path: &Path, cfg: StoreConfig) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path, cfg)
    }

    /// A store that lives as long as the value (tests, `--no-store` runs).
    pub fn open_in_memory(cfg: StoreConfig) -> Result<Self, StoreError> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path, cfg)
    }

    fn init(conn: Connection, path: &Path, cfg: StoreConfig) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // Returns the mode it got ("memory" for an in-memory database): either is fine.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        // secure_delete: a replaced sample's bytes are zeroed, not left in free pages.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON")
            .map_err(open_err)?;
        if let Err(found) = schema::ensure(&conn).map_err(open_err)? {
            return Err(StoreError::SchemaTooNew {
                path: path.to_owned(),
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        let reservoir = Reservoir::new(cfg.seed, cfg.samples_per_route);
        Ok(ShadowStore {
            conn,
            cfg,
            reservoir,
        })
    }

    /// The bounds in force.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The file, or `None` in memory.
    pub fn path(&self) -> Option<PathBuf> {
        self.conn
            .path()
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
    }

    /// Records a batch of outcomes in one transaction: totals, then for each mismatch its
    /// fields (bounded) and its sample (offered to the reservoir). All or nothing.
    pub fn record(&mut self, batch: &[Observation]) -> Result<(), StoreError> {
        let max_fields = self.cfg.max_fields_per_route;
        let tx = self.conn.transaction()?;
        let mut totals: BTreeMap<(&str, Outcome), u64> = BTreeMap::new();
        for o in batch {
            *totals.entry((o.route.as_str(), o.outcome)).or_default() += 1;
        }
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO totals (route, outcome, count) VALUES (?1, ?2, ?3)
                 ON CONFLICT (route, outcome) DO UPDATE SET count = count + excluded.count",
            )?;
            for ((route, outcome), n) in &totals {
                add.execute(params![route, outcome.as_str(), to_i64(*n)])?;
            }
        }
        for o in batch.iter().filter(|o| o.outcome == Outcome::Mismatch) {
            let fields: BTreeSet<String> = o
                .fields
                .iter()
                .map(|f| shadow_compare::collapse_indices(f))
                .collect();
            count_bounded(&tx, Table::Fields, &o.route, &fields, max_fields)?;
            if let Some(sample) = &o.sample {
                let k: i64 = tx
                    .prepare_cached(
                        "INSERT INTO seen (route, mismatches) VALUES (?1, 1)
                         ON CONFLICT (route) DO UPDATE SET mismatches = mismatches + 1
                         RETURNING mismatches",
                    )?
                    .query_row([&o.route], |r| r.get(0))?;
                let Some(slot) = self.reservoir.slot(&o.route, k.max(0) as u64) else {
                    continue;
                };
                let encode = |v: Result<String, serde_json::Error>| {
                    v.map_err(|source| StoreError::Encode {
                        route: o.route.clone(),
                        source,
                    })
                };
                let limit = self.cfg.max_body_bytes;
                let request = encode(serde_json::to_string(&sample.request.truncated(limit)))?;
                let legacy = encode(serde_json::to_string(&sample.legacy.truncated(limit)))?;
                let candidate = encode(serde_json::to_string(&sample.candidate.truncated(limit)))?;
                let report = encode(serde_json::to_string(&sample.report))?;
                tx.prepare_cached("DELETE FROM mismatches WHERE route = ?1 AND slot = ?2")?
                    .execute(params![o.route, to_i64(slot)])?;
                tx.prepare_cached(
                    "INSERT INTO mismatches
                       (route, slot, at_unix_ms, request, legacy, candidate, report)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    o.route,
                    to_i64(slot),
                    o.at_unix_ms,
                    request,
                    legacy,
                    candidate,
                    report
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Counts one legacy-vs-legacy comparison's differing fields (learned noise), with the
    /// same bound as [`ShadowStore::fields`]. Pointers are stored as given (duplicates in
    /// one call count once).
    pub fn record_learned(&mut self, route: &str, pointers: &[String]) -> Result<(), StoreError> {
        let max_fields = self.cfg.max_fields_per_route;
        let tx = self.conn.transaction()?;
        let pointers: BTreeSet<String> = pointers.iter().cloned().collect();
        count_bounded(&tx, Table::Learned, route, &pointers, max_fields)?;
        tx.commit()?;
        Ok(())
    }

    /// Totals of every route that has any, sorted by route.
    pub fn summary(&self) -> Result<Vec<RouteSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT route, outcome, count FROM totals ORDER BY route, outcome")?;
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
                out.push(RouteSummary::empty(&route));
            }
            // An outcome this version does not know (a newer writer) is left out.
            if let (Some(s), Some(outcome)) = (out.last_mut(), Outcome::from_name(&outcome)) {
                s.set(outcome, count.max(0) as u64);
            }
        }
        Ok(out)
    }

    /// The totals of one route (all zero when it has none).
    pub fn route_summary(&self, route: &str) -> Result<RouteSummary, StoreError> {
        let mut summary = RouteSummary::empty(route);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT outcome, count FROM totals WHERE route = ?1")?;
        let rows = stmt.query_map([route], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (outcome, count) = row?;
            if let Some(outcome) = Outcome::from_name(&outcome) {
                summary.set(outcome, count.max(0) as u64);
            }
        }
        Ok(summary)
    }

    /// Up to `limit` stored mismatches of `route`, most recent first (by `at_unix_ms`,
    /// then by id).
    pub fn diffs(&self, route: &str, limit: usize) -> Result<Vec<StoredMismatch>, StoreError> {
        self.mismatches(
            "SELECT id, at_unix_ms, request, legacy, candidate, report FROM mismatches
             WHERE route = ?1 ORDER BY at_unix_ms DESC, id DESC LIMIT ?2",
            route,
            limit,
        )
    }

    fn mismatches(
        &self,
        sql: &str,
        route: &str,
        limit: usize,
    ) -> Result<Vec<StoredMismatch>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![route, to_i64(limit as u64)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at_unix_ms, request, legacy, candidate, report) = row?;
            out.push(StoredMismatch {
                id,
                at_unix_ms,
                request: decode::<RecordedRequest>(id, "request", &request)?,
                legacy: decode::<RecordedResponse>(id, "legacy", &legacy)?,
                candidate: decode::<RecordedResponse>(id, "candidate", &candidate)?,
                report: decode::<DiffReport>(id, "report", &report)?,
            });
        }
        Ok(out)
    }

    /// Up to `limit` differing fields of `route`, most frequent first, ties by pointer.
    pub fn fields(&self, route: &str, limit: usize) -> Result<Vec<FieldCount>, StoreError> {
        self.counts(Table::Fields, route, limit)
    }

    /// Learned nondeterministic fields of `route`, most frequent first, ties by pointer.
    pub fn learned(&self, route: &str) -> Result<Vec<FieldCount>, StoreError> {
        self.counts(Table::Learned, route, usize::MAX)
    }

    fn counts(
        &self,
        table: Table,
        route: &str,
        limit: usize,
    ) -> Result<Vec<FieldCount>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT pointer, count FROM {} WHERE route = ?1 ORDER BY count DESC, pointer LIMIT ?2",
            table.name()
        ))?;
        let rows = stmt.query_map(params![route, to_i64(limit as u64)], |r| {
            Ok(FieldCount {
                pointer: r.get(0)?,
                count: r.get::<_, i64>(1)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Writes every stored mismatch of `route` into `dir` (created if missing) as
    /// `{route}-{id}.json`: pretty JSON with a trailing newline, keys in a fixed order,
    /// written in id order. Ids are never reused, so exporting again into the same
    /// directory rewrites a file only with the same mismatch. Returns the count.
    pub fn export(&self, route: &str, dir: &Path) -> Result<usize, StoreError> {
        if route.is_empty() || route.starts_with('.') || route.contains(['/', '\\']) {
            return Err(StoreError::ExportRoute {
                route: route.to_owned(),
            });
        }
        let all = self.mismatches(
            "SELECT id, at_unix_ms, request, legacy, candidate, report FROM mismatches
             WHERE route = ?1 ORDER BY id LIMIT ?2",
            route,
            usize::MAX,
        )?;
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Export {
            path: dir.to_owned(),
            source,
        })?;
        for m in &all {
            let fixture = Fixture {
                route,
                id: m.id,
                at_unix_ms: m.at_unix_ms,
                request: &m.request,
                legacy: &m.legacy,
                candidate: &m.candidate,
                differences: &m.report,
            };
            let path = dir.join(format!("{route}-{}.json", m.id));
            let mut bytes =
                serde_json::to_vec_pretty(&fixture).map_err(|source| StoreError::Encode {
                    route: route.to_owned(),
                    source,
                })?;
            bytes.push(b'\n');
            std::fs::write(&path, bytes).map_err(|source| StoreError::Export { path, source })?;
        }
        Ok(all.len())
    }

    /// Moves the WAL into the main file and truncates it (e.g. on shutdown, or before
    /// copying the file).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// One exported fixture; the field order is the file's key order.
#[derive(Serialize)]
struct Fixture<'a> {
    route: &'a str,
    id: i64,
    at_unix_ms: i64,
    request: &'a RecordedRequest,
    legacy: &'a RecordedResponse,
    candidate: &'a RecordedResponse,
    differences: &'a DiffReport,
}

#[derive(Clone, Copy)]
enum Table {
    Fields,
    Learned,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Fields => "fields",
            Table::Learned => "learned",
        }
    }
}

/// Adds 1 to each pointer's count; a pointer not yet counted is added while the route has
/// fewer than `max` distinct pointers (not counting [`OTHER_FIELD`]), else it counts under
/// [`OTHER_FIELD`] — at most once per call, so `(other)` counts observations too.
fn count_bounded(
    tx: &Transaction<'_>,
    table: Table,
    route: &str,
    pointers: &BTreeSet<String>,
    max: usize,
) -> Result<(), StoreError> {
    let t = table.name();
    let mut bump = tx.prepare_cached(&format!(
        "UPDATE {t} SET count = count + 1 WHERE route = ?1 AND pointer = ?2"
    ))?;
    let mut distinct = tx.prepare_cached(&format!(
        "SELECT COUNT(*) FROM {t} WHERE route = ?1 AND pointer != ?2"
    ))?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO {t} (route, pointer, count) VALUES (?1, ?2, 1)"
    ))?;
    let mut other = false;
    for p in pointers {
        if p == OTHER_FIELD {
            other = true;
            continue;
        }
        if bump.execute(params![route, p])? > 0 {
            continue;
        }
        let n: i64 = distinct.query_row(params![route, OTHER_FIELD], |r| r.get(0))?;
        if (n.max(0) as u64) < max as u64 {
            insert.execute(params![route, p])?;
        } else {
            other = true;
        }
    }
    if other && bump.execute(params![route, OTHER_FIELD])? == 0 {
        insert.execute(params![route, OTHER_FIELD])?;
    }
    Ok(())
}

fn decode<T: serde::de::DeserializeOwned>(
    id: i64,
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { id, column, source })
}

/// SQLite integers are i64; counts and limits saturate.
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cfg(fields: usize) -> StoreConfig {
        StoreConfig {
            samples_per_route: 3,
            max_fields_per_route: fields,
            max_body_bytes: 64,
            seed: 1,
        }
    }

    fn mismatch(route: &str, fields: &[&str]) -> Observation {
        Observation {
            route: route.into(),
            outcome: Outcome::Mismatch,
            at_unix_ms: 0,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            sample: None,
        }
    }

    #[test]
    fn totals_and_match_rate() {
        let mut s = ShadowStore::open_in_memory(cfg(10)).unwrap();
        let mut batch = vec![Observation::outcome("b", Outcome::Timeout, 0)];
        batch.extend((0..3).map(|_| Observation::outcome("a", Outcome::Match, 0)));
        batch.push(mismatch("a", &[]));
        s.record(&batch).unwrap();
        let summary = s.summary().unwrap();
        assert_eq!(
            summary.iter().map(|r| r.route.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!((summary[0].r#match, summary[0].mismatch), (3, 1));
        assert_eq!(summary[0].match_rate, 0.75);
        assert_eq!(summary[1].timeout, 1);
        assert_eq!(summary[1].match_rate, 1.0);
        assert_eq!(s.route_summary("a").unwrap(), summary[0]);
        assert_eq!(
            s.route_summary("none").unwrap(),
            RouteSummary::empty("none")
        );
    }

    #[test]
    fn fields_are_collapsed_deduplicated_and_bounded() {
        let mut s = ShadowStore::open_in_memory(cfg(2)).unwrap();
        s.record(&[
            mismatch("r", &["/items/3/score", "/items/4/score"]),
            mismatch("r", &["/items/0/score", "/b"]),
            mismatch("r", &["/c", "/d"]),
            mismatch("r", &["/b", "/e"]),
            // Fields of other outcomes are not counted.
            Observation {
                fields: vec!["/z".into()],
                ..Observation::outcome("r", Outcome::Match, 0)
            },
        ])
        .unwrap();
        let got: Vec<_> = s
            .fields("r", 10)
            .unwrap()
            .into_iter()
            .map(|f| (f.pointer, f.count))
            .collect();
        assert_eq!(
            got,
            // Ties by pointer: "(" sorts before "/".
            [
                (OTHER_FIELD.to_owned(), 2),
                ("/b".to_owned(), 2),
                ("/items/*/score".to_owned(), 2),
            ]
        );
        assert_eq!(s.fields("r", 1).unwrap().len(), 1);
    }

    #[test]
    fn learned_fields_are_bounded_too() {
        let mut s = ShadowStore::open_in_memory(cfg(1)).unwrap();
        s.record_learned("r", &["/ts".into(), "/ts".into()])
            .unwrap();
        s.record_learned("r", &["/ts".into(), "/id".into()])
            .unwrap();
        let got: Vec<_> = s
            .learned("r")
            .unwrap()
            .into_iter()
            .map(|f| (f.pointer, f.count))
            .collect();
        assert_eq!(got, [("/ts".to_owned(), 2), (OTHER_FIELD.to_owned(), 1)]);
        assert!(s.learned("other").unwrap().is_empty());
    }

    #[test]
    fn export_rejects_routes_that_are_not_file_names() {
        let s = ShadowStore::open_in_memory(cfg(1)).unwrap();
        for route in ["", "../x", "a/b", ".hidden", "a\\b"] {
            let e = s.export(route, Path::new("/nonexistent")).unwrap_err();
            assert!(matches!(e, StoreError::ExportRoute { .. }), "{route}: {e}");
            assert!(e.to_string().contains(&format!("{route:?}")), "{e}");
        }
    }
}
