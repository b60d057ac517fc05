//! The `flowwatch` binary as users run it (`env!("CARGO_BIN_EXE_flowwatch")`): every recorded
//! example in `tests/examples` replays to its golden signals byte for byte and
//! deterministically, `--stats` counts, kcat's `-J` envelope and standard input replay like a
//! file, malformed lines are skipped and reported, and exit codes are 0 (success), 1 (a user
//! error, with a message naming what to fix) or 2 (a usage error). Set `UPDATE_GOLDENS=1` to
//! rewrite the golden files from the current binary instead of comparing.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Every example with the `--until` its golden file was recorded with (tests/examples/README.md).
const EXAMPLES: &[(&str, &str)] = &[
    ("order-fulfillment", "2026-01-05T18:00:00Z"),
    ("customer-onboarding", "2026-01-05T18:00:00Z"),
    ("parcel-delivery", "2026-01-07T00:00:00Z"),
    ("checkout-day", "2026-01-06T00:00:00Z"),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str, extension: &str) -> PathBuf {
    root()
        .join("tests/examples")
        .join(format!("{name}.{extension}"))
}

fn until_of(name: &str) -> &'static str {
    EXAMPLES
        .iter()
        .find(|(example, _)| *example == name)
        .map(|(_, until)| *until)
        .expect("a listed example")
}

/// Runs the binary from the repository root, feeding `stdin` if given.
fn flowwatch(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowwatch"))
        .current_dir(root())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the flowwatch binary starts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(bytes).expect("write stdin");
    }
    child.wait_with_output().expect("flowwatch runs to the end")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `flowwatch replay --flows flows --input INPUT --until UNTIL` plus `extra`, which must exit 0.
fn replay(input: &str, until: &str, extra: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut args = vec![
        "replay", "--flows", "flows", "--input", input, "--until", until,
    ];
    args.extend_from_slice(extra);
    let output = flowwatch(&args, stdin);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?} failed: {}",
        text(&output.stderr)
    );
    output
}

#[track_caller]
fn assert_same_lines(actual: &[u8], expected: &[u8], what: &str) {
    if actual == expected {
        return;
    }
    let (actual, expected) = (text(actual), text(expected));
    let mismatch = actual
        .lines()
        .zip(expected.lines())
        .position(|(a, e)| a != e)
        .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
    panic!(
        "{what}: output differs from the golden file at line {} ({} lines vs {} expected)\n\
         actual:   {}\nexpected: {}\n(UPDATE_GOLDENS=1 rewrites the goldens; review them first)",
        mismatch + 1,
        actual.lines().count(),
        expected.lines().count(),
        actual.lines().nth(mismatch).unwrap_or("<end of output>"),
        expected.lines().nth(mismatch).unwrap_or("<end of file>"),
    );
}

#[test]
fn every_example_replays_to_its_golden_signals_deterministically() {
    let update = std::env::var_os("UPDATE_GOLDENS").is_some();
    for &(name, until) in EXAMPLES {
        let input = format!("tests/examples/{name}.jsonl");
        let first = replay(&input, until, &[], None);
        assert!(first.stderr.is_empty(), "{name}: {}", text(&first.stderr));
        let golden = example(name, "signals.jsonl");
        if update {
            std::fs::write(&golden, &first.stdout).expect("write the golden file");
        }
        let expected = std::fs::read(&golden).expect("the golden file exists");
        assert_same_lines(&first.stdout, &expected, name);
        let second = replay(&input, until, &[], None);
        assert_eq!(first.stdout, second.stdout, "{name}: two runs differ");
    }
}

/// Counts of (signal type without `flowwatch.`, reason) in a golden file.
fn kinds(name: &str) -> Vec<(String, String)> {
    let golden = std::fs::read_to_string(example(name, "signals.jsonl")).expect("golden file");
    golden
        .lines()
        .map(|line| {
            let signal: Value = serde_json::from_str(line).expect("a signal is JSON");
            let kind = signal["type"]
                .as_str()
                .expect("type")
                .trim_start_matches("flowwatch.");
            let reason = signal["data"]["reason"].as_str().unwrap_or("");
            (kind.to_string(), reason.to_string())
        })
        .collect()
}

