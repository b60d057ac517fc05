//! `flowwatch validate` through `validate::run`: every broken file under `tests/flows/broken`
//! must give exactly the diagnostics listed for it here (line and a distinctive part of the
//! message) and exit 1; the scenario flows under `tests/flows/good` must pass with one summary
//! line each. Directory handling (listing, empty directory, duplicate flow names across files,
//! missing paths) is tested on `tests/flows/dir-listing` and temporary directories.

use flowwatch::validate;
use std::path::PathBuf;

/// The expected diagnostics of each broken file: (line, part of the message).
const BROKEN: &[(&str, &[(u64, &str)])] = &[
    ("yaml-syntax.yaml", &[(5, "invalid YAML: ")]),
    ("empty.yaml", &[(1, "the file is empty")]),
    ("not-utf8.yaml", &[(0, "the file is not UTF-8 text")]),
    (
        "unknown-fields.yaml",
        &[
            (2, "unknown field \"descripton\" at the top level: expected one of flow, description, events, start, steps, fail, deadline, on_deadline, stuck_after, on_stuck, actions (did you mean \"description\"?)"),
            (8, "unknown field \"keys\" in event \"Opened\": expected one of topic, match, key, alias, links, time, id (did you mean \"key\"?)"),
            (17, "unknown field \"withn\" in step \"close\": expected one of after, await, within, when, on_breach (did you mean \"within\"?)"),
            (24, "unknown field \"valeu\" in publish of action \"notify\": expected one of topic, key, value (did you mean \"value\"?)"),
            (25, "unknown field \"retries\" in action \"notify\": expected one of publish, attempts, then"),
        ],
    ),
    (
        "missing-fields.yaml",
        &[
            (1, "missing required field \"flow\" at the top level"),
            (1, "missing required field \"start\" at the top level"),
            (3, "missing required field \"topic\" in event \"Opened\""),
            (3, "missing required field \"key\" in event \"Opened\""),
            (9, "missing required field \"await\" in step \"close\""),
            (13, "missing required field \"publish\" in action \"notify\""),
            (16, "missing required field \"topic\" in publish of action \"page\""),
        ],
    ),
    (
        "unknown-names.yaml",
        &[
            (6, "start names unknown event \"OrderPlacd\": declare it under events (did you mean \"OrderPlaced\"?)"),
            (9, "step \"packing\" waits for unknown event \"Packed\": declare it under events"),
            (11, "step \"shipping\" comes after unknown step \"payment\": declare it under steps"),
            (12, "step \"shipping\" waits for unknown event \"OrderShiped\": declare it under events (did you mean \"OrderShipped\"?)"),
            (14, "when of step \"shipping\" reads unknown event \"OrderPlacd\""),
            (15, "on_breach of step \"shipping\" names unknown action \"nudge-shipper\""),
            (16, "fail names unknown event \"Refunded\""),
            (18, "on_deadline names unknown action \"escalate\""),
            (23, "publish.value of action \"remind\": template \"${events.Order.total}\" names unknown event \"Order\""),
            (25, "then of action \"remind\" names unknown action \"page\""),
        ],
    ),
    (
        "after-cycles.yaml",
        &[
            (14, "cycle in after: a -> b -> c -> a"),
            (20, "step \"d\" lists itself in after"),
        ],
    ),
    (
        "event-roles.yaml",
        &[
            (9, "event \"Placed\" opens the instance (start) and also completes step \"placed\""),
            (13, "event \"Paid\" completes both step \"payment\" and step \"settlement\""),
            (16, "event \"Cancelled\" is in fail but also completes step \"cancellation\""),
            (16, "event \"Placed\" is in both start and fail"),
        ],
    ),
    (
        "durations.yaml",
        &[
            (10, "within of step \"close\": duration \"15\" has no unit"),
            (13, "within of step \"check\": bad duration \"soon\""),
            (14, "deadline: negative duration \"-4h\""),
            (15, "stuck_after is zero"),
        ],
    ),
    (
        "paths.yaml",
        &[
            (5, "match of event \"Opened\": bad path \"data..type\": empty segment"),
            (5, "match of event \"Opened\": unknown special path \"$nope\""),
            (6, "key of event \"Opened\": bad path \"order id\": whitespace"),
            (7, "time of event \"Opened\": unknown special path \"$header.\""),
            (8, "id of event \"Opened\": bad JSON Pointer \"/bad~2escape\""),
            (12, "key of event \"Closed\": empty path"),
            (13, "link \"paymentId\" of event \"Closed\": bad path \"a..b\""),
        ],
    ),
    (
        "conditions.yaml",
        &[
            (10, "when of step \"screening\": CEL syntax error in \"events.Placed.total > 1000 &&\""),
            (13, "when of step \"packing\" reads unknown event \"Placd\": declare it under events (did you mean \"Placed\"?)"),
            (13, "when of step \"packing\" reads unknown event \"Basket\""),
        ],
    ),
    (
        "templates.yaml",
        &[
            (14, "publish.topic of action \"nudge\": template \"${events.Placd.region}\" names unknown event \"Placd\""),
            (15, "publish.key of action \"nudge\": unknown template variable \"${keys}\""),
            (18, "publish.value of action \"nudge\": template \"${events.Shiped.id}\" names unknown event \"Shiped\""),
            (19, "publish.value of action \"nudge\": unclosed \"${\""),
        ],
    ),
    (
        "duplicate-keys.yaml",
        &[
            (4, "duplicate key \"type\": it is already defined at line 4, column 32"),
            (5, "duplicate key \"Opened\": it is already defined at line 3, column 3"),
            (11, "duplicate key \"within\": it is already defined at line 10, column 5"),
            (12, "duplicate key \"flow\": it is already defined at line 1, column 1"),
        ],
    ),
    (
        "match-values.yaml",
        &[
            (5, "match value for \"data\" of event \"Placed\" must be a scalar or a list of scalars, found a mapping"),
            (9, "match value for \"type\" of event \"Paid\" is an empty list"),
            (9, "match value for \"amount\" of event \"Paid\" lists a list"),
            (15, "event \"Refunded\" can never be recognised: every record it matches on topic \"payments\" also matches the earlier event \"Any\""),
            (23, "events \"Shipped\" and \"Dispatched\" read topic \"shipping\" with the same match"),
        ],
    ),
    (
        "actions.yaml",
        &[
            (9, "on_breach of step \"close\" has no effect without within"),
            (10, "on_deadline has no effect without deadline"),
            (12, "action name \"alert\" is reserved for the built-in alert"),
            (15, "publish.topic of action \"retry\": \"retry commands\" is not a valid Kafka topic name"),
            (15, "publish.key of action \"retry\" must be a string template such as \"${key}\", found a number"),
            (16, "attempts of action \"retry\" is 0"),
            (17, "then of action \"retry\" names the action itself"),
            (20, "then of action \"notify\" has no effect without attempts"),
            (23, "attempts of action \"escalate\" must be a positive whole number, found -1"),
        ],
    ),
    (
        "aliases.yaml",
        &[
            (8, "links of event \"PaymentRequested\" has an empty alias name"),
            (12, "event \"PaymentCharged\" is routed through alias \"paymentid\" but no event links it: add links: { paymentid: PATH } to the event that carries it (did you mean \"paymentId\"?)"),
            (14, "start event \"PaymentRequested\" is routed through alias \"paymentId\""),
        ],
    ),
    (
        "types.yaml",
        &[
            (1, "flow name \"Types_Flow\" is invalid"),
            (2, "description must be text, found a list"),
            (4, "events must be a mapping of event names to topic, match and key, found a list"),
            (5, "start must be an event name or a list of event names, found a mapping"),
            (6, "steps is empty"),
            (7, "fail must be an event name or a list of event names, found a number"),
            (8, "deadline must be a duration such as 15m or 1h30m, found a list"),
            (9, "actions must be a mapping of action names to their publish records, found a list"),
        ],
    ),
    (
        "field-types.yaml",
        &[
            (4, "topic of event \"Opened\" must be a Kafka topic name, found a number (write \"123\" in quotes"),
            (5, "match of event \"Opened\" must be a mapping of paths to expected values"),
            (7, "links of event \"Opened\" must be a mapping of alias names to paths"),
            (8, "event \"Closed\" must be a mapping with the fields topic, match, key, alias, links, time, id, found a string"),
            (9, "time of event \"Checked\" must be a path"),
            (10, "event name \"Order.Placed\" contains a dot or a space"),
            (11, "start must list event names, found a list"),
            (14, "await of step \"close\" must be an event name or a list of event names, found a mapping"),
            (15, "after of step \"close\" must be a step name or a list of step names, found a number"),
            (17, "await of step \"check\" is empty"),
            (18, "when of step \"check\" must be a CEL expression"),
            (19, "step \"wait\" must be a mapping with the fields after, await, within, when, on_breach, found nothing (null)"),
        ],
    ),
];

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(paths: &[PathBuf]) -> Outcome {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let code = validate::run(paths, &mut stdout, &mut stderr);
    Outcome {
        code,
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    }
}

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/flows")
}

