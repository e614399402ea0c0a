//! The PostgreSQL side of every service's store: a small pool of `tokio-postgres` clients
//! (no TLS: production reaches its managed Postgres over a private network or a local
//! proxy), the shared schema translated for PostgreSQL, and the loader that copies a
//! generated SQLite database into it (`ficus-pg-load`, `scripts/postgres-test.sh`).

use std::sync::atomic::{AtomicUsize, Ordering};

use fitness_data::models::{
    Category, Content, Intensity, Plan, Preferences, Subscription, SubscriptionStatus,
};
use fitness_data::rusqlite::Connection;
use fitness_data::rusqlite::types::Value as SqlValue;
use fitness_data::time::Timestamp;
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, GenericClient, NoTls};

use crate::sqlite::StoreError;

/// The shared DDL for PostgreSQL: the SQLite DDL is portable except that unix seconds and
/// ids need 64 bits, so every `INTEGER` becomes `BIGINT`.
pub fn ddl() -> String {
    fitness_data::schema::DDL.replace("INTEGER", "BIGINT")
}

/// `name` quoted as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A few PostgreSQL connections, handed out round robin; a closed one is reopened.
pub struct PgPool {
    url: String,
    schema: Option<String>,
    clients: Vec<Mutex<Client>>,
    next: AtomicUsize,
}

/// Opens one client, sets its `search_path`, and drives its connection in a task.
pub async fn connect(url: &str, schema: Option<&str>) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(source = "downstream", error = %e, "postgres connection ended");
        }
    });
    if let Some(s) = schema {
        client
            .batch_execute(&format!("SET search_path TO {}", quote_ident(s)))
            .await?;
    }
    Ok(client)
}

impl PgPool {
    /// Opens `size` connections to `url` (at least one).
    pub async fn connect(url: &str, schema: Option<&str>, size: usize) -> Result<Self, StoreError> {
        let mut clients = Vec::new();
        for _ in 0..size.max(1) {
            clients.push(Mutex::new(connect(url, schema).await?));
        }
        Ok(Self {
            url: url.to_owned(),
            schema: schema.map(str::to_owned),
            clients,
            next: AtomicUsize::new(0),
        })
    }

    /// A client for exclusive use (transactions need `&mut`).
    pub async fn get(&self) -> Result<MutexGuard<'_, Client>, StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.clients.len();
        let mut guard = 'found: {
            for i in 0..n {
                if let Ok(g) = self.clients[(start + i) % n].try_lock() {
                    break 'found g;
                }
            }
            self.clients[start % n].lock().await
        };
        if guard.is_closed() {
            *guard = connect(&self.url, self.schema.as_deref()).await?;
        }
        Ok(guard)
    }

    /// A trivial query, for `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.get().await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}

/// Every row of one table, read from SQLite.
#[derive(Debug, Clone)]
pub struct TableRows {
    pub table: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// Reads every table of the shared schema from a generated SQLite database.
pub fn read_tables(sqlite: &Connection) -> Result<Vec<TableRows>, StoreError> {
    let mut out = Vec::new();
    for (table, order) in fitness_data::schema::TABLES {
        let mut stmt = sqlite.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
        let columns: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let n = columns.len();
        let rows = stmt
            .query_map([], |r| (0..n).map(|i| r.get::<_, SqlValue>(i)).collect())?
            .collect::<Result<Vec<Vec<SqlValue>>, _>>()?;
        out.push(TableRows {
            table,
            columns,
            rows,
        });
    }
    Ok(out)
}

fn param(value: &SqlValue, ty: &Type) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    let bad = || StoreError::Corrupt {
        field: "row value",
        value: format!("{value:?} for a {ty} column"),
    };
    Ok(match (value, ty) {
        (SqlValue::Null, &Type::INT8) => Box::new(None::<i64>),
        (SqlValue::Null, &Type::TEXT) => Box::new(None::<String>),
        (SqlValue::Integer(i), &Type::INT8) => Box::new(*i),
        (SqlValue::Text(s), &Type::TEXT) => Box::new(s.clone()),
        _ => return Err(bad()),
    })
}

