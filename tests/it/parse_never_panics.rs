//! Property: `parse_flow_file` never panics, whatever the text. Fed with arbitrary strings,
//! strings over YAML's punctuation, and a valid flow file after random edits (deleted and
//! inserted text, replaced, duplicated and swapped lines, changed indentation) that mix YAML
//! syntax with flow-file fragments likely to reach deep into validation. Any panic found is
//! kept below as a regular test.

use flowwatch::flow::parse_flow_file;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;
use std::path::Path;

const VALID: &str = include_str!("../flows/good/order-fulfillment.yaml");

/// Tokens likely to change how the YAML parses, inserted anywhere.
const TOKENS: &[&str] = &[
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "!!int ",
    "|\n",
    ">-\n",
    "'",
    "\"",
    "#",
    "---\n",
    "...\n",
    "\t",
    "~",
    "? ",
    "${",
    "${events.",
    "$key",
    "$header.",
    "/",
    "~1",
    "~2",
    "..",
    "\u{feff}",
    "é",
    "\u{0}",
    "\r\n",
    "0x1F",
    "1e999",
    ".nan",
    "-.inf",
    "18446744073709551616",
    "null",
    "true",
];

/// Whole lines of flow file likely to reach deep into validation, inserted between lines.
const LINES: &[&str] = &[
    "    after: [shipping]\n",
    "    after: [payment, payment]\n",
    "    after: inventory\n",
    "    await: [OrderPlaced]\n",
    "    await: []\n",
    "    within: 0s\n",
    "    within: 99999999999999999d\n",
    "    within: 1h30m\n",
    "    when: \"((((((((((((((((((((1))))))))))))))))))))\"\n",
    "    when: events.Nope.x > 1\n",
    "    when: size(events) > 0\n",
    "    when: \"'unterminated\"\n",
    "    on_breach: []\n",
    "    on_breach: [alert, nope]\n",
    "    attempts: 0\n",
    "    attempts: -3\n",
    "    attempts: 99999999999999999999\n",
    "    then: [retry-payment]\n",
    "    alias: paymentId\n",
    "    alias: nothing\n",
    "    links: { x: \"\" }\n",
    "    links: { \"\": a }\n",
    "    match: { a: [[]] }\n",
    "    match: {}\n",
    "    match: { /a~: 1 }\n",
    "    key: \"\"\n",
    "    time: $header.\n",
    "fail: [OrderPlaced]\n",
    "start: []\n",
    "start: [PaymentCharged]\n",
    "on_stuck: [x]\n",
    "stuck_after: 5m\n",
    "deadline: -1h\n",
    "actions: ~\n",
    "  alert:\n    publish: { topic: x }\n",
    "      value: \"${events.OrderPlaced}\"\n",
    "      topic: \"${step}\"\n",
    "      key: \"${events.Nope.x}${\"\n",
];

/// One edit of the file text. Positions are indexes into whatever the text is at that point.
#[derive(Clone, Debug)]
enum Edit {
    Delete(Index, usize),
    Insert(Index, String),
    InsertLine(Index, String),
    ReplaceLine(Index, String),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Indent(Index, bool),
    Truncate(Index),
}

