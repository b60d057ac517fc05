//! Handler tests through the router, without a server (`oneshot`), over a tracker fed the
//! recorded checkout day of `tests/examples` with the audit trail on.

use super::*;
use crate::engine::{Engine, EngineConfig, Input};
use crate::flow::load_dir_or_files;
use crate::replay::decode::decode_line;
use crate::tracker::{self, Tracker};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use std::path::PathBuf;
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token-for-tests";

/// Every route the router serves (method, path template).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/livez"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/flows"),
    ("get", "/api/v1/flows/{flow}"),
    ("get", "/api/v1/flows/{flow}/graph"),
    ("get", "/api/v1/flows/{flow}/instances"),
    ("get", "/api/v1/flows/{flow}/instances/{key}"),
    ("get", "/api/v1/orphans"),
    ("get", "/api/v1/signals"),
    ("post", "/api/v1/flows/{flow}/instances/{key}/retry"),
    ("post", "/api/v1/flows/{flow}/instances/{key}/resolve"),
    ("post", "/api/v1/flows/{flow}/instances/{key}/cancel"),
];

/// A tracker over the shipped flows, fed the checkout day, served on a task.
fn state_with(health: Health, operator_token: Option<&str>) -> AppState {
    let report = load_dir_or_files(&[PathBuf::from("flows")]);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let config = EngineConfig {
        history_limit: 50,
        ..EngineConfig::default()
    };
    let mut tracker = Tracker::new(Engine::new(report.flows, config));
    let text = std::fs::read_to_string("tests/examples/checkout-day.jsonl").unwrap();
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let record = decode_line(line, number as u64 + 1).unwrap();
        tracker.handle(Input::RecordReceived(&record), &mut out);
    }
    let (handle, requests) = tracker::channel();
    tokio::spawn(tracker::serve(tracker, requests, |_| {}));
    AppState {
        tracker: handle,
        health,
        metrics: Arc::new(|| "# TYPE flowwatch_up gauge\nflowwatch_up 1\n".to_string()),
        operator_token: operator_token.map(str::to_string),
    }
}

fn state() -> AppState {
    state_with(Health::all_ready(), Some(TOKEN))
}

struct Reply {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }
}

