//! `ficus-demo`: one command that generates the platform's data if missing and runs, in
//! one terminal, the legacy monolith, the extracted services and ficus with the
//! repository's routes.toml; optionally a traffic generator that behaves like users.
//! Ctrl-C drains the proxy and stops everything.

mod traffic;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Parser)]
#[command(name = "ficus-demo", about = "Run the fitness platform behind ficus")]
struct Cli {
    /// Where the generated database lives.
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
    /// Seed of the data generator (same seed, same data).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Users to generate when the database is missing.
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// The route table (edit it while the demo runs: ficus reloads it).
    #[arg(long, default_value = "routes.toml")]
    routes: PathBuf,
    /// Also run a traffic generator that logs in, browses, favourites, changes
    /// preferences and checks subscriptions, at about this many requests per second.
    #[arg(long, num_args = 0..=1, default_missing_value = "20")]
    traffic: Option<u32>,
    /// Bind every service and the proxy on free ephemeral ports (tests; several demos at once).
    #[arg(long)]
    ephemeral: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FICUS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ficus-demo: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Addresses read from (or, with --ephemeral, written into) the routes file.
struct Plan {
    routes_file: PathBuf,
    proxy: SocketAddr,
    admin: SocketAddr,
    legacy: SocketAddr,
    /// (upstream name in routes.toml, address) of the extracted services.
    extracted: Vec<(String, SocketAddr)>,
    /// With --ephemeral: the listeners bound on `127.0.0.1:0`, by "proxy", "admin",
    /// "legacy" or service name. They are held from choosing the port to serving on it, so
    /// no other process (another demo, a parallel test) can take a port in between.
    held: std::collections::HashMap<String, std::net::TcpListener>,
}

/// File in the data directory holding the legacy's JWT secret, read by the proxy.
const JWT_SECRET_FILE: &str = "legacy-jwt-secret";

/// Writes a secret readable by the owner only.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    f.write_all(secret.as_bytes())
        .with_context(|| format!("write {}", path.display()))
}

/// The extracted services the demo runs, by their upstream name in routes.toml.
const SERVICES: [&str; 3] = ["ranking", "subscriptions", "preferences"];

fn run(cli: Cli) -> anyhow::Result<()> {
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("create {}", cli.data_dir.display()))?;
    let db = cli.data_dir.join("fitness.db");
    ensure_data(&db, cli.seed, cli.users)?;
    // The proxy verifies the legacy's own tokens (routes.toml: auth.hs256_secret_file).
    let legacy_config = fitness_legacy::Config::from_env();
    write_secret(
        &cli.data_dir.join(JWT_SECRET_FILE),
        &legacy_config.jwt_secret,
    )?;
    let mut plan = plan(&cli)?;

    let services = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("demo-services")
        .enable_all()
        .build()?;
    let legacy = services.block_on(async {
        let conn = fitness_data::schema::open(&db)?;
        let state = fitness_legacy::AppState::new(conn, legacy_config);
        match plan.held.remove("legacy") {
            Some(l) => fitness_legacy::start_on_std(state, l),
            None => fitness_legacy::start(state, plan.legacy).await,
        }
        .with_context(|| format!("start legacy on {}", plan.legacy))
    })?;
    let mut extracted = Vec::new();
    for (name, addr) in &plan.extracted {
        let bound = plan.held.remove(name);
        let running = services.block_on(start_service(name, &db, *addr, bound))?;
        extracted.push((name.clone(), running));
    }
    let jobs = services.block_on(start_jobs(&db, &cli.data_dir, cli.ephemeral))?;

    let proxy_url = format!("http://{}", plan.proxy);
    println!(
        "\nficus demo is up (data: {}, seed {}):",
        db.display(),
        cli.seed
    );
    println!("  proxy:        {proxy_url}");
    println!(
        "  admin:        http://{}/admin/routes  (metrics: /metrics)",
        plan.admin
    );
    println!(
        "  legacy:       {}  (direct, deliberately insecure)",
        legacy.url()
    );
    for (name, running) in &extracted {
        println!("  {:<13} {}", format!("{name}:"), running.url());
    }
    println!(
        "  jobs:         {}/jobs  (notifications: {})",
        jobs.url(),
        cli.data_dir.join("notifications.jsonl").display()
    );
    println!(
        "  routes file:  {}  (edit it: ficus reloads it)",
        plan.routes_file.display()
    );
    println!("\ntry:");
    println!("  curl -s {proxy_url}/api/content/top?limit=3");
    println!(
        "  curl -s -X POST {proxy_url}/api/auth/login -H 'content-type: application/json' -d '{{\"email\":\"user7@fitness.example\",\"password\":\"password7\"}}'"
    );
    println!("  curl -s http://{}/admin/routes", plan.admin);
    println!("\nCtrl-C stops everything.\n");

    if let Some(rate) = cli.traffic {
        services.spawn(traffic::run(
            proxy_url.clone(),
            cli.users.min(10_000),
            rate.max(1),
        ));
    }

    let result = ficus::run(ficus::RunOptions {
        config: plan.routes_file.clone(),
        threads: 1,
        access_log: Some(ficus::access_log::Format::Text),
        handoff_socket: None,
        listeners: match (plan.held.remove("proxy"), plan.held.remove("admin")) {
            (Some(proxy), Some(admin)) => Some(ficus::PreBound { proxy, admin }),
            _ => None,
        },
    });
    services.block_on(async {
        let _ = legacy.stop().await;
        for (_, running) in extracted {
            let _ = running.stop().await;
        }
        jobs.stop().await;
    });
    services.shutdown_timeout(Duration::from_secs(5));
    result
}

