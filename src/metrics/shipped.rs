//! Consistency of what ships with the metrics: the alert rules, their unit tests, the Grafana
//! dashboard and docs/metrics.md name only families that exist, every alert has unit tests and
//! a runbook entry, and every family is documented.

use super::tests::populated;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The family names `render` declares (from its `# TYPE` lines).
fn families() -> BTreeSet<String> {
    // Families with labels appear only once they have a series: every family has one here.
    let text = populated().render();
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

/// Every `flowwatch_...` token in a text, with histogram series suffixes removed.
fn mentioned(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut index = 0;
    while let Some(found) = text[index..].find("flowwatch_") {
        let start = index + found;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        let preceded_by_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !preceded_by_word {
            let name = &text[start..end];
            let name = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|base| base.ends_with("_seconds"))
                })
                .unwrap_or(name);
            names.insert(name.trim_end_matches('_').to_string());
        }
        index = end.max(start + 1);
    }
    names
}

/// Alert names declared in a rule file.
fn alerts(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .map(|name| name.trim().to_string())
        .collect()
}

#[test]
fn mentioned_finds_names_and_strips_histogram_suffixes() {
    let text =
        "rate(flowwatch_step_duration_seconds_bucket[5m]) / x_flowwatch_no flowwatch_a_total";
    let names: Vec<String> = mentioned(text).into_iter().collect();
    assert_eq!(
        names,
        ["flowwatch_a_total", "flowwatch_step_duration_seconds"]
    );
}

#[test]
fn shipped_files_name_only_defined_families() {
    let defined = families();
    for file in [
        "deploy/prometheus/alerts.yaml",
        "deploy/prometheus/alerts.test.yaml",
        "deploy/grafana/flowwatch.json",
        "docs/metrics.md",
    ] {
        let names = mentioned(&read(file));
        assert!(names.len() >= 5, "{file} names only {names:?}");
        let unknown: Vec<String> = names
            .into_iter()
            .filter(|name| !defined.contains(name))
            // Anchors in docs (`#flowwatchnotready`) are not metric names.
            .filter(|name| name.contains('_') && name != "flowwatch_")
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} names undefined metrics: {unknown:?}"
        );
    }
}

#[test]
fn every_family_is_documented() {
    let docs = read("docs/metrics.md");
    for family in families() {
        assert!(
            docs.contains(&format!("`{family}`")),
            "docs/metrics.md does not document `{family}`"
        );
    }
}

#[test]
fn every_alert_is_unit_tested_and_has_a_runbook() {
    let rules = read("deploy/prometheus/alerts.yaml");
    let tests = read("deploy/prometheus/alerts.test.yaml");
    let docs = read("docs/metrics.md").to_lowercase();
    let names = alerts(&rules);
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let cases = tests.matches(&format!("alertname: {name}\n")).count();
        assert!(
            cases >= 2,
            "{name} has {cases} test cases in alerts.test.yaml (want firing and not firing)"
        );
        assert!(
            rules.contains(&format!("docs/metrics.md#{}", name.to_lowercase())),
            "{name} has no runbook link"
        );
        assert!(
            docs.contains(&format!("### {}", name.to_lowercase())),
            "docs/metrics.md has no runbook for {name}"
        );
    }
}

#[test]
fn dashboard_is_grafana_json_with_queries() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/flowwatch.json")).expect("valid JSON");
    assert_eq!(dashboard["uid"], "flowwatch");
    let panels = dashboard["panels"].as_array().expect("panels");
    let queries = panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter(|target| {
            target["expr"]
                .as_str()
                .is_some_and(|expr| expr.contains("flowwatch_"))
        })
        .count();
    assert!(queries >= 20, "{queries} queries");
    let ids: BTreeSet<u64> = panels
        .iter()
        .filter_map(|panel| panel["id"].as_u64())
        .collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}