async fn send(state: &AppState, request: Request<Body>) -> Reply {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        content_type,
        text: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(state: &AppState, uri: &str) -> Reply {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post(state: &AppState, uri: &str, token: Option<&str>, body: &str) -> Reply {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    send(state, request.body(Body::from(body.to_string())).unwrap()).await
}

/// The first instance of a flow in a state, from the API.
async fn first_key(state: &AppState, flow: &str, filter: &str) -> String {
    let page = get(state, &format!("/api/v1/flows/{flow}/instances?{filter}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.json()["instances"][0]["key"]
        .as_str()
        .unwrap_or_else(|| {
            panic!(
                "the checkout day has an instance with {filter}: {}",
                page.text
            )
        })
        .to_string()
}

#[tokio::test]
async fn liveness_and_readiness_report_each_check() {
    let state = state_with(Health::new(), None);
    for uri in ["/livez", "/healthz"] {
        let reply = get(&state, uri).await;
        assert_eq!(
            (reply.status, reply.json()["status"].clone()),
            (StatusCode::OK, "ok".into())
        );
    }
    let reply = get(&state, "/readyz").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = reply.json();
    assert_eq!(body["ready"], false);
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|check| check["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "partitions_assigned",
            "state_restored",
            "store_writable",
            "watchdog"
        ]
    );
    assert_eq!(body["checks"][0]["detail"], "no partitions of the flow topics are assigned yet");
    // Why, when the Kafka consumer knows.
    state.health.set_kafka_error(Some("sasl_ssl://kafka:9093/bootstrap: SASL authentication error"));
    let body = get(&state, "/readyz").await.json();
    assert_eq!(
        body["checks"][0]["detail"],
        "no partitions of the flow topics are assigned yet (the Kafka consumer's last error: \
         sasl_ssl://kafka:9093/bootstrap: SASL authentication error)"
    );
    state.health.set_kafka_error(None);
    state.health.set_partitions_assigned(true);
    state.health.set_state_restored(true);
    state.health.set_store_writable(true);
    state.health.set_backlog(1200, 90_500);
    let body = get(&state, "/readyz").await.json();
    assert_eq!(body["checks"][3]["ok"], false);
    assert!(body["checks"][3]["detail"]
        .as_str()
        .unwrap()
        .contains("no progress"));
    assert_eq!(body["catching_up"]["records_behind"], 1200);
    assert_eq!(body["catching_up"]["event_time_lag_seconds"], 90.5);
    state.health.set_watchdog_ok(true);
    let reply = get(&state, "/readyz").await;
    assert_eq!(
        (reply.status, reply.json()["ready"].clone()),
        (StatusCode::OK, true.into())
    );
}

#[tokio::test]
async fn metrics_are_served_as_prometheus_text() {
    let reply = get(&state(), "/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(reply.text.contains("flowwatch_up 1"));
}

#[tokio::test]
async fn flows_carry_counts_that_match_the_instance_lists() {
    let state = state();
    let body = get(&state, "/api/v1/flows").await.json();
    let flows = body["flows"].as_array().unwrap();
    let names: Vec<&str> = flows.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "customer-onboarding",
            "order-fulfillment",
            "parcel-delivery"
        ]
    );
    assert!(body["clock"].as_str().unwrap().starts_with("2026-01-05T"));
    for flow in flows {
        let name = flow["name"].as_str().unwrap();
        for state_name in ["open", "completed", "failed", "breached", "stuck"] {
            let page = get(
                &state,
                &format!("/api/v1/flows/{name}/instances?state={state_name}&limit=1"),
            )
            .await
            .json();
            assert_eq!(page["total"], flow[state_name], "{name} {state_name}");
        }
        for step in flow["steps"].as_array().unwrap() {
            let step_name = step["name"].as_str().unwrap();
            let page = get(
                &state,
                &format!("/api/v1/flows/{name}/instances?state=open&step={step_name}"),
            )
            .await
            .json();
            assert_eq!(page["total"], step["waiting"], "{name} {step_name}");
        }
    }
    let total_open: u64 = flows.iter().map(|f| f["open"].as_u64().unwrap()).sum();
    assert!(total_open > 0, "the checkout day leaves instances open");
}

#[tokio::test]
async fn a_flow_and_its_graph() {
    let state = state();
    let reply = get(&state, "/api/v1/flows/customer-onboarding/graph").await;
    assert_eq!(reply.status, StatusCode::OK);
    let graph = reply.json();
    let edges: Vec<(String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|edge| (edge["from"].to_string(), edge["to"].to_string()))
        .collect();
    assert!(!edges.is_empty(), "{graph}");
    assert!(graph["steps"][0]["within"]["ms"].as_i64().unwrap() > 0);
    let flow = get(&state, "/api/v1/flows/customer-onboarding")
        .await
        .json();
    assert_eq!(flow["graph"], graph);
    assert_eq!(flow["counts"]["name"], "customer-onboarding");
    for uri in [
        "/api/v1/flows/nope",
        "/api/v1/flows/nope/graph",
        "/api/v1/flows/nope/instances",
        "/api/v1/flows/customer-onboarding/instances/no-such-key",
    ] {
        let reply = get(&state, uri).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            reply.json()["error"].as_str().unwrap().contains("no"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn instance_pages_cover_every_instance_once() {
    let state = state();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    let mut total = 0;
    for _ in 0..100 {
        let page = get(
            &state,
            &format!("/api/v1/flows/order-fulfillment/instances?limit=7&cursor={cursor}"),
        )
        .await
        .json();
        total = page["total"].as_u64().unwrap();
        for instance in page["instances"].as_array().unwrap() {
            assert!(seen.insert(instance["key"].as_str().unwrap().to_string()));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert!(total > 7, "more than one page");
    assert_eq!(seen.len() as u64, total);
}

#[tokio::test]
async fn bad_filters_and_limits_are_refused() {
    let state = state();
    for query in [
        "state=sleeping",
        "limit=0",
        "limit=1001",
        "limit=many",
        "limit=-1",
        "limit=18446744073709551616",
        "cursor=garbage",
    ] {
        let reply = get(
            &state,
            &format!("/api/v1/flows/order-fulfillment/instances?{query}"),
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
    }
    for query in ["limit=5000", "limit=99999999999999999999"] {
        let reply = get(&state, &format!("/api/v1/signals?{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
    }
    // A huge cursor (near the 64 KiB the http crate allows in a URI) is refused, not echoed.
    let cursor = "A".repeat(60_000);
    let reply = get(&state, &format!("/api/v1/flows/order-fulfillment/instances?cursor={cursor}")).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.text.len() < 1_000, "the error does not echo the cursor");
}

#[tokio::test]
async fn an_instance_shows_its_steps_and_audit_trail() {
    let state = state();
    let key = first_key(&state, "order-fulfillment", "state=completed").await;
    let reply = get(
        &state,
        &format!("/api/v1/flows/order-fulfillment/instances/{key}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let instance = reply.json();
    assert_eq!(instance["status"], "completed");
    assert!(instance["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|step| ["complete", "skipped"].contains(&step["status"].as_str().unwrap())));
    let history = instance["history"].as_array().unwrap();
    assert!(history.len() >= 2, "{instance}");
    let first = &history[0];
    assert_eq!(first["type"], "event");
    assert_eq!(first["event"], "OrderPlaced");
    assert_eq!(first["topic"], "orders");
    assert_eq!(
        first["payload"]["orderId"],
        key.as_str(),
        "payload as received"
    );
}

#[tokio::test]
async fn orphans_and_recent_signals() {
    let state = state();
    let reply = get(&state, "/api/v1/orphans").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["orphans"].is_array());
    let signals = get(&state, "/api/v1/signals?limit=5").await.json();
    let signals = signals["signals"].as_array().unwrap();
    assert_eq!(signals.len(), 5);
    let golden = std::fs::read_to_string("tests/examples/checkout-day.signals.jsonl").unwrap();
    for signal in signals {
        assert_eq!(signal["specversion"], "1.0");
        let id = signal["id"].as_str().unwrap();
        assert!(golden.contains(id), "{id} is a signal of the checkout day");
    }
    let times: Vec<&str> = signals
        .iter()
        .map(|s| s["time"].as_str().unwrap())
        .collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first);
}

#[tokio::test]
async fn mutations_need_a_configured_token() {
    let disabled = state_with(Health::all_ready(), None);
    let key = first_key(&disabled, "order-fulfillment", "state=open").await;
    let uri = format!("/api/v1/flows/order-fulfillment/instances/{key}/cancel");
    let reply = post(&disabled, &uri, Some(TOKEN), "{}").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("http.operator_token") && error.contains("FLOWWATCH__HTTP__OPERATOR_TOKEN"),
        "{error}"
    );
    let state = state();
    // Near misses too: the constant-time comparison must not accept a prefix or an extension.
    let last_changed = format!("{}{}", &TOKEN[..TOKEN.len() - 1], if TOKEN.ends_with('x') { 'y' } else { 'x' });
    let extended = format!("{TOKEN}0");
    for (token, why) in [
        (None, "missing"),
        (Some("wrong"), "wrong"),
        (Some(""), "empty"),
        (Some(&TOKEN[..TOKEN.len() - 1]), "a prefix"),
        (Some(last_changed.as_str()), "the last character changed"),
        (Some(extended.as_str()), "one character more"),
    ] {
        for action in ["retry", "resolve", "cancel"] {
            let uri = format!("/api/v1/flows/order-fulfillment/instances/{key}/{action}");
            let reply = post(&state, &uri, token, r#"{"step":"payment"}"#).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{action} {why}");
            assert!(!reply.text.contains(TOKEN), "the token never appears");
        }
    }
    // Another scheme or the token without `Bearer ` is refused as well.
    for header in [format!("Basic {TOKEN}"), TOKEN.to_string(), format!("bearer{TOKEN}")] {
        let request = Request::post(format!("/api/v1/flows/order-fulfillment/instances/{key}/cancel"))
            .header("content-type", "application/json")
            .header("authorization", header.as_str())
            .body(Body::from("{}"))
            .unwrap();
        let reply = send(&state, request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}");
    }
    let still_open = get(
        &state,
        &format!("/api/v1/flows/order-fulfillment/instances/{key}"),
    )
    .await
    .json();
    assert_eq!(still_open["status"], "open", "nothing changed");
}

#[tokio::test]
async fn cancel_ends_an_instance_and_is_recorded() {
    let state = state();
    let key = first_key(&state, "order-fulfillment", "state=open").await;
    let uri = format!("/api/v1/flows/order-fulfillment/instances/{key}/cancel");
    let request = Request::post(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "ticket-42")
        .body(Body::from(r#"{"note":"customer called"}"#))
        .unwrap();
    let reply = send(&state, request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let result = reply.json();
    assert_eq!(result["request_id"], "ticket-42");
    let failed = &result["signals"][0];
    assert_eq!(failed["type"], "flowwatch.failed");
    assert_eq!(failed["data"]["event"], "operator");
    assert_eq!(failed["data"]["reason"], "operator");
    assert_eq!(failed["data"]["detail"], "customer called");
    let instance = get(
        &state,
        &format!("/api/v1/flows/order-fulfillment/instances/{key}"),
    )
    .await
    .json();
    assert_eq!(instance["status"], "failed");
    let last = instance["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "operator");
    assert_eq!(last["command"], "cancel");
    assert_eq!(last["request_id"], "ticket-42");
    assert_eq!(last["note"], "customer called");
    let again = post(&state, &uri, Some(TOKEN), "{}").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    let recent = get(&state, "/api/v1/signals?limit=1").await.json();
    let emitted = result["signals"].as_array().unwrap();
    assert_eq!(recent["signals"][0]["id"], emitted[emitted.len() - 1]["id"]);
}

#[tokio::test]
async fn retry_and_resolve_answer_with_signals_or_say_why_not() {
    let state = state();
    let key = first_key(&state, "order-fulfillment", "state=open").await;
    let base = format!("/api/v1/flows/order-fulfillment/instances/{key}");
    let reply = post(
        &state,
        &format!("{base}/retry"),
        Some(TOKEN),
        r#"{"step":"nope"}"#,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    let reply = post(&state, &format!("{base}/retry"), Some(TOKEN), r#"{}"#).await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a step is required"
    );
    let reply = post(
        &state,
        &format!("{base}/resolve"),
        Some(TOKEN),
        r#"{"stepp":"x"}"#,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields"
    );
    let reply = post(&state, &format!("{base}/resolve"), Some(TOKEN), "not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let detail = get(&state, &base).await.json();
    let step = detail["waiting_in"][0].as_str().unwrap().to_string();
    let retry = post(
        &state,
        &format!("{base}/retry"),
        Some(TOKEN),
        &format!(r#"{{"step":"{step}"}}"#),
    )
    .await;
    match retry.status {
        StatusCode::OK => {
            let signals = retry.json()["signals"].as_array().unwrap().clone();
            assert!(!signals.is_empty());
            assert!(signals
                .iter()
                .all(|s| s["type"] == "flowwatch.action" && s["data"]["trigger"] == "operator"));
        }
        StatusCode::CONFLICT => {
            assert!(retry.json()["error"]
                .as_str()
                .unwrap()
                .contains("no declared on_breach"))
        }
        other => panic!("retry answered {other}: {}", retry.text),
    }
    let resolve = post(
        &state,
        &format!("{base}/resolve"),
        Some(TOKEN),
        &format!(r#"{{"step":"{step}","note":"handled"}}"#),
    )
    .await;
    let unresolved = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == step.as_str() && s["unresolved"] == true);
    if unresolved {
        assert_eq!(resolve.status, StatusCode::OK, "{}", resolve.text);
        assert_eq!(resolve.json()["signals"][0]["type"], "flowwatch.resolved");
    } else {
        assert_eq!(resolve.status, StatusCode::CONFLICT, "{}", resolve.text);
    }
}

#[tokio::test]
async fn bodies_are_bounded() {
    let state = state();
    let key = first_key(&state, "order-fulfillment", "state=open").await;
    let note = "x".repeat(MAX_BODY + 1);
    let reply = post(
        &state,
        &format!("/api/v1/flows/order-fulfillment/instances/{key}/cancel"),
        Some(TOKEN),
        &format!(r#"{{"note":"{note}"}}"#),
    )
    .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_served() {
    let state = state();
    let reply = get(&state, "/api/v1/openapi.json").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.content_type, "application/json");
    let document = reply.json();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    // And each documented route is served (not 404 for the route itself, not 405).
    for (method, path) in &expected {
        let uri = path
            .replace("{flow}", "order-fulfillment")
            .replace("{key}", "no-such-key");
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::from(r#"{"step":"payment"}"#))
            .unwrap();
        let reply = send(&state, request).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        if reply.status == StatusCode::NOT_FOUND {
            assert!(reply.json()["error"].is_string(), "{uri} is routed");
        }
    }
}
