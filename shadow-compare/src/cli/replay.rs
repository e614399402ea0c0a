//! `shadow-compare replay`: send each recorded request to the legacy and the candidate
//! server, compare the answers, and write a summary report.
//!
//! Sends only to the two base URLs given on the command line. Requests run on a small
//! fixed pool of workers (`--concurrency`); the report lists mismatches in file order.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use shadow_compare::{Comparator, DiffReport, Response};

use super::{Outcome, RuleArgs};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// JSONL file: one `{"method", "path", "headers"?, "body"?}` object per line.
    #[arg(long, value_name = "FILE")]
    requests: PathBuf,
    /// Base URL of the legacy server, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    legacy: String,
    /// Base URL of the candidate server.
    #[arg(long, value_name = "URL")]
    candidate: String,
    /// Write the full JSON report here.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Requests in flight at once (each goes to both servers).
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Per-request timeout in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Also compare this response header; repeatable.
    #[arg(long = "compare-header", value_name = "NAME")]
    compare_headers: Vec<String>,
    /// How many mismatches (and errors) the report keeps in full.
    #[arg(long, value_name = "N", default_value_t = 20)]
    max_mismatches: usize,
    #[command(flatten)]
    rules: RuleArgs,
}

/// One recorded request. Unknown keys (e.g. recorded responses) are ignored.
#[derive(Debug, Clone, Deserialize)]
struct RecordedRequest {
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// A JSON string is sent as-is; any other JSON value is sent serialised, as JSON.
    #[serde(default)]
    body: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct FieldCount {
    field: String,
    count: u64,
}

#[derive(Debug, Serialize)]
struct Mismatch {
    line: usize,
    method: String,
    path: String,
    report: DiffReport,
}

#[derive(Debug, Serialize)]
struct ReplayFailure {
    line: usize,
    method: String,
    path: String,
    error: String,
}

/// The `--out` report.
#[derive(Debug, Serialize)]
struct ReplayReport {
    legacy: String,
    candidate: String,
    total: usize,
    matched: usize,
    mismatched: usize,
    errors: usize,
    /// matched / (matched + mismatched); 1.0 when nothing was compared.
    match_rate: f64,
    top_fields: Vec<FieldCount>,
    mismatches: Vec<Mismatch>,
    failures: Vec<ReplayFailure>,
}

enum Verdict {
    Match,
    Mismatch(DiffReport),
    Failed(String),
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let comparator = Comparator::new(args.rules.to_rules(&args.compare_headers)?);
    let requests = load(&args.requests)?;
    let legacy = base_url(&args.legacy, "--legacy")?;
    let candidate = base_url(&args.candidate, "--candidate")?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .build()
        .context("building the HTTP client")?;

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(requests.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} requests {elapsed} (eta {eta})")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let results = runtime.block_on(replay_all(
        Arc::new(requests.clone()),
        Arc::new(comparator),
        client,
        legacy.clone(),
        candidate.clone(),
        args.concurrency.max(1),
        progress.clone(),
    ))?;
    progress.finish_and_clear();

    let report = summarise(&requests, results, &legacy, &candidate, args.max_mismatches);
    print_summary(&report);
    if let Some(out) = &args.out {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(out, json).with_context(|| format!("writing report {}", out.display()))?;
        println!("report written to {}", out.display());
    }
    Ok(if report.mismatched == 0 && report.errors == 0 {
        Outcome::Equal
    } else {
        Outcome::Different
    })
}

fn base_url(url: &str, flag: &str) -> anyhow::Result<String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("{flag} {url:?} must be an http:// URL, e.g. http://127.0.0.1:8080");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Read the JSONL file; `(line number, request)`, blank lines skipped.
fn load(path: &PathBuf) -> anyhow::Result<Vec<(usize, RecordedRequest)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading requests file {}", path.display()))?;
    let mut requests = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let request: RecordedRequest = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{number}: expected {{\"method\": \"GET\", \"path\": \"/...\", \"headers\": {{}}, \"body\": ...}}",
                path.display()
            )
        })?;
        if !request.path.starts_with('/') {
            bail!(
                "{}:{number}: path {:?} must start with \"/\"",
                path.display(),
                request.path
            );
        }
        if reqwest::Method::from_bytes(request.method.as_bytes()).is_err() {
            bail!(
                "{}:{number}: method {:?} is not an HTTP method",
                path.display(),
                request.method
            );
        }
        requests.push((number, request));
    }
    Ok(requests)
}

