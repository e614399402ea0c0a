//! Builders for observations and samples shared by the test modules.

use shadow_compare::Comparator;
use shadow_store::{
    MismatchSample, Observation, Outcome, RecordedRequest, RecordedResponse, StoreConfig,
};

pub fn config(samples_per_route: usize, seed: u64) -> StoreConfig {
    StoreConfig {
        samples_per_route,
        max_fields_per_route: 200,
        max_body_bytes: 64 * 1024,
        seed,
    }
}

pub fn response(status: u16, body: &str) -> RecordedResponse {
    RecordedResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.as_bytes().to_vec(),
        body_truncated_from: None,
        latency_ms: 12.5,
    }
}

/// Mismatch number `n`: `/items/0/score` differs (legacy n, candidate n + 1).
pub fn sample(n: i64) -> MismatchSample {
    let legacy = format!(r#"{{"items":[{{"id":1,"score":{n}}}]}}"#);
    let candidate = format!(r#"{{"items":[{{"id":1,"score":{}}}]}}"#, n + 1);
    MismatchSample {
        request: RecordedRequest {
            method: "GET".into(),
            uri: format!("/api/content/top?n={n}"),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            body_truncated_from: None,
        },
        report: Comparator::default()
            .compare_json(legacy.as_bytes(), candidate.as_bytes())
            .unwrap(),
        legacy: response(200, &legacy),
        candidate: response(200, &candidate),
    }
}

/// Mismatch number `n` of `route`, observed at `n` ms.
pub fn mismatch(route: &str, n: i64) -> Observation {
    Observation::mismatch(route, n, sample(n))
}

pub fn outcome(route: &str, outcome: Outcome) -> Observation {
    Observation::outcome(route, outcome, 0)
}