#[test]
fn each_example_covers_what_its_readme_promises() {
    let count = |kinds: &[(String, String)], kind: &str, reason: &str| {
        kinds
            .iter()
            .filter(|(k, r)| k == kind && r == reason)
            .count()
    };
    for name in [
        "order-fulfillment",
        "customer-onboarding",
        "parcel-delivery",
    ] {
        let kinds = kinds(name);
        for (kind, reason) in [
            ("completed", ""),
            ("breached", "sla"),
            ("resolved", "sla"),
            ("action", ""),
            ("failed", ""),
            ("orphaned", ""),
            ("deviation", "late_event"),
        ] {
            assert!(
                count(&kinds, kind, reason) > 0,
                "{name} has no {kind} {reason}"
            );
        }
        let (deadline_or_stuck, out_of_order_or_duplicate) = match name {
            "parcel-delivery" => ("stuck", "duplicate"),
            _ => ("deadline", "out_of_order"),
        };
        assert!(count(&kinds, "breached", deadline_or_stuck) > 0, "{name}");
        assert!(count(&kinds, "resolved", deadline_or_stuck) > 0, "{name}");
        assert!(
            count(&kinds, "deviation", out_of_order_or_duplicate) > 0,
            "{name}"
        );
    }
    let order = kinds("order-fulfillment");
    assert_eq!(count(&order, "breached", "sla"), 5);
    assert_eq!(
        count(&order, "action", ""),
        2,
        "retry-payment runs twice, then alerts"
    );
    let parcel = kinds("parcel-delivery");
    assert_eq!(count(&parcel, "breached", "stuck"), 5);
    assert_eq!(count(&parcel, "action", ""), 5, "4 trace-parcel, 1 notify");
}

#[test]
fn stats_prints_one_json_object_of_counts_on_stderr() {
    let until = until_of("order-fulfillment");
    let input = "tests/examples/order-fulfillment.jsonl";
    let output = replay(input, until, &["--stats"], None);
    let golden = std::fs::read(example("order-fulfillment", "signals.jsonl")).unwrap();
    assert_same_lines(&output.stdout, &golden, "with --stats");
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr}");
    let stats: Value = serde_json::from_str(&stderr).expect("stats are one JSON object");
    let expected = json!({
        "records": 42, "matched": 39, "unmatched": 3, "invalid": 0, "duplicates": 1,
        "instances": {"open": 0, "completed": 6, "failed": 1},
    });
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&stats[field], value, "stats.{field} in {stats}");
    }
}

