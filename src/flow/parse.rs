//! Flow-file parsing and validation (SPEC 1 and 1.7). A file is read into a spanned YAML tree
//! ([`super::yaml`]), then walked section by section ([`super::parse_events`],
//! [`super::parse_steps`], [`super::parse_actions`]) and checked across sections
//! ([`super::validate_rules`]). Every problem of every file is collected as a [`Diagnostic`]
//! with its line and column; a file with any problem yields no flow.

use super::parse_actions::{read_action_names, read_action_refs, read_actions};
use super::parse_events::read_events;
use super::parse_steps::{read_steps, resolve};
use super::reader::{Field, Names, Owner, Reader};
use super::validate_rules::{check_flow, Spans};
use super::yaml::{key_problems, parse_document, position, Node, Position};
use super::{ActionRef, Flow, FlowDef};
use crate::time::Millis;
use std::path::{Path as FsPath, PathBuf};

/// One problem in a flow file, with its position (line 0: unknown).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}:{}: error: {}", .file.display(), .line, .column, .message)]
pub struct Diagnostic {
    /// File the problem is in.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong and what to do.
    pub message: String,
}

/// The flows loaded from files or directories, and every problem found.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Valid flows, in file-name order.
    pub flows: Vec<Flow>,
    /// Every problem in every file.
    pub errors: Vec<Diagnostic>,
}

/// Parses and validates one flow file. On failure, every problem found, in file order.
pub fn parse_flow_file(file: &FsPath, text: &str) -> Result<FlowDef, Vec<Diagnostic>> {
    compile_flow(file, text).map(|(def, _)| def)
}

