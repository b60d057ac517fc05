//! A YAML document as a tree in which every key and value keeps its line and column. Flow files
//! are read into this tree first, rather than straight into typed structs, so that the parser
//! can walk all of it and report every problem with its position instead of stopping at the
//! first one as serde would. Mapping order is kept (event and step order mean something), and
//! duplicate keys are kept too, so that the parser can report them with both positions.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::DuplicateKeyPolicy;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::fmt;

/// A YAML node. Scalars are typed the way YAML 1.2's core schema reads them (`true`, `12`,
/// `1.5`, `~`); everything else is a string.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits in 64 signed bits.
    Int(i64),
    /// A positive integer beyond `i64::MAX`.
    UInt(u64),
    /// Any other number, including `.inf` and `.nan`.
    Float(f64),
    /// A string scalar.
    Str(String),
    /// A sequence, in order.
    Seq(Vec<Spanned<Node>>),
    /// A mapping, in file order, duplicates included. Keys are nodes because YAML allows any
    /// node as a key; [`Node::key_text`] gives the name of a scalar key.
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

/// Where something is in a file: 1-based line and column, 0 when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

/// A YAML syntax error (or a document the tree cannot hold), with where the parser stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser reported the error.
    pub position: Position,
    /// The parser's message, on one line.
    pub message: String,
}

/// Parses one YAML document into a spanned tree. An empty document is [`Node::Null`].
pub fn parse_document(text: &str) -> Result<Spanned<Node>, SyntaxError> {
    // Duplicate keys pass through so that the parser can report all of them, each with the
    // position of the first definition, instead of stopping at the first one. Booleans are
    // YAML 1.2's `true`/`false` only, so `match: { answer: no }` compares with the string
    // "no"; numbers with leading zeros stay strings, so a postcode `01234` keeps its zero.
    let options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options::<Spanned<Node>>(text, options).map_err(|error| {
        let position = error.location().map(|location| position_of(&location)).unwrap_or_default();
        let rendered = one_line(&error.without_snippet().to_string());
        let message = if rendered.starts_with("multiple YAML documents") {
            // The parser's own text suggests a Rust API; say what to do with the file instead.
            "a flow file holds one YAML document: remove the second `---` or move that flow to its own file"
                .to_string()
        } else {
            rendered
        };
        SyntaxError { position, message }
    })
}

/// The position a spanned value was referenced at.
pub fn position<T>(spanned: &Spanned<T>) -> Position {
    position_of(&spanned.referenced)
}

fn position_of(location: &serde_saphyr::Location) -> Position {
    Position {
        line: location.line(),
        column: location.column(),
    }
}

/// Collapses a multi-line parser message into one line, without a trailing period and
/// without the position the parser may have appended (the diagnostic carries it).
fn one_line(message: &str) -> String {
    let joined = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let without_position = match joined.rfind(" at line ") {
        Some(index) if joined[index..].contains("column") => joined[..index].to_string(),
        _ => joined,
    };
    without_position.trim_end_matches('.').to_string()
}

impl Node {
    /// What kind of node this is, for messages ("a string", "a list").
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "nothing (null)",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::UInt(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }

    /// The node as JSON. Non-finite floats have no JSON form and give `Err` with a message.
    pub fn to_json(&self) -> Result<Value, String> {
        Ok(match self {
            Node::Null => Value::Null,
            Node::Bool(flag) => Value::Bool(*flag),
            Node::Int(integer) => Value::from(*integer),
            Node::UInt(integer) => Value::from(*integer),
            Node::Float(float) => serde_json::Number::from_f64(*float)
                .map(Value::Number)
                .ok_or_else(|| format!("{float} is not a finite number and has no JSON form"))?,
            Node::Str(text) => Value::String(text.clone()),
            Node::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.value.to_json())
                    .collect::<Result<_, _>>()?,
            ),
            Node::Map(entries) => {
                let mut object = serde_json::Map::new();
                for (key, value) in entries {
                    let name = key.value.key_text().ok_or("a mapping key must be a name")?;
                    object.insert(name, value.value.to_json()?);
                }
                Value::Object(object)
            }
        })
    }

    /// Whether the node is a scalar (not a list or mapping).
    pub fn is_scalar(&self) -> bool {
        !matches!(self, Node::Seq(_) | Node::Map(_))
    }

    /// The name a mapping key stands for: a string as is, a number or boolean as written in
    /// canonical form; `None` for null, lists and mappings, which cannot name anything.
    pub fn key_text(&self) -> Option<String> {
        match self {
            Node::Str(text) => Some(text.clone()),
            Node::Bool(flag) => Some(flag.to_string()),
            Node::Int(integer) => Some(integer.to_string()),
            Node::UInt(integer) => Some(integer.to_string()),
            Node::Float(float) => Some(float.to_string()),
            Node::Null | Node::Seq(_) | Node::Map(_) => None,
        }
    }
}