/// The background-job worker over the demo database, with its schedules, notifying
/// into `data_dir/notifications.jsonl`.
async fn start_jobs(
    db: &Path,
    data_dir: &Path,
    ephemeral: bool,
) -> anyhow::Result<jobs::RunningWorker> {
    let mut settings = jobs::Settings::new(service_kit::Database::Sqlite(db.to_owned()));
    if !ephemeral {
        settings.listen = SocketAddr::from(([127, 0, 0, 1], 8094));
    }
    settings.scheduler = true;
    settings.schedules = jobs::config::default_schedules();
    settings.notifier = jobs::NotifierConfig::File(data_dir.join("notifications.jsonl"));
    let database = jobs::connect(&settings.database).await?;
    let notifier = jobs::build_notifier(&settings.notifier)?;
    let listen = settings.listen;
    jobs::start(settings, database, notifier, jobs::Clock::system())
        .await
        .with_context(|| format!("start the jobs worker on {listen}"))
}

/// Starts one extracted service over the demo database, on `bound` if the plan holds a
/// listener for it, else on `addr`.
async fn start_service(
    name: &str,
    db: &Path,
    addr: SocketAddr,
    bound: Option<std::net::TcpListener>,
) -> anyhow::Result<service_kit::Running> {
    use service_kit::Clock;
    use service_kit::sqlite::SqliteDb;
    let open = || SqliteDb::open(db).with_context(|| format!("open {} for {name}", db.display()));
    let router = match name {
        "ranking" => {
            let store = content_ranking::store::SqliteStore::new(open()?);
            let state = content_ranking::AppState::load(store, Clock::system())
                .await
                .map_err(|e| anyhow::anyhow!("load the ranking snapshot: {e:?}"))?;
            content_ranking::spawn_refresher(state.clone(), Duration::from_secs(30));
            content_ranking::app(state)
        }
        "subscriptions" => subscriptions::app(subscriptions::AppState::new(
            subscriptions::store::SqliteStore::new(open()?),
            Clock::system(),
        )),
        "preferences" => preferences::app(preferences::AppState::new(
            preferences::store::SqliteStore::new(open()?),
            Clock::system(),
        )),
        other => bail!("no extracted service named {other:?}"),
    };
    match bound {
        Some(l) => service_kit::start_on_std(router, l),
        None => service_kit::start(router, addr).await,
    }
    .with_context(|| format!("start {name} on {addr}"))
}