/// Loads every flow from the given files and directories. A directory contributes its
/// `*.yaml` and `*.yml` files (not hidden ones, not subdirectories) in name order; a file is
/// read whatever its name. A path given twice is read once. Flow names must be unique across
/// all files: a repeated one is reported at the later file's `flow:` value.
pub fn load_dir_or_files(paths: &[PathBuf]) -> LoadReport {
    let mut report = LoadReport::default();
    let mut files: Vec<PathBuf> = Vec::new();
    for path in paths {
        if path.is_dir() {
            match flow_files_in(path) {
                Ok(found) if found.is_empty() => report.errors.push(file_error(
                    path,
                    format!(
                        "no flow files in {}: add *.yaml or *.yml files, one flow each",
                        path.display()
                    ),
                )),
                Ok(found) => files.extend(found),
                Err(error) => report.errors.push(file_error(
                    path,
                    format!("cannot list the directory: {error}"),
                )),
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut seen_files: Vec<PathBuf> = Vec::new();
    let mut flow_names: Vec<(String, PathBuf, Position)> = Vec::new();
    for file in files {
        let identity = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if seen_files.contains(&identity) {
            continue;
        }
        seen_files.push(identity);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                report.errors.push(file_error(
                    &file,
                    "no such file or directory: give flow files or directories of them",
                ));
                continue;
            }
            Err(error) if error.kind() == std::io::ErrorKind::InvalidData => {
                report.errors.push(file_error(
                    &file,
                    "the file is not UTF-8 text: save it as UTF-8",
                ));
                continue;
            }
            Err(error) => {
                report.errors.push(file_error(
                    &file,
                    format!("cannot read the flow file: {error}"),
                ));
                continue;
            }
        };
        match compile_flow(&file, &text) {
            Ok((def, name_at)) => {
                let earlier = flow_names.iter().find(|(name, _, _)| *name == def.name);
                if let Some((name, earlier_file, earlier_at)) = earlier {
                    report.errors.push(Diagnostic {
                        file: file.clone(),
                        line: name_at.line,
                        column: name_at.column,
                        message: format!(
                            "duplicate flow name {name:?}: {}:{} already defines it; flow names must be unique",
                            earlier_file.display(),
                            earlier_at.line
                        ),
                    });
                } else {
                    flow_names.push((def.name.clone(), file.clone(), name_at));
                    report.flows.push(Flow::new(def));
                }
            }
            Err(errors) => report.errors.extend(errors),
        }
    }
    report
}

/// Fields a flow file may have at the top level.
const TOP_FIELDS: [&str; 11] = [
    "flow",
    "description",
    "events",
    "start",
    "steps",
    "fail",
    "deadline",
    "on_deadline",
    "stuck_after",
    "on_stuck",
    "actions",
];

/// Fields every flow file must have.
const REQUIRED_TOP_FIELDS: [&str; 4] = ["flow", "events", "start", "steps"];

/// Parses and validates one file, returning the flow and where its name is.
fn compile_flow(file: &FsPath, text: &str) -> Result<(FlowDef, Position), Vec<Diagnostic>> {
    let mut reader = Reader::new(file.to_path_buf());
    let root = match parse_document(text) {
        Ok(root) => root,
        Err(error) => {
            reader.error(error.position, format!("invalid YAML: {}", error.message));
            return Err(reader.diagnostics);
        }
    };
    for problem in key_problems(&root) {
        reader.error(problem.position, problem.message);
    }
    if root.value == Node::Null {
        reader.error(
            Position { line: 1, column: 1 },
            "the file is empty: a flow file needs at least flow, events, start and steps",
        );
        return Err(reader.diagnostics);
    }
    let top = Owner::top(position(&root));
    let Some(fields) = reader.fields(&root, &top, &TOP_FIELDS, &REQUIRED_TOP_FIELDS) else {
        return Err(in_file_order(reader.diagnostics));
    };
    let field = |name: &str| fields.iter().find(|field| field.name == name);

    let mut name = String::new();
    let mut name_at = top.at;
    if let Some(flow) = field("flow") {
        name_at = flow.value_at();
        if let Some(text) = reader.string(flow, &top, "a flow name such as order-fulfillment") {
            if !valid_flow_name(text) {
                reader.error(
                    name_at,
                    format!("flow name {text:?} is invalid: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"),
                );
            }
            name = text.to_string();
        }
    }
    let description = field("description")
        .and_then(|description| reader.string(description, &top, "text"))
        .map(str::to_string);

    let events = field("events")
        .map(|events| read_events(&mut reader, events))
        .unwrap_or_default();
    let event_names = Names::new(
        events
            .events
            .iter()
            .map(|event| event.name.as_str())
            .collect(),
    );
    let action_entries = field("actions")
        .map(|actions| read_action_names(&mut reader, actions))
        .unwrap_or_default();
    let action_names = Names::new(action_entries.iter().map(|entry| entry.name).collect());
    let steps = field("steps")
        .map(|steps| read_steps(&mut reader, steps, &event_names, &action_names))
        .unwrap_or_default();

    let (start, start_at) = match field("start") {
        Some(start) => read_event_list(&mut reader, start, &event_names, true),
        None => (Vec::new(), Vec::new()),
    };
    let (fail, fail_at) = match field("fail") {
        Some(fail) => read_event_list(&mut reader, fail, &event_names, false),
        None => (Vec::new(), Vec::new()),
    };
    let mut durations = |name: &str| -> Option<Millis> { reader.duration(field(name)?, &top) };
    let deadline = durations("deadline");
    let stuck_after = durations("stuck_after");
    let mut triggered_actions = |name: &str, trigger: &str| -> Vec<ActionRef> {
        let Some(list) = field(name) else {
            return vec![ActionRef::Alert];
        };
        if field(trigger).is_none() {
            reader.error(
                list.key_at,
                format!("{name} has no effect without {trigger}: add {trigger} or remove {name}"),
            );
        }
        read_action_refs(&mut reader, list, &top, &action_names)
    };
    let on_deadline = triggered_actions("on_deadline", "deadline");
    let on_stuck = triggered_actions("on_stuck", "stuck_after");
    let event_index = |name: &str| event_names.get(name);
    let actions = read_actions(&mut reader, &action_entries, &event_index);

    let spans = Spans {
        event_names: events.name_at,
        start: start_at,
        after: steps.after_at,
        awaits: steps.awaits_at,
        fail: fail_at,
    };
    let def = FlowDef {
        name,
        description,
        file: file.to_path_buf(),
        events: events.events,
        start,
        steps: steps.steps,
        fail,
        deadline,
        on_deadline,
        stuck_after,
        on_stuck,
        actions,
        aliases: events.aliases,
    };
    check_flow(&mut reader, &def, &spans);
    if reader.diagnostics.is_empty() {
        Ok((def, name_at))
    } else {
        Err(in_file_order(reader.diagnostics))
    }
}

/// `start` or `fail`: an event name or a list of them, resolved to indexes with positions.
/// `start` may not be empty.
fn read_event_list(
    reader: &mut Reader,
    field: &Field<'_>,
    event_names: &Names<'_>,
    required: bool,
) -> (Vec<usize>, Vec<Position>) {
    let top = Owner::top(field.key_at);
    let names = reader.names(field, &top, "event");
    if required && names.is_empty() && matches!(field.value.value, Node::Seq(_)) {
        reader.error(
            field.value_at(),
            format!(
                "{} is empty: name the event or events that open an instance",
                field.name
            ),
        );
    }
    let mut indexes = Vec::new();
    let mut positions = Vec::new();
    for (name, at) in names {
        let message = || {
            format!(
                "{} names unknown event {name:?}: declare it under events",
                field.name
            )
        };
        if let Some(event) = resolve(reader, event_names, &name, at, message) {
            indexes.push(event);
            positions.push(at);
        }
    }
    (indexes, positions)
}

/// `[a-z0-9][a-z0-9._-]*`.
fn valid_flow_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Sorts diagnostics by position (stable, so problems at one place keep the order found) and
/// drops exact repeats.
fn in_file_order(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by_key(|diagnostic| (diagnostic.line, diagnostic.column));
    diagnostics.dedup();
    diagnostics
}

/// A problem with a whole file or directory (no position).
fn file_error(path: &FsPath, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message: message.into(),
    }
}

