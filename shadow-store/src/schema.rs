//! The SQLite schema, its version (`PRAGMA user_version`) and the migration from the
//! layout the proxy wrote before this crate existed. Owns DDL only; queries live in
//! `store`.

use rusqlite::{Connection, OptionalExtension};

/// The schema version this crate writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// Tables. `totals`, `fields`, `learned` and `seen` have the same shape as in the proxy's
/// earlier built-in store, so such a file opens with its counts intact.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS totals (
  route TEXT NOT NULL, outcome TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (route, outcome));
CREATE TABLE IF NOT EXISTS fields (
  route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (route, pointer));
CREATE TABLE IF NOT EXISTS learned (
  route TEXT NOT NULL, pointer TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY (route, pointer));
CREATE TABLE IF NOT EXISTS seen (
  route TEXT PRIMARY KEY, mismatches INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mismatches (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  route TEXT NOT NULL, slot INTEGER NOT NULL, at_unix_ms INTEGER NOT NULL,
  request TEXT NOT NULL, legacy TEXT NOT NULL, candidate TEXT NOT NULL, report TEXT NOT NULL,
  UNIQUE (route, slot));
CREATE INDEX IF NOT EXISTS mismatches_recent ON mismatches (route, at_unix_ms DESC, id DESC);
";

/// The proxy's earlier `samples(route, slot, at_unix_ms, sample)` table held the whole
/// sample as one JSON object whose parts have the shapes of this crate's JSON (text bodies).
const MIGRATE_SAMPLES: &str = "
INSERT INTO mismatches (route, slot, at_unix_ms, request, legacy, candidate, report)
  SELECT route, slot, at_unix_ms,
         json_extract(sample, '$.request'), json_extract(sample, '$.legacy'),
         json_extract(sample, '$.candidate'), json_extract(sample, '$.report')
  FROM samples ORDER BY rowid;
DROP TABLE samples;
";

/// Creates or upgrades the schema. Returns the version found before, for errors.
pub(crate) fn ensure(conn: &Connection) -> Result<Result<(), i64>, rusqlite::Error> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Ok(Err(found));
    }
    if found == SCHEMA_VERSION {
        return Ok(Ok(()));
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        // Re-read under the write lock: another connection may have upgraded meanwhile.
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found >= SCHEMA_VERSION {
            return Ok(());
        }
        conn.execute_batch(TABLES)?;
        if has_legacy_samples(conn)? {
            conn.execute_batch(MIGRATE_SAMPLES)?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(Ok(()))
}

fn has_legacy_samples(conn: &Connection) -> Result<bool, rusqlite::Error> {
    conn.query_row(
        "SELECT 1 FROM pragma_table_info('samples') WHERE name = 'sample'",
        [],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}
