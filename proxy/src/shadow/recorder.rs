//! The recorder: shadow outcomes leave the data plane through a bounded channel to one
//! background thread that owns the mismatch store (SQLite, crate `shadow-store`). It also
//! keeps, in memory, what the data plane must decide quickly: the per-route bound on
//! distinct field pointers, and the comparator extended with learned noise.
//!
//! Redaction and serialisation happen on the recorder thread, never on a worker.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use shadow_compare::{Comparator, DiffReport, LearnedNoise};
use shadow_store::{
    FieldCount, MismatchSample, Outcome, RecordedRequest, RecordedResponse, Redaction,
    RouteSummary, ShadowStore, StoreConfig, StoreError, StoredMismatch,
};

/// Distinct pointers counted per route (metrics and store); the rest count as `(other)`.
pub const MAX_FIELDS_PER_ROUTE: usize = 100;
pub const OTHER_FIELD: &str = "(other)";
/// A learned field is ignored once it differed legacy-vs-legacy this many times.
pub const LEARNED_MIN_COUNT: u64 = 2;
const CHANNEL: usize = 4096;

/// A mismatch as captured on the worker, before redaction.
pub struct Sample {
    pub method: String,
    pub uri: String,
    pub request_headers: HeaderMap,
    pub request_body: Bytes,
    pub legacy: (u16, HeaderMap, Bytes, Duration),
    pub candidate: (u16, HeaderMap, Bytes, Duration),
    pub report: DiffReport,
    pub redact: Vec<String>,
}

pub struct Observation {
    pub route: String,
    pub outcome: &'static str,
    fields: Vec<String>,
    sample: Option<Box<Sample>>,
}

impl Observation {
    pub fn outcome(route: &str, outcome: &'static str) -> Self {
        Observation {
            route: route.to_owned(),
            outcome,
            fields: Vec::new(),
            sample: None,
        }
    }

    pub fn mismatch(route: &str, fields: Vec<String>, sample: Sample) -> Self {
        Observation {
            route: route.to_owned(),
            outcome: "mismatch",
            fields,
            sample: Some(Box::new(sample)),
        }
    }
}

enum Message {
    Observation(Observation),
    Learned(String, Vec<String>),
}

#[derive(Default)]
struct RouteMemory {
    fields: BTreeSet<String>,
    learned: LearnedNoise,
    /// Comparator with learned ignores, and the number of ignores it was built with.
    comparator: Option<(usize, Arc<Comparator>)>,
}

/// Handle to the recorder thread and the store's read side.
#[derive(Clone)]
pub struct Recorder {
    tx: SyncSender<Message>,
    reader: Arc<Mutex<ShadowStore>>,
    memory: Arc<Mutex<HashMap<String, RouteMemory>>>,
}

