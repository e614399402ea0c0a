//! `ficus-pg-load`: copies a generated SQLite database of the fitness platform (or a freshly
//! generated one) into PostgreSQL, creating the shared schema. Used by
//! `scripts/postgres-test.sh` and to seed a Postgres for the extracted services.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;

/// Load the fitness platform's data into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "ficus-pg-load")]
struct Args {
    /// PostgreSQL url (postgres://user@host/db, or a socket dir as %2Fpath).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Schema to load into (created if missing); default: the server's search_path.
    #[arg(long, env = "DATABASE_SCHEMA")]
    schema: Option<String>,
    /// Generated SQLite file to copy; without it, data is generated with --seed/--users.
    #[arg(long)]
    sqlite: Option<PathBuf>,
    /// Generator seed (when no --sqlite).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Generated users (when no --sqlite); content etc. scale as in GenerateConfig::small.
    #[arg(long, default_value_t = 200)]
    users: u32,
    /// Drop the schema's tables first.
    #[arg(long)]
    replace: bool,
}

fn main() {
    service_kit::init_tracing();
    if let Err(e) = run(Args::parse()) {
        eprintln!("ficus-pg-load: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if !args.database_url.starts_with("postgres://")
        && !args.database_url.starts_with("postgresql://")
    {
        bail!("invalid --database-url: expected postgres://...");
    }
    let tables = match &args.sqlite {
        Some(path) => {
            let conn = fitness_data::open(path)
                .with_context(|| format!("cannot open sqlite file {}", path.display()))?;
            service_kit::pg::read_tables(&conn).context("cannot read the sqlite tables")?
        }
        None => {
            let mut conn = fitness_data::open_in_memory()?;
            fitness_data::generate(
                &mut conn,
                &fitness_data::GenerateConfig::small(args.seed, args.users),
            )
            .context("cannot generate data")?;
            service_kit::pg::read_tables(&conn)?
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let counts = rt.block_on(async {
        let mut client = service_kit::pg::connect(&args.database_url, None)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to {}",
                    service_kit::config::redact(&args.database_url)
                )
            })?;
        service_kit::pg::load(&mut client, args.schema.as_deref(), args.replace, &tables)
            .await
            .context("cannot load the data")
    })?;
    for (table, n) in counts {
        println!("{table}: {n} rows");
    }
    Ok(())
}
