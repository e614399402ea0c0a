//! docs/grafana/ficus.json only queries metrics that ficus really exposes, with labels
//! those metrics really have.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::*;

/// What one query expects of the scrape: metric names, and labels per metric.
#[derive(Debug, Default)]
struct Uses {
    metrics: BTreeSet<String>,
    /// (metric, label, where it was used).
    labels: Vec<(String, String, String)>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Index of the `)` closing the `(` at `open`.
fn closing(expr: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quoted = false;
    for (i, c) in expr.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The `ficus_*` metrics named in `expr` (outside quoted strings), with their positions.
fn metrics_in(expr: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    let bytes = expr.as_bytes();
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c == '"' {
            quoted = !quoted;
        } else if !quoted
            && expr[i..].starts_with("ficus_")
            && (i == 0 || !is_name_char(bytes[i - 1] as char))
        {
            let name: String = expr[i..].chars().take_while(|c| is_name_char(*c)).collect();
            i += name.len();
            out.push((i - name.len(), name));
            continue;
        }
        i += 1;
    }
    out
}

/// Index of the `}` that ends a matcher list (quoted values may hold any character).
fn matcher_end(list: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in list.char_indices() {
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (true, false, '"') => quoted = false,
            (true, _, _) => escaped = false,
            (false, _, '"') => quoted = true,
            (false, _, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Label names of a matcher list `{a="x",b!~"y|z"}` (without the braces).
fn matcher_labels(list: &str) -> Vec<String> {
    let mut labels = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut current = String::new();
    let mut in_name = true;
    for c in list.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            ',' => in_name = true,
            '=' | '!' | '~' => {
                if in_name && !current.trim().is_empty() {
                    labels.push(current.trim().to_owned());
                }
                current.clear();
                in_name = false;
            }
            c if in_name => current.push(c),
            _ => {}
        }
    }
    labels
}

/// Metrics and labels a PromQL expression of the dashboard relies on: matchers attach
/// to their metric; `by (...)` and `without (...)` labels to every metric of the
/// aggregated expression, written `sum by (labels) (expr)`.
fn uses(expr: &str) -> Uses {
    let mut u = Uses::default();
    let found = metrics_in(expr);
    for (at, name) in &found {
        u.metrics.insert(name.clone());
        let rest = &expr[at + name.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let end = matcher_end(list).expect("a matcher list is closed");
            for label in matcher_labels(&list[..end]) {
                u.labels
                    .push((name.clone(), label, format!("matcher in {expr}")));
            }
        }
    }
    for keyword in [" by (", " without (", " on (", " ignoring ("] {
        let mut from = 0;
        while let Some(i) = expr[from..].find(keyword) {
            let open = from + i + keyword.len() - 1;
            let close = closing(expr, open).expect("balanced parentheses");
            let labels: Vec<String> = expr[open + 1..close]
                .split(',')
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect();
            from = close;
            assert!(
                !matches!(keyword, " on (" | " ignoring ("),
                "vector matching is not checked by this test yet: {expr}"
            );
            let arg = expr[close + 1..].trim_start();
            assert!(
                arg.starts_with('('),
                "write the aggregation as `sum by (labels) (expr)` so its labels can be checked: {expr}"
            );
            let arg_open = close + 1 + (expr[close + 1..].len() - arg.len());
            let arg_close = closing(expr, arg_open).expect("balanced parentheses");
            for (at, name) in &found {
                if (arg_open..arg_close).contains(at) {
                    for label in &labels {
                        u.labels.push((
                            name.clone(),
                            label.clone(),
                            format!("`{}{})` in {expr}", keyword.trim(), labels.join(", ")),
                        ));
                    }
                }
            }
        }
    }
    u
}

/// Label names of every series in a Prometheus text exposition, by series name
/// (histograms as `_bucket`, `_sum`, `_count`).
fn scraped_labels(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name: String = line.chars().take_while(|c| is_name_char(*c)).collect();
        let labels = out.entry(name.clone()).or_default();
        if let Some(list) = line[name.len()..].strip_prefix('{') {
            let end = matcher_end(list).unwrap_or(list.len());
            labels.extend(matcher_labels(&list[..end]));
        }
    }
    out
}

#[test]
fn the_query_reader_finds_metrics_and_labels() {
    let u = uses(
        r#"sum by (le, route) (rate(ficus_x_bucket{route=~"a,b}|c",upstream!="ficus"}[5m])) / clamp_min(sum(rate(ficus_y[5m])), 1e-9)"#,
    );
    let pairs: BTreeSet<(String, String)> = u.labels.into_iter().map(|(m, l, _)| (m, l)).collect();
    let want: BTreeSet<(String, String)> = [
        ("ficus_x_bucket", "le"),
        ("ficus_x_bucket", "route"),
        ("ficus_x_bucket", "upstream"),
    ]
    .into_iter()
    .map(|(m, l)| (m.to_owned(), l.to_owned()))
    .collect();
    assert_eq!(pairs, want, "ficus_y is outside the `by`");
    assert_eq!(
        u.metrics.into_iter().collect::<Vec<_>>(),
        ["ficus_x_bucket", "ficus_y"]
    );
    let scraped =
        scraped_labels("# HELP x\nficus_a{route=\"r,}\\\"\",upstream=\"u\"} 1\nficus_b 2\n");
    assert_eq!(
        scraped["ficus_a"].iter().collect::<Vec<_>>(),
        ["route", "upstream"]
    );
    assert!(scraped["ficus_b"].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_and_label_the_grafana_dashboard_queries_exists() {
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/grafana/ficus.json"
    ))
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let mut wanted = Uses::default();
    for panel in json["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let u = uses(target["expr"].as_str().unwrap());
            wanted.metrics.extend(u.metrics);
            wanted.labels.extend(u.labels);
        }
    }
    // Template variables: `label_values(metric, label)`.
    for var in json["templating"]["list"].as_array().unwrap() {
        let Some(args) = var["query"]
            .as_str()
            .and_then(|q| q.strip_prefix("label_values("))
            .and_then(|q| q.strip_suffix(')'))
        else {
            continue;
        };
        let (metric, label) = args.split_once(',').unwrap();
        wanted.metrics.insert(metric.trim().to_owned());
        wanted.labels.push((
            metric.trim().to_owned(),
            label.trim().to_owned(),
            format!("variable {}", var["name"]),
        ));
    }
    assert!(wanted.metrics.len() >= 10, "{:?}", wanted.metrics);
    assert!(wanted.metrics.contains("ficus_circuit_open"));