fn snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(TOKENS).prop_map(str::to_string),
        1 => "[ -~\n]{0,20}",
        1 => any::<String>(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    // Line-level edits keep most files valid YAML, so that they reach the flow checks.
    prop_oneof![
        1 => (any::<Index>(), 1..40usize).prop_map(|(at, length)| Edit::Delete(at, length)),
        1 => (any::<Index>(), snippet()).prop_map(|(at, text)| Edit::Insert(at, text)),
        6 => (any::<Index>(), prop::sample::select(LINES)).prop_map(|(line, text)| Edit::InsertLine(line, text.to_string())),
        2 => (any::<Index>(), prop::sample::select(LINES)).prop_map(|(line, text)| Edit::ReplaceLine(line, text.to_string())),
        1 => (any::<Index>(), snippet()).prop_map(|(line, text)| Edit::ReplaceLine(line, text)),
        2 => any::<Index>().prop_map(Edit::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(first, second)| Edit::SwapLines(first, second)),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(line, deeper)| Edit::Indent(line, deeper)),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

/// Applies an edit on character boundaries (and line boundaries for line edits).
fn apply(text: &str, edit: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let char_at = |index: &Index| index.index(chars.len() + 1);
    let line_at = |index: &Index| index.index(lines.len());
    match edit {
        Edit::Delete(at, length) => {
            let start = char_at(at);
            let end = (start + length).min(chars.len());
            chars[..start].iter().chain(&chars[end..]).collect()
        }
        Edit::Insert(at, inserted) => {
            let at = char_at(at);
            let mut result: String = chars[..at].iter().collect();
            result.push_str(inserted);
            result.extend(&chars[at..]);
            result
        }
        Edit::InsertLine(line, inserted) => {
            let line = line_at(line);
            lines.insert(line, inserted.trim_end_matches('\n').to_string());
            lines.join("\n")
        }
        Edit::ReplaceLine(line, replacement) => {
            let line = line_at(line);
            lines[line] = replacement.trim_end_matches('\n').to_string();
            lines.join("\n")
        }
        Edit::DuplicateLine(line) => {
            let line = line_at(line);
            lines.insert(line, lines[line].clone());
            lines.join("\n")
        }
        Edit::SwapLines(first, second) => {
            let (first, second) = (line_at(first), line_at(second));
            lines.swap(first, second);
            lines.join("\n")
        }
        Edit::Indent(line, deeper) => {
            let line = line_at(line);
            if *deeper {
                lines[line].insert_str(0, "  ");
            } else {
                lines[line] = lines[line]
                    .strip_prefix("  ")
                    .unwrap_or(&lines[line])
                    .to_string();
            }
            lines.join("\n")
        }
        Edit::Truncate(at) => chars[..char_at(at)].iter().collect(),
    }
}

/// Values that mean something somewhere in a flow file, grafted anywhere by [`TreeEdit`].
const WORDS: &[&str] = &[
    "OrderPlaced",
    "OrderShipped",
    "PaymentCharged",
    "payment",
    "shipping",
    "inventory",
    "alert",
    "retry-payment",
    "paymentId",
    "15m",
    "-1h",
    "0s",
    "15",
    "$key",
    "$header.ce_id",
    "a..b",
    "/a~2",
    "${key}",
    "${events.Nope.x}",
    "${events.OrderPlaced.total}",
    "${",
    "",
    "((((",
    "events.OrderPlaced.total > 1",
    "events.Nope.x",
    "orders",
    "bad topic",
    "Bad Name",
    "topic",
    "match",
    "key",
    "after",
    "await",
    "within",
    "when",
    "on_breach",
    "attempts",
    "then",
    "publish",
    "links",
    "alias",
];

/// An edit of the flow file's tree, which is then written out as JSON (which YAML reads), so
/// that nearly every edited file is well-formed and reaches the flow checks.
#[derive(Clone, Debug)]
enum TreeEdit {
    Remove(Index),
    Replace(Index, Value),
    RenameKey(Index, String),
    Graft(Index, Index),
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(WORDS).prop_map(str::to_string), 1 => "[ -~]{0,12}"]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => word().prop_map(Value::from),
        1 => prop_oneof![Just(0i64), Just(-1), Just(3), Just(i64::MAX), any::<i64>()].prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        1 => Just(Value::from(1.5)),
        1 => any::<bool>().prop_map(Value::from),
        1 => Just(Value::Null),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        any::<Index>().prop_map(TreeEdit::Remove),
        (any::<Index>(), value()).prop_map(|(at, value)| TreeEdit::Replace(at, value)),
        (any::<Index>(), word()).prop_map(|(at, name)| TreeEdit::RenameKey(at, name)),
        (any::<Index>(), any::<Index>()).prop_map(|(from, to)| TreeEdit::Graft(from, to)),
    ]
}

/// One step from a node to a child.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item(usize),
}

/// Every node below the root, as steps from the root.
fn node_paths(value: &Value, prefix: &mut Vec<Step>, paths: &mut Vec<Vec<Step>>) {
    let children: Vec<(Step, &Value)> = match value {
        Value::Object(fields) => fields
            .iter()
            .map(|(key, child)| (Step::Key(key.clone()), child))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| (Step::Item(index), child))
            .collect(),
        _ => Vec::new(),
    };
    for (step, child) in children {
        prefix.push(step);
        paths.push(prefix.clone());
        node_paths(child, prefix, paths);
        prefix.pop();
    }
}

