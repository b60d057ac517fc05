//! Checks docker-compose.yml and the Dockerfile without a Docker engine: the compose file's
//! essential structure (every service has an image or a build, ports are strings, depends_on
//! names services, mounted files exist), and that ports and topics agree with
//! config/flowwatch.toml and the shipped flows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).expect("read compose");
    serde_saphyr::from_str::<Value>(&text).expect("docker-compose.yml is YAML")
}

fn services(doc: &Value) -> &serde_json::Map<String, Value> {
    doc["services"].as_object().expect("services is a mapping")
}

/// `value = "text"` of a key in config/flowwatch.toml (keys are unique in that file).
fn toml_value(key: &str) -> String {
    let text = std::fs::read_to_string(repo().join("config/flowwatch.toml")).expect("read config");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{key} in config/flowwatch.toml"))
}

fn flow_topics() -> BTreeSet<String> {
    let mut topics = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("flows")).expect("flows dir") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read flow");
        for line in text.lines() {
            if let Some((_, v)) = line.trim_start().split_once("topic:") {
                let v = v.trim().trim_end_matches(',').trim_end_matches('}').trim();
                let v = v.split([',', ' ']).next().unwrap_or("");
                topics.insert(v.trim_matches('"').to_string());
            }
        }
    }
    topics
}

#[test]
fn services_have_an_image_or_build_and_string_ports() {
    let doc = compose();
    let services = services(&doc);
    for name in ["kafka", "topics", "flowwatch", "simulator", "prometheus", "grafana"] {
        assert!(services.contains_key(name), "service {name}");
    }
    for (name, svc) in services {
        assert!(svc.get("image").is_some() || svc.get("build").is_some(), "{name}: image or build");
        for port in svc.get("ports").and_then(Value::as_array).into_iter().flatten() {
            assert!(port.is_string(), "{name}: port {port} must be a quoted string");
        }
        match svc.get("depends_on") {
            None => {}
            Some(Value::Array(list)) => {
                for d in list {
                    let d = d.as_str().expect("depends_on name");
                    assert!(services.contains_key(d), "{name} depends on unknown {d}");
                }
            }
            Some(Value::Object(map)) => {
                for d in map.keys() {
                    assert!(services.contains_key(d), "{name} depends on unknown {d}");
                }
            }
            Some(other) => panic!("{name}: depends_on {other}"),
        }
        for vol in svc.get("volumes").and_then(Value::as_array).into_iter().flatten() {
            let vol = vol.as_str().expect("short volume syntax");
            let source = vol.split(':').next().unwrap_or("");
            if source.starts_with("./") {
                assert!(repo().join(source).exists(), "{name}: mounted {source} exists");
            } else {
                let named = doc["volumes"].get(source);
                assert!(named.is_some(), "{name}: named volume {source} declared");
            }
        }
    }
    let build = &services["flowwatch"]["build"];
    let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
    assert!(repo().join(dockerfile).is_file());
}

#[test]
fn ports_agree_with_the_config_and_prometheus() {
    let doc = compose();
    let fw = &services(&doc)["flowwatch"];
    let listen = fw["environment"]["FLOWWATCH__HTTP__LISTEN"].as_str().expect("listen env");
    let port = listen.rsplit(':').next().expect("port");
    assert_eq!(port, toml_value("listen").rsplit(':').next().expect("config port"));
    let ports: Vec<&str> = fw["ports"].as_array().expect("ports").iter().filter_map(Value::as_str).collect();
    assert!(ports.iter().any(|p| p.ends_with(&format!(":{port}"))), "{ports:?} publishes {port}");
    assert_eq!(fw["environment"]["FLOWWATCH__KAFKA__BROKERS"], "kafka:9092");

    let prom = std::fs::read_to_string(repo().join("deploy/prometheus/prometheus.yml")).expect("read");
    let prom: Value = serde_saphyr::from_str(&prom).expect("prometheus.yml is YAML");
    let job = &prom["scrape_configs"][0];
    assert_eq!(job["job_name"], "flowwatch", "FlowwatchDown selects job=\"flowwatch\"");
    assert_eq!(job["static_configs"][0]["targets"][0], format!("flowwatch:{port}"));
    let alerts = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yaml")).expect("read");
    assert!(alerts.contains(r#"up{job="flowwatch"}"#));
}

#[test]
fn created_topics_cover_the_flows_and_outputs() {
    let doc = compose();
    let script = services(&doc)["topics"]["command"][0].as_str().expect("topic script");
    let created: BTreeSet<String> = script
        .split_whitespace()
        .map(|w| w.trim_end_matches(';').to_string())
        .collect();
    let mut wanted = flow_topics();
    assert!(wanted.contains("orders") && wanted.contains("payment-commands"), "{wanted:?}");
    for key in ["signals_topic", "alerts_topic", "dead_letter_topic"] {
        wanted.insert(toml_value(key));
    }
    let missing: Vec<_> = wanted.difference(&created).collect();
    assert!(missing.is_empty(), "topics not created: {missing:?}");
}

#[test]
fn dockerfile_runs_as_non_root_with_a_livez_healthcheck() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("read Dockerfile");
    // The final stage (after the last FROM) switches to a user whose uid is not 0.
    let final_stage = &text[text.rfind("\nFROM ").expect("FROM line")..];
    let user = final_stage.lines().find_map(|l| l.strip_prefix("USER ")).expect("USER line in the final stage");
    let user = user.trim();
    assert!(!matches!(user, "root" | "0"), "USER {user}");
    let uid: u32 = match user.parse() {
        Ok(uid) => uid,
        Err(_) => {
            let useradd = final_stage
                .lines()
                .find(|l| l.contains("useradd") && l.split_whitespace().last() == Some(user))
                .unwrap_or_else(|| panic!("USER {user} is created with useradd in the final stage"));
            let words: Vec<&str> = useradd.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "--uid").expect("useradd --uid");
            words[at + 1].parse().expect("a numeric uid")
        }
    };
    assert_ne!(uid, 0, "USER {user} has uid 0");
    assert!(text.contains("HEALTHCHECK") && text.contains("/livez"));
    assert!(text.contains("--release --locked"));
    assert!(text.contains(r#"ENTRYPOINT ["flowwatch"]"#));
    for copied in ["flows", "config/flowwatch.toml"] {
        assert!(text.contains(&format!("COPY {copied}")));
        assert!(Path::new(&repo().join(copied)).exists());
    }
}