impl Recorder {
    /// Opens (or creates) the store at `path` and starts the recorder thread.
    pub fn start(
        path: &Path,
        samples_per_route: usize,
        max_body_bytes: usize,
    ) -> Result<Self, String> {
        let cfg = || StoreConfig {
            samples_per_route,
            max_body_bytes,
            // The recorder bounds fields itself (MAX_FIELDS_PER_ROUTE, then `(other)`).
            max_fields_per_route: MAX_FIELDS_PER_ROUTE + 1,
            ..StoreConfig::default()
        };
        let writer = ShadowStore::open(path, cfg()).map_err(|e| e.to_string())?;
        let reader = ShadowStore::open(path, cfg()).map_err(|e| e.to_string())?;
        let mut memory: HashMap<String, RouteMemory> = HashMap::new();
        // Restore the bounded field sets and learned noise, so bounds and learning survive restarts.
        for s in reader.summary().map_err(|e| e.to_string())? {
            let m = memory.entry(s.route.clone()).or_default();
            m.fields = reader
                .fields(&s.route, MAX_FIELDS_PER_ROUTE + 1)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|f| f.pointer)
                .collect();
            let learned = reader.learned(&s.route).map_err(|e| e.to_string())?;
            for f in learned {
                for _ in 0..f.count.min(LEARNED_MIN_COUNT) {
                    m.learned.record([f.pointer.clone()]);
                }
            }
        }
        let (tx, rx) = sync_channel(CHANNEL);
        std::thread::Builder::new()
            .name("ficus-shadow-recorder".into())
            .spawn(move || record_loop(writer, rx))
            .map_err(|e| e.to_string())?;
        Ok(Recorder {
            tx,
            reader: Arc::new(Mutex::new(reader)),
            memory: Arc::new(Mutex::new(memory)),
        })
    }

    /// Hands an observation to the recorder thread; drops it (logged) if the thread is behind.
    pub fn send(&self, o: Observation) {
        match self.tx.try_send(Message::Observation(o)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("shadow recorder is behind; an observation was not stored")
            }
            Err(TrySendError::Disconnected(_)) => tracing::error!("shadow recorder stopped"),
        }
    }

    /// Keeps at most [`MAX_FIELDS_PER_ROUTE`] distinct pointers per route; others become `(other)`.
    pub fn bound_fields(&self, route: &str, fields: Vec<String>) -> Vec<String> {
        let Ok(mut memory) = self.memory.lock() else {
            return fields;
        };
        let known = &mut memory.entry(route.to_owned()).or_default().fields;
        let mut out: Vec<String> = fields
            .into_iter()
            .map(|f| {
                if known.contains(&f) || known.len() < MAX_FIELDS_PER_ROUTE {
                    known.insert(f.clone());
                    f
                } else {
                    OTHER_FIELD.to_owned()
                }
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Records fields that differed between two legacy answers.
    pub fn learned(&self, route: &str, fields: Vec<String>) {
        if let Ok(mut memory) = self.memory.lock() {
            memory
                .entry(route.to_owned())
                .or_default()
                .learned
                .record(fields.iter().cloned());
        }
        let _ = self.tx.try_send(Message::Learned(route.to_owned(), fields));
    }

    /// The route's comparator extended with the learned nondeterministic fields.
    pub fn comparator_for(&self, route: &str, base: &Arc<Comparator>) -> Arc<Comparator> {
        let Ok(mut memory) = self.memory.lock() else {
            return base.clone();
        };
        let Some(m) = memory.get_mut(route) else {
            return base.clone();
        };
        let ignores = m.learned.ignore_patterns(LEARNED_MIN_COUNT);
        if ignores.is_empty() {
            return base.clone();
        }
        if let Some((n, c)) = &m.comparator {
            if *n == ignores.len() {
                return c.clone();
            }
        }
        match m.learned.apply(base.rules(), LEARNED_MIN_COUNT) {
            Ok(rules) => {
                let c = Arc::new(Comparator::new(rules));
                m.comparator = Some((ignores.len(), c.clone()));
                c
            }
            Err(_) => base.clone(),
        }
    }

    /// Drops learned comparators (after a reload changed the base rules).
    pub fn reset_comparators(&self) {
        if let Ok(mut memory) = self.memory.lock() {
            for m in memory.values_mut() {
                m.comparator = None;
            }
        }
    }

    pub fn summary(&self) -> Result<Vec<RouteSummary>, String> {
        self.read(|s| s.summary())
    }

    pub fn diffs(&self, route: &str, limit: usize) -> Result<Vec<StoredMismatch>, String> {
        self.read(|s| s.diffs(route, limit))
    }

    pub fn fields(&self, route: &str, limit: usize) -> Result<Vec<FieldCount>, String> {
        self.read(|s| s.fields(route, limit))
    }

    pub fn learned_fields(&self, route: &str) -> Result<Vec<FieldCount>, String> {
        self.read(|s| s.learned(route))
    }

    fn read<T>(&self, f: impl FnOnce(&ShadowStore) -> Result<T, StoreError>) -> Result<T, String> {
        let store = self
            .reader
            .lock()
            .map_err(|_| "shadow store lock poisoned".to_owned())?;
        f(&store).map_err(|e| e.to_string())
    }
}

fn record_loop(mut store: ShadowStore, rx: Receiver<Message>) {
    let mut redactions: HashMap<Vec<String>, Redaction> = HashMap::new();
    while let Ok(first) = rx.recv() {
        // Drain what is queued into one transaction.
        let mut batch = Vec::new();
        let mut learned = Vec::new();
        for m in std::iter::once(first).chain(rx.try_iter().take(511)) {
            match m {
                Message::Observation(o) => batch.push(convert(o, &mut redactions)),
                Message::Learned(route, fields) => learned.push((route, fields)),
            }
        }
        if let Err(e) = store.record(&batch) {
            tracing::error!(error = %e, "cannot record shadow observations");
        }
        for (route, fields) in learned {
            if let Err(e) = store.record_learned(&route, &fields) {
                tracing::error!(error = %e, "cannot record learned noise");
            }
        }
    }
}

fn outcome(s: &str) -> Outcome {
    match s {
        "match" => Outcome::Match,
        "mismatch" => Outcome::Mismatch,
        "error" => Outcome::Error,
        "timeout" => Outcome::Timeout,
        "dropped" => Outcome::Dropped,
        _ => Outcome::Skipped,
    }
}

fn headers(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn convert(
    o: Observation,
    redactions: &mut HashMap<Vec<String>, Redaction>,
) -> shadow_store::Observation {
    let sample = o.sample.and_then(|s| {
        let s = *s;
        let redaction = match redactions.get(&s.redact) {
            Some(r) => r,
            None => {
                let r = Redaction::new(&Redaction::default_headers(), &s.redact).ok()?;
                redactions.entry(s.redact.clone()).or_insert(r)
            }
        };
        let mut request = RecordedRequest {
            method: s.method,
            uri: s.uri,
            headers: headers(&s.request_headers),
            body: s.request_body.to_vec(),
            body_truncated_from: None,
        };
        let response =
            |(status, h, body, latency): (u16, HeaderMap, Bytes, Duration)| RecordedResponse {
                status,
                headers: headers(&h),
                body: body.to_vec(),
                body_truncated_from: None,
                latency_ms: latency.as_secs_f64() * 1000.0,
            };
        let (mut legacy, mut candidate) = (response(s.legacy), response(s.candidate));
        redaction.apply_request(&mut request);
        redaction.apply_response(&mut legacy);
        redaction.apply_response(&mut candidate);
        let mut report = s.report;
        redaction.apply_report(&mut report);
        Some(MismatchSample {
            request,
            legacy,
            candidate,
            report,
        })
    });
    shadow_store::Observation {
        route: o.route,
        outcome: outcome(o.outcome),
        at_unix_ms: super::now_ms(),
        fields: o.fields,
        sample,
    }
}