fn node_mut<'a>(root: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Item(index) => node.get_mut(*index),
    })
}

fn apply_tree_edit(root: &mut Value, edit: &TreeEdit) {
    let mut paths = Vec::new();
    node_paths(root, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        return;
    }
    let pick = |index: &Index| paths[index.index(paths.len())].clone();
    match edit {
        TreeEdit::Remove(at) => {
            let path = pick(at);
            let Some((last, parent)) = path.split_last() else {
                return;
            };
            match (node_mut(root, parent), last) {
                (Some(Value::Object(fields)), Step::Key(key)) => drop(fields.remove(key)),
                (Some(Value::Array(items)), Step::Item(index)) => drop(items.remove(*index)),
                _ => {}
            }
        }
        TreeEdit::Replace(at, value) => {
            if let Some(node) = node_mut(root, &pick(at)) {
                *node = value.clone();
            }
        }
        TreeEdit::RenameKey(at, name) => {
            let path = pick(at);
            let Some((Step::Key(key), parent)) = path.split_last() else {
                return;
            };
            if let Some(Value::Object(fields)) = node_mut(root, parent) {
                if let Some(child) = fields.remove(key) {
                    fields.insert(name.clone(), child);
                }
            }
        }
        TreeEdit::Graft(from, to) => {
            let Some(copied) = node_mut(root, &pick(from)).map(|node| node.clone()) else {
                return;
            };
            if let Some(node) = node_mut(root, &pick(to)) {
                *node = copied;
            }
        }
    }
}

fn parse(text: &str) {
    // Only panics matter: any result, valid or not, is fine.
    let _ = parse_flow_file(Path::new("fuzz.yaml"), text);
}

// Each property runs 256 cases by default; set PROPTEST_CASES to hunt longer.
proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        parse(&text);
    }

    #[test]
    fn yaml_punctuation_never_panics(text in "[a-z0-9 :\\-\\[\\]{},&*!|>'\"#~$.\\\\/\n\t?<=@%`]{0,200}") {
        parse(&text);
    }

    #[test]
    fn edited_flow_files_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        let mut text = VALID.to_string();
        for edit in &edits {
            text = apply(&text, edit);
        }
        parse(&text);
    }
}

proptest! {
    #[test]
    fn structurally_edited_flow_files_never_panic(edits in prop::collection::vec(tree_edit(), 1..6)) {
        let mut tree: Value = serde_saphyr::from_str(VALID).expect("the scenario flow is YAML");
        for edit in &edits {
            apply_tree_edit(&mut tree, edit);
        }
        let text = serde_json::to_string_pretty(&tree).expect("JSON values serialize");
        parse(&text);
    }
}

#[test]
fn the_unedited_file_is_valid() {
    // The mutations start from a valid file, so that they reach validation, not only YAML.
    assert!(parse_flow_file(Path::new("valid.yaml"), VALID).is_ok());
    // Written out as JSON, it is still the same valid flow.
    let tree: Value = serde_saphyr::from_str(VALID).expect("the scenario flow is YAML");
    let json = serde_json::to_string_pretty(&tree).expect("JSON values serialize");
    assert!(parse_flow_file(Path::new("valid.json.yaml"), &json).is_ok());
}

#[test]
fn deeply_nested_conditions_are_errors_not_crashes() {
    // Found while writing the property above: the CEL parser overflowed the stack of a test
    // thread at about a dozen nested brackets.
    let nested = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    let text = VALID.replace(
        "when: double(events.OrderPlaced.total) > 1000.0",
        &format!("when: \"{nested} == 1\""),
    );
    let errors = parse_flow_file(Path::new("deep.yaml"), &text).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("nests brackets 500 deep"),
        "{errors:?}"
    );
    let nested_yaml = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let text = VALID.replace("value:\n", &format!("value: {nested_yaml}\n      x:\n"));
    let errors = parse_flow_file(Path::new("deep.yaml"), &text).unwrap_err();
    assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
}
