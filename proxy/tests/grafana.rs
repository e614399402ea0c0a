//! docs/grafana/ficus.json only queries metrics that ficus really exposes.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_grafana_dashboard_queries_exists() {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana/ficus.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut exprs = Vec::new();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    let mut names: Vec<String> = Vec::new();
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(i) = rest.find("ficus_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    assert!(names.len() >= 8, "{names:?}");

    // A proxy that has served, shadowed (with a mismatch) and reloaded.
    let legacy = TestUpstream::start("legacy").await;
    let candidate = TestUpstream::start("candidate").await;
    candidate.set(Behaviour::Broken);
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy), ("candidate", &candidate)],
        "[[routes]]\nname = \"doc\"\npath = \"/doc\"\nmode = \"shadow\"\nextracted = \"candidate\"\n[routes.shadow]\nignore = [\"/generated_at\"]\n",
    ));
    let c = client();
    get(&c, &proxy.url("/doc")).await;
    let mut metrics = String::new();
    for _ in 0..500 {
        metrics =
            String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
        if metrics.contains("ficus_shadow_field_mismatches_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    for name in names {
        let present = metrics.lines().any(|l| {
            l.strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        });
        assert!(
            present,
            "the dashboard queries {name}, which /metrics does not expose:\n{metrics}"
        );
    }
}