async fn replay_all(
    requests: Arc<Vec<(usize, RecordedRequest)>>,
    comparator: Arc<Comparator>,
    client: reqwest::Client,
    legacy: String,
    candidate: String,
    concurrency: usize,
    progress: ProgressBar,
) -> anyhow::Result<Vec<Verdict>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(requests.len().max(1)) {
        let (requests, comparator, client) = (requests.clone(), comparator.clone(), client.clone());
        let (legacy, candidate, next, progress) = (
            legacy.clone(),
            candidate.clone(),
            next.clone(),
            progress.clone(),
        );
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, request)) = requests.get(index) else {
                    break;
                };
                let outcome = replay_one(&client, &comparator, &legacy, &candidate, request).await;
                done.push((index, outcome));
                progress.inc(1);
            }
            done
        });
    }
    let mut results: Vec<Option<Verdict>> = (0..requests.len()).map(|_| None).collect();
    while let Some(joined) = workers.join_next().await {
        for (index, outcome) in joined.context("a replay worker panicked")? {
            results[index] = Some(outcome);
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Verdict::Failed("not replayed".into())))
        .collect())
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    request: &RecordedRequest,
) -> Result<Answer, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| format!("method {:?}: {e}", request.method))?;
    let mut builder = client.request(method, format!("{base}{}", request.path));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    match &request.body {
        None => {}
        Some(serde_json::Value::String(text)) => builder = builder.body(text.clone()),
        Some(value) => {
            if !request
                .headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                builder = builder.header("content-type", "application/json");
            }
            builder = builder.body(value.to_string());
        }
    }
    let response = builder.send().await.map_err(|e| format!("{e:#}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| format!("{e:#}"))?;
    Ok(Answer {
        status,
        headers,
        body: body.to_vec(),
    })
}

async fn replay_one(
    client: &reqwest::Client,
    comparator: &Comparator,
    legacy: &str,
    candidate: &str,
    request: &RecordedRequest,
) -> Verdict {
    let (l, c) = tokio::join!(
        send(client, legacy, request),
        send(client, candidate, request)
    );
    let (l, c) = match (l, c) {
        (Ok(l), Ok(c)) => (l, c),
        (Err(e), _) => return Verdict::Failed(format!("legacy: {e}")),
        (_, Err(e)) => return Verdict::Failed(format!("candidate: {e}")),
    };
    let report = comparator.compare(
        &Response {
            status: l.status,
            headers: &l.headers,
            body: &l.body,
        },
        &Response {
            status: c.status,
            headers: &c.headers,
            body: &c.body,
        },
    );
    if report.is_equal() {
        Verdict::Match
    } else {
        Verdict::Mismatch(report)
    }
}

fn summarise(
    requests: &[(usize, RecordedRequest)],
    results: Vec<Verdict>,
    legacy: &str,
    candidate: &str,
    keep: usize,
) -> ReplayReport {
    let (mut matched, mut mismatched, mut errors) = (0, 0, 0);
    let mut fields: BTreeMap<String, u64> = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut failures = Vec::new();
    for ((line, request), result) in requests.iter().zip(results) {
        match result {
            Verdict::Match => matched += 1,
            Verdict::Mismatch(report) => {
                mismatched += 1;
                for field in report.fields() {
                    *fields.entry(field).or_default() += 1;
                }
                if mismatches.len() < keep {
                    mismatches.push(Mismatch {
                        line: *line,
                        method: request.method.clone(),
                        path: request.path.clone(),
                        report,
                    });
                }
            }
            Verdict::Failed(error) => {
                errors += 1;
                if failures.len() < keep {
                    failures.push(ReplayFailure {
                        line: *line,
                        method: request.method.clone(),
                        path: request.path.clone(),
                        error,
                    });
                }
            }
        }
    }
    let mut top_fields: Vec<FieldCount> = fields
        .into_iter()
        .map(|(field, count)| FieldCount { field, count })
        .collect();
    top_fields.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.field.cmp(&b.field)));
    top_fields.truncate(20);
    let compared = matched + mismatched;
    ReplayReport {
        legacy: legacy.to_owned(),
        candidate: candidate.to_owned(),
        total: requests.len(),
        matched,
        mismatched,
        errors,
        match_rate: if compared == 0 {
            1.0
        } else {
            matched as f64 / compared as f64
        },
        top_fields,
        mismatches,
        failures,
    }
}

fn print_summary(report: &ReplayReport) {
    println!(
        "replayed {} requests: {} matched, {} mismatched, {} errors (match rate {:.1}%)",
        report.total,
        report.matched,
        report.mismatched,
        report.errors,
        report.match_rate * 100.0
    );
    if !report.top_fields.is_empty() {
        println!("top differing fields:");
        for field in report.top_fields.iter().take(10) {
            let name = if field.field.is_empty() {
                "(body bytes)"
            } else {
                field.field.as_str()
            };
            println!("  {:>6}  {name}", field.count);
        }
    }
    for failure in report.failures.iter().take(5) {
        println!(
            "error: line {}: {} {}: {}",
            failure.line, failure.method, failure.path, failure.error
        );
    }
}