/// One parsed stderr line.
#[derive(Debug)]
struct Reported {
    file: String,
    line: u64,
    column: u64,
    message: String,
}

/// Parses `FILE:LINE:COL: error: MESSAGE` lines; every stderr line must have that shape.
fn reported(stderr: &str) -> Vec<Reported> {
    stderr
        .lines()
        .map(|text| {
            let (location, message) = text
                .split_once(": error: ")
                .unwrap_or_else(|| panic!("not a diagnostic line: {text:?}"));
            let mut parts = location.rsplitn(3, ':');
            let column = parts.next().and_then(|column| column.parse().ok());
            let line = parts.next().and_then(|line| line.parse().ok());
            let (Some(column), Some(line), Some(file)) = (column, line, parts.next()) else {
                panic!("no FILE:LINE:COL in {text:?}");
            };
            Reported {
                file: file.to_string(),
                line,
                column,
                message: message.to_string(),
            }
        })
        .collect()
}

/// Checks that `found` is exactly `expected`: each diagnostic matches one expectation by line
/// and message part, and none is left over on either side. Returns what is wrong, if anything.
fn mismatch(found: &[Reported], expected: &[(u64, &str)]) -> Option<String> {
    let mut unmatched: Vec<(u64, &str)> = expected.to_vec();
    let mut unexpected = Vec::new();
    for diagnostic in found {
        match unmatched
            .iter()
            .position(|(line, part)| *line == diagnostic.line && diagnostic.message.contains(part))
        {
            Some(index) => {
                unmatched.remove(index);
            }
            None => unexpected.push(format!(
                "{}:{}: {}",
                diagnostic.line, diagnostic.column, diagnostic.message
            )),
        }
    }
    if unmatched.is_empty() && unexpected.is_empty() {
        return None;
    }
    Some(format!(
        "  not reported: {unmatched:#?}\n  reported but not expected: {unexpected:#?}"
    ))
}