/// The `*.yaml` and `*.yml` files directly in `dir`, sorted by name. Hidden files (editor
/// backups, lock files) are skipped.
fn flow_files_in(dir: &FsPath) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file_name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let is_flow_file = !file_name.starts_with('.')
            && path
                .extension()
                .is_some_and(|extension| extension == "yaml" || extension == "yml");
        if is_flow_file && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|left, right| left.file_name().cmp(&right.file_name()));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{ActionRef, Path};

    const MINIMAL: &str = "\
flow: mini
events:
  Opened: { topic: t, match: { type: Opened }, key: id }
  Closed: { topic: t, match: { type: [Closed, Done] }, key: id }
start: Opened
steps:
  close:
    await: Closed
";

    fn parse(text: &str) -> Result<FlowDef, Vec<(u64, String)>> {
        parse_flow_file(FsPath::new("f.yaml"), text).map_err(|errors| {
            errors
                .into_iter()
                .map(|error| (error.line, error.message))
                .collect()
        })
    }

    #[test]
    fn the_scenario_flow_resolves_every_name_to_an_index() {
        let text = include_str!("../../tests/flows/good/order-fulfillment.yaml");
        let def = parse(text).unwrap();
        assert_eq!(def.name, "order-fulfillment");
        let event_names: Vec<&str> = def.events.iter().map(|event| event.name.as_str()).collect();
        assert_eq!(
            event_names,
            [
                "OrderPlaced",
                "OrderCancelled",
                "InventoryReserved",
                "InventoryUnavailable",
                "PaymentRequested",
                "PaymentCharged",
                "PaymentFailed",
                "FraudCleared",
                "OrderShipped"
            ]
        );
        assert_eq!(def.start, [0]);
        assert_eq!(def.fail, [1, 3, 6]);
        assert_eq!(def.aliases, ["paymentId"]);
        assert_eq!(def.events[4].links.len(), 1);
        assert_eq!(def.events[5].alias, Some(0));
        assert_eq!(def.events[5].key, Path::parse("paymentId").unwrap());
        assert_eq!(def.events[7].key, Path::parse("/subject/orderId").unwrap());
        assert_eq!(
            def.events[3].matchers[1].allowed,
            [
                serde_json::json!("unavailable"),
                serde_json::json!("discontinued")
            ]
        );
        let step_names: Vec<&str> = def.steps.iter().map(|step| step.name.as_str()).collect();
        assert_eq!(
            step_names,
            ["inventory", "fraud-check", "payment", "shipping"]
        );
        assert_eq!(def.steps[2].after, [0]);
        assert_eq!(def.steps[3].after, [2, 1]);
        assert_eq!(def.steps[3].awaits, [8]);
        assert_eq!(def.steps[2].within, Some(15 * 60_000));
        assert_eq!(def.steps[2].on_breach, [ActionRef::Declared(0)]);
        assert_eq!(def.steps[0].on_breach, [ActionRef::Alert]);
        assert!(def.steps[1].when.is_some());
        assert_eq!(def.deadline, Some(6 * 3_600_000));
        assert_eq!(def.on_deadline, [ActionRef::Alert]);
        assert_eq!(def.stuck_after, None);
        assert_eq!(def.actions[0].attempts, Some(2));
        assert_eq!(def.actions[0].then, [ActionRef::Alert]);
        assert!(def.actions[0].publish.key.is_some());
    }

    #[test]
    fn explicit_empty_action_lists_stay_empty() {
        let text = format!(
            "{MINIMAL}    within: 5m\n    on_breach: []\ndeadline: 1h\non_deadline: []\nstuck_after: 2h\non_stuck: [alert, notify]\n\
             actions:\n  notify:\n    publish: {{ topic: n }}\n    attempts: 1\n    then: []\n"
        );
        let def = parse(&text).unwrap();
        assert_eq!(def.steps[0].on_breach, []);
        assert_eq!(def.on_deadline, []);
        assert_eq!(def.on_stuck, [ActionRef::Alert, ActionRef::Declared(0)]);
        assert_eq!(def.actions[0].then, []);
        assert_eq!(
            def.actions[0].publish.value,
            crate::flow::Template::Literal(serde_json::Value::Null)
        );
    }

    #[test]
    fn every_problem_is_reported_in_file_order() {
        let text = MINIMAL
            .replace("key: id }\n  Closed", "key: id, extra: 1 }\n  Closed")
            .replace("await: Closed", "await: Clossed\n    within: soon");
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(errors[0].0, 3);
        assert!(
            errors[0]
                .1
                .starts_with("unknown field \"extra\" in event \"Opened\""),
            "{errors:?}"
        );
        assert_eq!(errors[1].0, 8);
        assert!(
            errors[1].1.contains("unknown event \"Clossed\"")
                && errors[1].1.contains("did you mean \"Closed\"?")
        );
        assert_eq!(errors[2].0, 9);
        assert!(
            errors[2]
                .1
                .starts_with("within of step \"close\": bad duration \"soon\""),
            "{errors:?}"
        );
    }

    #[test]
    fn syntax_errors_and_empty_files_are_single_diagnostics() {
        let errors = parse("flow: x\nevents: [a\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.starts_with("invalid YAML: "), "{errors:?}");
        assert_eq!(
            parse("").unwrap_err(),
            [(
                1,
                "the file is empty: a flow file needs at least flow, events, start and steps"
                    .to_string()
            )]
        );
        let errors = parse("- a\n").unwrap_err();
        assert!(
            errors[0].1.starts_with("a flow file must be a mapping"),
            "{errors:?}"
        );
    }

    #[test]
    fn windows_line_endings_and_a_byte_order_mark_are_accepted() {
        let text = include_str!("../../tests/flows/good/customer-onboarding.yaml");
        let windows = format!("\u{feff}{}", text.replace('\n', "\r\n"));
        let def = parse(&windows).unwrap();
        assert_eq!(def.name, "customer-onboarding");
        let errors = parse(
            &MINIMAL
                .replace("await: Closed", "await: Nope")
                .replace('\n', "\r\n"),
        )
        .unwrap_err();
        assert_eq!(errors[0].0, 8, "{errors:?}");
    }

    #[test]
    fn anchors_and_merge_keys_work_inside_a_flow() {
        let text = MINIMAL.replace(
            "  Closed: { topic: t, match: { type: [Closed, Done] }, key: id }",
            "  Closed: &base { topic: t, match: { type: [Closed, Done] }, key: id }\n  Reopened:\n    <<: *base\n    match: { type: Reopened }",
        );
        let def = parse(&text).unwrap();
        assert_eq!(def.events[2].name, "Reopened");
        assert_eq!(def.events[2].topic, "t");
        assert_eq!(
            def.events[2].matchers[0].allowed,
            [serde_json::json!("Reopened")]
        );
    }

    #[test]
    fn diagnostics_display_as_file_line_column() {
        let diagnostic = Diagnostic {
            file: "flows/a.yaml".into(),
            line: 3,
            column: 7,
            message: "bad thing".into(),
        };
        assert_eq!(diagnostic.to_string(), "flows/a.yaml:3:7: error: bad thing");
    }

    /// A flow with `count` steps, each after the previous one (and the first after the last
    /// when `closed`), each awaiting its own event.
    fn chain(count: usize, closed: bool) -> String {
        let mut text = String::from(
            "flow: chain\nevents:\n  Start: { topic: t, match: { n: -1 }, key: id }\n",
        );
        for n in 0..count {
            // One topic per event: the overlap check compares the events of a topic pairwise,
            // which is what this test is not about.
            text.push_str(&format!(
                "  E{n}: {{ topic: t{n}, match: {{ n: {n} }}, key: id }}\n"
            ));
        }
        text.push_str("start: Start\nsteps:\n");
        for n in 0..count {
            let after = match (n, closed) {
                (0, false) => String::new(),
                (0, true) => format!(", after: s{}", count - 1),
                _ => format!(", after: s{}", n - 1),
            };
            text.push_str(&format!("  s{n}: {{ await: E{n}{after} }}\n"));
        }
        text
    }

    #[test]
    fn long_flows_are_checked_without_deep_recursion_or_quadratic_lookups() {
        let def = parse(&chain(2000, false)).unwrap();
        assert_eq!(def.steps[1999].after, [1998]);
        let errors = parse(&chain(2000, true)).unwrap_err();
        assert_eq!(errors.len(), 1, "{:?}", errors.first());
        assert!(
            errors[0]
                .1
                .starts_with("cycle in after: s0 -> s1 -> s2 -> "),
            "{:?}",
            &errors[0].1[..80]
        );
    }

    #[test]
    fn flow_names() {
        assert!(valid_flow_name("order-fulfillment.v2_x"));
        assert!(valid_flow_name("9lives"));
        assert!(!valid_flow_name("-x"));
        assert!(!valid_flow_name("Orders"));
        assert!(!valid_flow_name(""));
    }
}