/// Creates the schema (optionally in its own `schema`, dropped first when `replace`) and
/// copies `tables` into it in one transaction. Returns the rows copied per table.
pub async fn load(
    client: &mut Client,
    schema: Option<&str>,
    replace: bool,
    tables: &[TableRows],
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    let tx = client.transaction().await?;
    if let Some(s) = schema {
        let q = quote_ident(s);
        if replace {
            tx.batch_execute(&format!("DROP SCHEMA IF EXISTS {q} CASCADE"))
                .await?;
        }
        tx.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {q}; SET LOCAL search_path TO {q}"
        ))
        .await?;
    } else if replace {
        let drops: Vec<String> = fitness_data::schema::TABLES
            .iter()
            .rev()
            .map(|(t, _)| format!("DROP TABLE IF EXISTS {t} CASCADE;"))
            .collect();
        tx.batch_execute(&drops.concat()).await?;
    }
    tx.batch_execute(&ddl()).await?;
    let mut counts = Vec::new();
    for t in tables {
        let ncols = t.columns.len().max(1);
        let chunk = (60_000 / ncols).clamp(1, 1000);
        let types = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                t.table,
                t.columns.join(", "),
                (1..=ncols)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await?
            .params()
            .to_vec();
        for rows in t.rows.chunks(chunk) {
            let values: Vec<String> = (0..rows.len())
                .map(|r| {
                    let cells: Vec<String> =
                        (1..=ncols).map(|c| format!("${}", r * ncols + c)).collect();
                    format!("({})", cells.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                t.table,
                t.columns.join(", "),
                values.join(", ")
            );
            let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
            for row in rows {
                for (value, ty) in row.iter().zip(&types) {
                    params.push(param(value, ty)?);
                }
            }
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            tx.execute(sql.as_str(), &refs).await?;
        }
        counts.push((t.table, t.rows.len() as u64));
    }
    tx.commit().await?;
    Ok(counts)
}

// ---------------------------------------------------------------- shared-database reads
//
// The PostgreSQL twins of the `fitness_data::queries` the services need; same rows, same
// models. Enum and list columns are TEXT, booleans BIGINT 0/1, timestamps BIGINT seconds.

fn parse_text<T: std::str::FromStr>(field: &'static str, text: String) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt { field, value: text })
}

/// Whether user `id` exists.
pub async fn user_exists(client: &impl GenericClient, id: i64) -> Result<bool, StoreError> {
    Ok(client
        .query_opt("SELECT 1::BIGINT FROM users WHERE id = $1", &[&id])
        .await?
        .is_some())
}

/// The dataset clock (`meta.dataset_now`).
pub async fn dataset_now(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_opt("SELECT value FROM meta WHERE key = 'dataset_now'", &[])
        .await?;
    let text: String = row.map(|r| r.get(0)).unwrap_or_default();
    parse_text("meta.dataset_now", text)
}

/// User `user_id`'s preferences, if any.
pub async fn preferences(
    client: &impl GenericClient,
    user_id: i64,
) -> Result<Option<Preferences>, StoreError> {
    let Some(r) = client
        .query_opt(
            "SELECT user_id, categories, intensity, max_duration_minutes, email_opt_in, updated_at \
             FROM preferences WHERE user_id = $1",
            &[&user_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let categories: String = r.get(1);
    let intensity: Option<String> = r.get(2);
    Ok(Some(Preferences {
        user_id: r.get(0),
        categories: fitness_data::queries::parse_categories(&categories)?,
        intensity: intensity
            .map(|i| parse_text::<Intensity>("preferences.intensity", i))
            .transpose()?,
        max_duration_minutes: r.get(3),
        email_opt_in: r.get::<_, i64>(4) != 0,
        updated_at: Timestamp(r.get(5)),
    }))
}

/// Inserts or replaces `prefs` (the user must exist).
pub async fn put_preferences(
    client: &impl GenericClient,
    prefs: &Preferences,
) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO preferences (user_id, categories, intensity, max_duration_minutes, email_opt_in, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id) DO UPDATE SET categories = excluded.categories, \
             intensity = excluded.intensity, max_duration_minutes = excluded.max_duration_minutes, \
             email_opt_in = excluded.email_opt_in, updated_at = excluded.updated_at",
            &[
                &prefs.user_id,
                &fitness_data::queries::format_categories(&prefs.categories),
                &prefs.intensity.map(|i| i.as_str()),
                &prefs.max_duration_minutes,
                &i64::from(prefs.email_opt_in),
                &prefs.updated_at.0,
            ],
        )
        .await?;
    Ok(())
}

/// User `user_id`'s subscription, if any; `for_update` locks the row for a transition.
pub async fn subscription(
    client: &impl GenericClient,
    user_id: i64,
    for_update: bool,
) -> Result<Option<Subscription>, StoreError> {
    let sql = format!(
        "SELECT id, user_id, plan, status, started_at, current_period_end, cancelled_at, updated_at \
         FROM subscriptions WHERE user_id = $1{}",
        if for_update { " FOR UPDATE" } else { "" }
    );
    let Some(r) = client.query_opt(sql.as_str(), &[&user_id]).await? else {
        return Ok(None);
    };
    Ok(Some(Subscription {
        id: r.get(0),
        user_id: r.get(1),
        plan: parse_text::<Plan>("subscriptions.plan", r.get(2))?,
        status: parse_text::<SubscriptionStatus>("subscriptions.status", r.get(3))?,
        started_at: Timestamp(r.get(4)),
        current_period_end: Timestamp(r.get(5)),
        cancelled_at: r.get::<_, Option<i64>>(6).map(Timestamp),
        updated_at: Timestamp(r.get(7)),
    }))
}

/// Every content item, by id.
pub async fn all_content(client: &impl GenericClient) -> Result<Vec<Content>, StoreError> {
    let rows = client
        .query(
            "SELECT id, title, description, category, intensity, duration_minutes, instructor_id, published_at \
             FROM content ORDER BY id",
            &[],
        )
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Content {
                id: r.get(0),
                title: r.get(1),
                description: r.get(2),
                category: parse_text::<Category>("content.category", r.get(3))?,
                intensity: parse_text::<Intensity>("content.intensity", r.get(4))?,
                duration_minutes: r.get(5),
                instructor_id: r.get(6),
                published_at: Timestamp(r.get(7)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_uses_64_bit_integers() {
        let d = ddl();
        assert!(!d.contains("INTEGER"));
        assert!(d.contains("id            BIGINT PRIMARY KEY"));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn reads_every_table() {
        let mut conn = fitness_data::open_in_memory().unwrap();
        fitness_data::generate(&mut conn, &fitness_data::GenerateConfig::small(1, 20)).unwrap();
        let tables = read_tables(&conn).unwrap();
        assert_eq!(tables.len(), fitness_data::schema::TABLES.len());
        let users = tables.iter().find(|t| t.table == "users").unwrap();
        assert_eq!(users.rows.len(), 20);
    }
}