#[test]
fn each_broken_file_reports_exactly_its_errors() {
    let mut failures = Vec::new();
    for (name, expected) in BROKEN {
        let path = flows_dir().join("broken").join(name);
        let outcome = run(std::slice::from_ref(&path));
        if outcome.code != 1 || !outcome.stdout.is_empty() {
            failures.push(format!(
                "{name}: exit {} with stdout {:?}",
                outcome.code, outcome.stdout
            ));
            continue;
        }
        let found = reported(&outcome.stderr);
        for diagnostic in &found {
            assert_eq!(
                diagnostic.file,
                path.display().to_string(),
                "{name}: diagnostic names another file"
            );
            let whole_file = diagnostic.line == 0;
            assert_eq!(
                diagnostic.column == 0,
                whole_file,
                "{name}: a position has a line without a column: {diagnostic:?}"
            );
            assert!(
                !diagnostic.message.ends_with('.'),
                "{name}: message ends with a period: {diagnostic:?}"
            );
            let first = diagnostic.message.chars().next().unwrap_or(' ');
            assert!(
                first.is_lowercase(),
                "{name}: message does not start in lowercase: {diagnostic:?}"
            );
        }
        if let Some(problem) = mismatch(&found, expected) {
            failures.push(format!("{name}:\n{problem}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_broken_file_has_expectations() {
    let mut on_disk: Vec<String> = std::fs::read_dir(flows_dir().join("broken"))
        .expect("tests/flows/broken exists")
        .map(|entry| {
            entry
                .expect("directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = BROKEN.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn a_directory_of_broken_files_reports_every_error_of_every_file() {
    let outcome = run(&[flows_dir().join("broken")]);
    assert_eq!(outcome.code, 1);
    assert_eq!(outcome.stdout, "");
    let found = reported(&outcome.stderr);
    let expected_total: usize = BROKEN.iter().map(|(_, expected)| expected.len()).sum();
    assert_eq!(found.len(), expected_total, "{}", outcome.stderr);
    // Files come in name order, each file's problems in line order.
    let files: Vec<&str> = found
        .iter()
        .map(|diagnostic| diagnostic.file.as_str())
        .collect();
    let mut sorted_files = files.clone();
    sorted_files.sort();
    assert_eq!(files, sorted_files);
    for (name, expected) in BROKEN {
        let path = flows_dir().join("broken").join(name).display().to_string();
        let in_file: Vec<Reported> = reported(&outcome.stderr)
            .into_iter()
            .filter(|d| d.file == path)
            .collect();
        let lines: Vec<u64> = in_file.iter().map(|diagnostic| diagnostic.line).collect();
        assert!(lines.is_sorted(), "{name}: {lines:?}");
        assert_eq!(mismatch(&in_file, expected), None, "{name}");
    }
}

#[test]
fn the_scenario_flows_validate_with_one_summary_line_each() {
    let good = flows_dir().join("good");
    let outcome = run(std::slice::from_ref(&good));
    assert_eq!(outcome.stderr, "");
    assert_eq!(outcome.code, 0);
    let onboarding = good.join("customer-onboarding.yaml");
    let fulfillment = good.join("order-fulfillment.yaml");
    assert_eq!(
        outcome.stdout,
        format!(
            "ok customer-onboarding ({}): 7 events, 3 steps, 2 actions, topics customer-events, checks\n\
             ok order-fulfillment ({}): 9 events, 4 steps, 1 action, topics orders, inventory, payments, risk, shipping\n",
            onboarding.display(),
            fulfillment.display()
        )
    );
    // Files given one by one come in the order given; a file given twice is read once.
    let outcome = run(&[fulfillment.clone(), onboarding.clone(), fulfillment.clone()]);
    assert_eq!((outcome.code, outcome.stderr.as_str()), (0, ""));
    let names: Vec<&str> = outcome
        .stdout
        .lines()
        .map(|line| line.split(' ').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(names, ["order-fulfillment", "customer-onboarding"]);
}

#[test]
fn one_broken_file_fails_the_run_and_no_summary_is_printed() {
    let outcome = run(&[
        flows_dir().join("good"),
        flows_dir().join("broken/durations.yaml"),
    ]);
    assert_eq!(outcome.code, 1);
    assert_eq!(outcome.stdout, "");
    assert_eq!(reported(&outcome.stderr).len(), 4);
}

#[test]
fn directories_list_yaml_files_and_flow_names_must_be_unique() {
    let dir = flows_dir().join("dir-listing");
    let outcome = run(std::slice::from_ref(&dir));
    assert_eq!(outcome.code, 1);
    let found = reported(&outcome.stderr);
    // notes.txt and .hidden.yaml are not flow files, so only the duplicate name is reported.
    assert_eq!(found.len(), 1, "{}", outcome.stderr);
    assert_eq!(
        found[0].file,
        dir.join("2-second.yml").display().to_string()
    );
    assert_eq!((found[0].line, found[0].column), (2, 7));
    assert_eq!(
        found[0].message,
        format!(
            "duplicate flow name \"listed\": {}:1 already defines it; flow names must be unique",
            dir.join("1-first.yaml").display()
        )
    );
}

#[test]
fn empty_directories_and_missing_paths_are_errors() {
    let empty = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("validate-empty-dir");
    std::fs::create_dir_all(&empty).expect("create an empty directory");
    let missing = flows_dir().join("no-such-file.yaml");
    let outcome = run(&[empty.clone(), missing.clone()]);
    assert_eq!(outcome.code, 1);
    assert_eq!(
        outcome.stderr,
        format!(
            "{empty}:0:0: error: no flow files in {empty}: add *.yaml or *.yml files, one flow each\n\
             {missing}:0:0: error: no such file or directory: give flow files or directories of them\n",
            empty = empty.display(),
            missing = missing.display()
        )
    );
}