fn ensure_data(db: &Path, seed: u64, users: u32) -> anyhow::Result<()> {
    if db.exists() {
        let conn = fitness_data::schema::open(db)?;
        if fitness_data::schema::is_populated(&conn)? {
            return Ok(());
        }
        drop(conn);
        std::fs::remove_file(db)?;
    }
    println!(
        "generating {users} users (seed {seed}) into {} ...",
        db.display()
    );
    let mut conn = fitness_data::schema::open(db)?;
    let cfg = fitness_data::GenerateConfig {
        seed,
        users,
        ..fitness_data::GenerateConfig::default()
    };
    fitness_data::generate(&mut conn, &cfg)?;
    Ok(())
}

fn plan(cli: &Cli) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(&cli.routes)
        .with_context(|| format!("read {}", cli.routes.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .with_context(|| format!("parse {}", cli.routes.display()))?;
    let addr = |doc: &toml::Table, path: &[&str]| -> anyhow::Result<SocketAddr> {
        let mut v = doc.get(path[0]);
        for k in &path[1..] {
            v = v.and_then(|v| v.get(k));
        }
        let s = v
            .and_then(|v| v.as_str())
            .with_context(|| format!("{} has no {}", cli.routes.display(), path.join(".")))?;
        let s = s.strip_prefix("http://").unwrap_or(s).trim_end_matches('/');
        s.parse()
            .with_context(|| format!("{}: {s:?} is not ip:port", path.join(".")))
    };
    if !cli.ephemeral {
        let mut extracted = Vec::new();
        for name in SERVICES {
            if doc.get("upstreams").and_then(|u| u.get(name)).is_some() {
                extracted.push((name.to_owned(), addr(&doc, &["upstreams", name, "url"])?));
            }
        }
        return Ok(Plan {
            routes_file: cli.routes.clone(),
            proxy: addr(&doc, &["listen", "proxy"])?,
            admin: addr(&doc, &["listen", "admin"])?,
            legacy: addr(&doc, &["upstreams", "legacy", "url"])?,
            extracted,
            held: Default::default(),
        });
    }
    // Ephemeral: bind free loopback ports, keep the listeners, and write a copy of the
    // routes file naming them.
    let mut held = std::collections::HashMap::new();
    let mut free = |name: &str| -> anyhow::Result<SocketAddr> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let at = l.local_addr()?;
        held.insert(name.to_owned(), l);
        Ok(at)
    };
    let (proxy, admin, legacy) = (free("proxy")?, free("admin")?, free("legacy")?);
    let Some(toml::Value::Table(listen)) = doc.get_mut("listen") else {
        bail!("routes file has no [listen]")
    };
    listen.insert("proxy".into(), proxy.to_string().into());
    listen.insert("admin".into(), admin.to_string().into());
    let mut extracted = Vec::new();
    if let Some(toml::Value::Table(ups)) = doc.get_mut("upstreams") {
        for (name, up) in ups.iter_mut() {
            let at = if name == "legacy" {
                legacy
            } else {
                free(name)?
            };
            if SERVICES.contains(&name.as_str()) {
                extracted.push((name.clone(), at));
            }
            if let toml::Value::Table(t) = up {
                t.insert("url".into(), format!("http://{at}").into());
            }
        }
    }
    // The copy lives in the data directory: point the secret file at it.
    if let Some(toml::Value::Table(auth)) = doc.get_mut("auth") {
        if auth.contains_key("hs256_secret_file") {
            let abs = std::path::absolute(cli.data_dir.join(JWT_SECRET_FILE))?;
            auth.insert(
                "hs256_secret_file".into(),
                abs.to_string_lossy().into_owned().into(),
            );
        }
    }
    // An upstream the demo does not run gets a port nobody listens on (refused, not hung).
    held.retain(|name, _| {
        ["proxy", "admin", "legacy"].contains(&name.as_str()) || SERVICES.contains(&name.as_str())
    });
    let routes_file = cli.data_dir.join("routes.ephemeral.toml");
    std::fs::write(&routes_file, toml::to_string(&doc)?)?;
    Ok(Plan {
        routes_file,
        proxy,
        admin,
        legacy,
        extracted,
        held,
    })
}
