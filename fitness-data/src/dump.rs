//! A canonical text dump of every table, row by row in primary-key order. Two databases hold
//! the same data exactly when their dumps are equal; the determinism tests rely on it.

use std::fmt::Write as _;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::error::Result;
use crate::schema::TABLES;

/// Every row of every table, one line each: `table|v1|v2|...` with text quoted as JSON-like
/// strings, `NULL` for null, and blobs as `x'hex'`.
pub fn dump(conn: &Connection) -> Result<String> {
    let mut out = String::new();
    for (table, order) in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            out.push_str(table);
            for i in 0..columns {
                out.push('|');
                match row.get_ref(i)? {
                    ValueRef::Null => out.push_str("NULL"),
                    ValueRef::Integer(v) => {
                        let _ = write!(out, "{v}");
                    }
                    ValueRef::Real(v) => {
                        let _ = write!(out, "{v:?}");
                    }
                    ValueRef::Text(t) => {
                        let _ = write!(out, "{:?}", String::from_utf8_lossy(t));
                    }
                    ValueRef::Blob(b) => {
                        out.push_str("x'");
                        for byte in b {
                            let _ = write!(out, "{byte:02x}");
                        }
                        out.push('\'');
                    }
                }
            }
            out.push('\n');
        }
    }
    Ok(out)
}