/// One of our records as kcat `-J` prints it: `payload` a string, `ts` in epoch milliseconds,
/// `headers` a flat `["name", "value", ...]` array.
fn to_kcat(line: &str) -> String {
    let record: Value = serde_json::from_str(line).expect("an example record");
    let timestamp = record["timestamp"].as_str().expect("RFC 3339 timestamp");
    let ts = flowwatch::time::parse_rfc3339(timestamp).expect("a valid timestamp");
    let headers: Vec<Value> = record["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(name, value)| [json!(name), value.clone()])
        .collect();
    json!({
        "topic": record["topic"], "partition": record["partition"], "offset": record["offset"],
        "tstype": "create", "ts": ts, "broker": 1, "headers": headers, "key": record["key"],
        "payload": record["value"].to_string(),
    })
    .to_string()
}

#[test]
fn kcat_envelope_replays_to_the_same_signals() {
    let name = "parcel-delivery";
    let ours = std::fs::read_to_string(example(name, "jsonl")).unwrap();
    let kcat: String = ours.lines().map(|line| to_kcat(line) + "\n").collect();
    let first = kcat.lines().next().unwrap_or_default();
    assert!(
        first.contains(r#""headers":["ce_id","PX1001-01","#),
        "{first}"
    );
    assert!(first.contains(r#""payload":"{\"#) && first.contains(r#""ts":1767592800000"#));
    let dir = std::env::temp_dir().join(format!("flowwatch-kcat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("parcel-delivery.kcat.jsonl");
    std::fs::write(&file, &kcat).unwrap();
    let output = replay(file.to_str().unwrap(), until_of(name), &[], None);
    std::fs::remove_dir_all(&dir).unwrap();
    let golden = std::fs::read(example(name, "signals.jsonl")).unwrap();
    assert_same_lines(&output.stdout, &golden, "kcat envelope");
}

#[test]
fn input_dash_reads_standard_input() {
    let name = "customer-onboarding";
    let input = std::fs::read(example(name, "jsonl")).unwrap();
    let output = replay("-", until_of(name), &[], Some(&input));
    let golden = std::fs::read(example(name, "signals.jsonl")).unwrap();
    assert_same_lines(&output.stdout, &golden, "--input -");
}

#[test]
fn malformed_lines_are_counted_reported_and_never_fatal() {
    let placed = r#"{"topic":"orders","timestamp":"2026-01-05T09:00:00Z","value":{"type":"OrderPlaced","eventId":"e-1","occurredAt":"2026-01-05T09:00:00Z","orderId":"ord-1","total":10}}"#;
    let mut input = [
        r#"{"topic":"orders","timestamp":"2026-01-05T08:59:00Z","value":{"type":"Order"#,
        placed,
        r#"{"timestamp":"2026-01-05T09:00:01Z","value":{"type":"OrderPlaced"}}"#,
        r#"{"topic":"orders","timestamp":"2026-01-05T09:00:02Z","value":"{\"type\": \"OrderPl"}"#,
        // Line 5 is not UTF-8 text: its key becomes the lone byte 0xff below.
        "{\"topic\":\"orders\",\"key\":\"\u{ff}\"}",
        r#"{"topic":"inventory","timestamp":"2026-01-05T09:01:00Z","value":{"type":"StockReservation","outcome":"reserved","eventId":"e-2","occurredAt":"2026-01-05T09:01:00Z","order":{"id":"ord-1"}}}"#,
    ]
    .join("\n")
    .into_bytes();
    // U+00FF is two bytes in UTF-8; make it the single invalid byte 0xff.
    let at = input.windows(2).position(|pair| pair == [0xc3, 0xbf]).unwrap();
    input.splice(at..at + 2, [0xff]);
    let output = replay("-", "2026-01-05T09:05:00Z", &["--stats"], Some(&input));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "four reports and the stats: {stderr}");
    assert!(
        lines[0].starts_with("line 1: ") && lines[0].contains("not a JSON object"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("line 3: ") && lines[1].contains("missing \"topic\""),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("line 4: ") && lines[2].contains("payload is not JSON"),
        "{stderr}"
    );
    assert_eq!(
        lines[3],
        "line 5: skipped: not UTF-8 text (the first invalid byte is byte 26 of the line)",
        "{stderr}"
    );
    let stats: Value = serde_json::from_str(lines[4]).expect("stats JSON");
    assert_eq!(
        (&stats["records"], &stats["invalid"]),
        (&json!(6), &json!(4)),
        "{stats}"
    );
    assert_eq!(stats["matched"], json!(2), "{stats}");
    let signals: Vec<Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("signal JSON"))
        .collect();
    let types: Vec<&str> = signals
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "flowwatch.started",
            "flowwatch.step_completed",
            "flowwatch.step_completed"
        ],
        "the good lines still replay"
    );
}

#[track_caller]
fn assert_fails(args: &[&str], code: i32, message_parts: &[&str]) {
    let output = flowwatch(args, None);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?} printed {}",
        text(&output.stdout)
    );
    for part in message_parts {
        assert!(stderr.contains(part), "{args:?}: {part:?} not in {stderr}");
    }
}

#[test]
fn user_errors_exit_1_with_a_message_naming_what_to_fix() {
    let input = "tests/examples/order-fulfillment.jsonl";
    assert_fails(
        &["replay", "--flows", "tests/flows/broken", "--input", input],
        1,
        &[
            "tests/flows/broken/durations.yaml:10:",
            "flowwatch validate",
        ],
    );
    assert_fails(
        &[
            "replay",
            "--flows",
            "flows",
            "--input",
            "tests/examples/nothing-here.jsonl",
        ],
        1,
        &["--input tests/examples/nothing-here.jsonl"],
    );
    assert_fails(
        &["replay", "--input", input, "--until", "tomorrow"],
        1,
        &["--until \"tomorrow\"", "RFC 3339"],
    );
    assert_fails(
        &["replay", "--input", input, "--orphan-after", "5"],
        1,
        &["--orphan-after", "no unit"],
    );
    assert_fails(
        &["replay", "--input", input, "--retention", "a week"],
        1,
        &["--retention", "bad duration"],
    );
}

#[test]
fn usage_errors_exit_2() {
    let input = "tests/examples/order-fulfillment.jsonl";
    assert_fails(&["replay", "--input", input, "--bogus"], 2, &["--bogus"]);
    assert_fails(&["replay", "--flows", "flows"], 2, &["--input"]);
    assert_fails(&["frobnicate"], 2, &["frobnicate"]);
    assert_fails(&[], 2, &["Usage: flowwatch"]);
}

#[test]
fn help_works_for_each_command() {
    for command in ["validate", "replay"] {
        let output = flowwatch(&[command, "--help"], None);
        assert_eq!(output.status.code(), Some(0), "{command} --help");
        let help = text(&output.stdout);
        assert!(
            help.contains(&format!("Usage: flowwatch {command}")),
            "{help}"
        );
    }
    let replay_help = text(&flowwatch(&["replay", "--help"], None).stdout);
    for flag in [
        "--flows",
        "--input",
        "--until",
        "--allowed-lateness",
        "--stats",
    ] {
        assert!(
            replay_help.contains(flag),
            "{flag} missing from {replay_help}"
        );
    }
}

#[test]
fn validate_accepts_the_shipped_flows_with_one_line_each() {
    let output = flowwatch(&["validate", "flows/"], None);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, flow) in lines.iter().zip([
        "customer-onboarding",
        "order-fulfillment",
        "parcel-delivery",
    ]) {
        assert!(
            line.starts_with(&format!("ok {flow} (flows/{flow}.yaml)")),
            "{line}"
        );
    }
}
