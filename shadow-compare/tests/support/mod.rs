//! Helpers shared by the test modules: rules from TOML, a one-line diff summary.

use shadow_compare::{Comparator, DiffReport, NoiseRules, NoiseRulesFile};

/// Checked rules from the routes.toml keys.
pub fn rules(toml_text: &str) -> NoiseRules {
    let file: NoiseRulesFile = toml::from_str(toml_text).unwrap();
    NoiseRules::try_from(file).unwrap()
}

/// Compare two JSON texts under rules written as TOML.
pub fn compare(rules_toml: &str, legacy: &str, candidate: &str) -> DiffReport {
    Comparator::new(rules(rules_toml))
        .compare_json(legacy.as_bytes(), candidate.as_bytes())
        .unwrap()
}

/// `kind pointer` per difference, `equal` when none.
pub fn summary(report: &DiffReport) -> String {
    if report.is_equal() {
        return "equal".to_owned();
    }
    report
        .differences()
        .iter()
        .map(|d| format!("{} {}", d.kind.as_str(), d.pointer))
        .collect::<Vec<_>>()
        .join("; ")
}