/// A problem with a mapping key anywhere in a document, found by [`key_problems`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyProblem {
    /// Where the offending key is.
    pub position: Position,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every key in the tree that repeats an earlier key of its mapping, or that is not a name
/// (null, a list or a mapping), in document order.
pub fn key_problems(node: &Spanned<Node>) -> Vec<KeyProblem> {
    let mut problems = Vec::new();
    collect_key_problems(node, &mut problems);
    problems
}

fn collect_key_problems(node: &Spanned<Node>, problems: &mut Vec<KeyProblem>) {
    match &node.value {
        Node::Seq(items) => items
            .iter()
            .for_each(|item| collect_key_problems(item, problems)),
        Node::Map(entries) => {
            let mut first_positions: HashMap<String, Position> =
                HashMap::with_capacity(entries.len());
            for (key, value) in entries {
                match key.value.key_text() {
                    None => problems.push(KeyProblem {
                        position: position(key),
                        message: format!(
                            "a mapping key must be a name, found {}",
                            key.value.kind()
                        ),
                    }),
                    Some(name) => {
                        if let Some(&first) = first_positions.get(&name) {
                            problems.push(KeyProblem {
                                position: position(key),
                                message: format!(
                                    "duplicate key {name:?}: it is already defined at line {}, column {}; remove one of them",
                                    first.line, first.column
                                ),
                            });
                        } else {
                            first_positions.insert(name, position(key));
                        }
                    }
                }
                collect_key_problems(value, problems);
            }
        }
        _ => {}
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Node, D::Error> {
        Node::deserialize(deserializer)
    }

    fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Node, E> {
        Ok(Node::Bool(flag))
    }

    fn visit_i64<E: de::Error>(self, integer: i64) -> Result<Node, E> {
        Ok(Node::Int(integer))
    }

    fn visit_u64<E: de::Error>(self, integer: u64) -> Result<Node, E> {
        Ok(i64::try_from(integer).map_or(Node::UInt(integer), Node::Int))
    }

    fn visit_i128<E: de::Error>(self, integer: i128) -> Result<Node, E> {
        Ok(match (i64::try_from(integer), u64::try_from(integer)) {
            (Ok(small), _) => Node::Int(small),
            (_, Ok(unsigned)) => Node::UInt(unsigned),
            _ => Node::Float(integer as f64),
        })
    }

    fn visit_u128<E: de::Error>(self, integer: u128) -> Result<Node, E> {
        Ok(match (i64::try_from(integer), u64::try_from(integer)) {
            (Ok(small), _) => Node::Int(small),
            (_, Ok(unsigned)) => Node::UInt(unsigned),
            _ => Node::Float(integer as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, float: f64) -> Result<Node, E> {
        Ok(Node::Float(float))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Node, E> {
        Ok(Node::Str(text.to_string()))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Node, E> {
        Ok(Node::Str(text))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = sequence.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut mapping: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = mapping.next_key::<Spanned<Node>>()? {
            let value = mapping.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(node: &Spanned<Node>) -> (u64, u64) {
        let position = position(node);
        (position.line, position.column)
    }

    fn entries(node: &Spanned<Node>) -> &[(Spanned<Node>, Spanned<Node>)] {
        match &node.value {
            Node::Map(entries) => entries,
            other => panic!("expected a mapping, found {other:?}"),
        }
    }

    #[test]
    fn keys_and_values_keep_their_positions() {
        let text = "flow: f\nevents:\n  A: { topic: t, match: [1, 2.5, x] }\n  B:\n    topic: u\n";
        let root = parse_document(text).unwrap();
        let top = entries(&root);
        assert_eq!(top[0].0.value, Node::Str("flow".into()));
        assert_eq!(
            (top[0].0.referenced.line(), top[0].0.referenced.column()),
            (1, 1)
        );
        assert_eq!(top[0].1.value, Node::Str("f".into()));
        assert_eq!(at(&top[0].1), (1, 7));
        let events = entries(&top[1].1);
        assert_eq!(
            (
                events[0].0.value.key_text().unwrap(),
                events[0].0.referenced.line()
            ),
            ("A".into(), 3)
        );
        let event_a = entries(&events[0].1);
        assert_eq!(at(&event_a[1].1), (3, 25));
        let Node::Seq(items) = &event_a[1].1.value else {
            panic!("expected a list")
        };
        assert_eq!(items[0].value, Node::Int(1));
        assert_eq!(items[1].value, Node::Float(2.5));
        assert_eq!(items[2].value, Node::Str("x".into()));
        assert_eq!(at(&items[2]), (3, 34));
        let event_b = entries(&events[1].1);
        assert_eq!(
            (
                event_b[0].0.referenced.line(),
                event_b[0].0.referenced.column()
            ),
            (5, 5)
        );
        assert_eq!(at(&event_b[0].1), (5, 12));
    }

    #[test]
    fn order_and_duplicates_are_kept() {
        let root = parse_document("z: 1\na: 2\nz: 3\nn:\n  - { x: 1, x: 2 }\n").unwrap();
        let keys: Vec<String> = entries(&root)
            .iter()
            .map(|(key, _)| key.value.key_text().unwrap())
            .collect();
        assert_eq!(keys, ["z", "a", "z", "n"]);
        let problems = key_problems(&root);
        let found: Vec<(u64, u64, &str)> = problems
            .iter()
            .map(|problem| {
                (
                    problem.position.line,
                    problem.position.column,
                    problem.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                (3, 1, "duplicate key \"z\": it is already defined at line 1, column 1; remove one of them"),
                (5, 13, "duplicate key \"x\": it is already defined at line 5, column 7; remove one of them"),
            ]
        );
    }

    #[test]
    fn empty_document_is_null_and_syntax_errors_have_positions() {
        assert_eq!(parse_document("").unwrap().value, Node::Null);
        assert_eq!(
            parse_document("# only a comment\n").unwrap().value,
            Node::Null
        );
        let error = parse_document("flow: f\nevents: [a, b\nsteps: {}\n").unwrap_err();
        assert!(error.position.line >= 2, "{error:?}");
        assert!(!error.message.is_empty());
        assert!(!error.message.ends_with('.'), "{error:?}");
        let error = parse_document("flow: a\n---\nflow: b\n").unwrap_err();
        assert_eq!(error.position, Position { line: 3, column: 1 });
        assert!(
            error
                .message
                .starts_with("a flow file holds one YAML document"),
            "{error:?}"
        );
    }

    #[test]
    fn scalars_convert_to_json() {
        let root =
            parse_document("a: [1, -2, 2.5, true, ~, text, '7', 18446744073709551615]\n").unwrap();
        let top = entries(&root);
        assert_eq!(
            top[0].1.value.to_json().unwrap(),
            serde_json::json!([1, -2, 2.5, true, null, "text", "7", 18446744073709551615u64])
        );
        let yaml_1_1 = parse_document("[n, no, yes, on, off, y, 010, 0x10, 1_000, False]").unwrap();
        assert_eq!(
            yaml_1_1.value.to_json().unwrap(),
            serde_json::json!(["n", "no", "yes", "on", "off", "y", "010", 16, 1000, false])
        );
        assert!(Node::Float(f64::NAN).to_json().is_err());
        // The parser itself refuses non-finite floats, with a position.
        let error = parse_document("a: 1\nb: .nan\n").unwrap_err();
        assert_eq!(error.position, Position { line: 2, column: 4 });
    }
}