    // A proxy that has served, shadowed (with a mismatch), split a canary and reloaded.
    let legacy = TestUpstream::start("legacy").await;
    let candidate = TestUpstream::start("candidate").await;
    candidate.set(Behaviour::Broken);
    let proxy = TestProxy::start(&routes_toml(
        &[("legacy", &legacy), ("candidate", &candidate)],
        "[[routes]]\nname = \"doc\"\npath = \"/doc\"\nmode = \"shadow\"\nextracted = \"candidate\"\n[routes.shadow]\nignore = [\"/generated_at\"]\n\n\
         [[routes]]\nname = \"split\"\npath = \"/split/{*rest}\"\nmode = \"canary\"\nextracted = \"candidate\"\n[routes.canary]\npercent = 50\ncohort = \"client_ip\"\nallow = [\"127.0.0.1\"]\n\n\
         [[routes]]\nname = \"fall\"\npath = \"/status/{*rest}\"\nmode = \"canary\"\nextracted = \"candidate\"\n[routes.canary]\npercent = 100\ncohort = \"client_ip\"\n",
    ));
    let c = client();
    get(&c, &proxy.url("/doc")).await;
    let got = get(&c, &proxy.url("/split/a")).await;
    assert_eq!(upstream_of(&got), "candidate", "allowed: on the new side");
    // The extracted side answers 503: legacy answers instead (a canary fallback).
    let got = get(&c, &proxy.url("/status/503")).await;
    assert_eq!(upstream_of(&got), "legacy", "fell back");
    let mut metrics = String::new();
    for _ in 0..500 {
        metrics =
            String::from_utf8(get(&c, &proxy.admin_url("/metrics")).await.body.to_vec()).unwrap();
        if metrics.contains("ficus_shadow_field_mismatches_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Why the share panel selects by upstream: a canary's extracted side is labelled
    // mode="canary" (a `mode="extracted"` selector missed it).
    assert!(
        counter(
            &metrics,
            "ficus_requests_total{mode=\"canary\",route=\"split\",status=\"2xx\",upstream=\"candidate\"}"
        ) >= 1.0,
        "{metrics}"
    );

    let scraped = scraped_labels(&metrics);
    for name in &wanted.metrics {
        assert!(
            scraped.contains_key(name),
            "the dashboard queries {name}, which /metrics does not expose:\n{metrics}"
        );
    }
    for (metric, label, at) in &wanted.labels {
        assert!(
            scraped.get(metric).is_some_and(|l| l.contains(label)),
            "the dashboard uses label {label:?} of {metric} ({at}), which /metrics does not have: {:?}",
            scraped.get(metric)
        );
    }
}
