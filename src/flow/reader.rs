//! Typed reading of the spanned YAML tree with error collection. A [`Reader`] never stops at
//! a problem: each helper records a diagnostic with the position of the offending key or value
//! and returns `None` (or skips the bad part), so the compiler can go on and report everything
//! that is wrong with a file at once.
//!
//! Messages name the field and its owner the same way everywhere: `within of step "payment"`,
//! `key of event "OrderPlaced"`, and just `deadline` for top-level fields.

use super::parse::Diagnostic;
use super::path::Path;
use super::yaml::{position, Node, Position};
use crate::time::{parse_duration, Millis};
use serde_saphyr::Spanned;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Collects diagnostics for one file while its tree is read.
pub struct Reader {
    /// The file every diagnostic is about.
    file: PathBuf,
    /// Every problem found so far, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

/// One `name: value` entry of a mapping whose key is a usable name.
#[derive(Clone, Copy, Debug)]
pub struct Field<'a> {
    /// The key as text.
    pub name: &'a str,
    /// Where the key is, for messages about the entry as a whole.
    pub key_at: Position,
    /// The value, with its own position.
    pub value: &'a Spanned<Node>,
}

impl Field<'_> {
    /// Where the value is (for an empty value: just after the key).
    pub fn value_at(&self) -> Position {
        position(self.value)
    }
}

/// What owns the fields being read, for messages: the top level, `event "X"`, `step "y"`, ...
#[derive(Clone, Debug)]
pub struct Owner {
    /// `event "OrderPlaced"`, or empty for the top level.
    label: String,
    /// Where the owner is named (its key), for "missing field" messages.
    pub at: Position,
}

impl Owner {
    /// The top level of the file, whose "missing field" messages point at `at`.
    pub fn top(at: Position) -> Owner {
        Owner {
            label: String::new(),
            at,
        }
    }

    /// A named owner such as `step "payment"`.
    pub fn named(kind: &str, name: &str, at: Position) -> Owner {
        Owner {
            label: format!("{kind} {name:?}"),
            at,
        }
    }

    /// An owner described by a free label, such as `publish of action "retry"`.
    pub fn labelled(label: String, at: Position) -> Owner {
        Owner { label, at }
    }

    /// `field of owner`, or just `field` at the top level.
    pub fn field(&self, field: &str) -> String {
        if self.label.is_empty() {
            field.to_string()
        } else {
            format!("{field} of {}", self.label)
        }
    }

    /// `in owner`, or `at the top level`.
    pub fn within(&self) -> String {
        if self.label.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in {}", self.label)
        }
    }

    /// The owner's label (`step "payment"`), empty at the top level.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl Reader {
    /// A reader for diagnostics about `file`.
    pub fn new(file: PathBuf) -> Reader {
        Reader {
            file,
            diagnostics: Vec::new(),
        }
    }

    /// Records a problem at a position.
    pub fn error(&mut self, at: Position, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            line: at.line,
            column: at.column,
            message: message.into(),
        });
    }

    /// The entries of a mapping node with usable names, first occurrence of each name only
    /// (bad and duplicate keys are reported once for the whole tree, by the caller of
    /// [`super::yaml::key_problems`]). `None` if the node is not a mapping; nothing is reported.
    pub fn entries<'a>(node: &'a Spanned<Node>) -> Option<Vec<Field<'a>>> {
        let Node::Map(pairs) = &node.value else {
            return None;
        };
        let mut fields: Vec<Field<'a>> = Vec::with_capacity(pairs.len());
        let mut seen: HashSet<&str> = HashSet::with_capacity(pairs.len());
        for (key, value) in pairs {
            // Keys that YAML reads as numbers or booleans are reported by `mapping`.
            let Node::Str(name) = &key.value else {
                continue;
            };
            if !seen.insert(name) {
                continue;
            }
            fields.push(Field {
                name,
                key_at: position(key),
                value,
            });
        }
        Some(fields)
    }

    /// The entries of a mapping, reporting `what must be a mapping` when it is not one, and a
    /// key that YAML reads as a number or boolean (`1:`, `true:`) as something to quote.
    pub fn mapping<'a>(
        &mut self,
        node: &'a Spanned<Node>,
        what: &str,
        expected: &str,
    ) -> Option<Vec<Field<'a>>> {
        let Node::Map(pairs) = &node.value else {
            self.error(
                position(node),
                format!("{what} must be {expected}, found {}", node.value.kind()),
            );
            return None;
        };
        for (key, _) in pairs {
            if !matches!(key.value, Node::Str(_)) {
                if let Some(text) = key.value.key_text() {
                    self.error(
                        position(key),
                        format!("key {text} in {what} is read as {}: quote it (\"{text}\") to use it as a name", key.value.kind()),
                    );
                }
            }
        }
        Reader::entries(node)
    }

    /// Reads the fields of an owner's mapping: reports a non-mapping, every unknown field (with
    /// the allowed ones and the closest match) and every missing required field.
    pub fn fields<'a>(
        &mut self,
        node: &'a Spanned<Node>,
        owner: &Owner,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<Vec<Field<'a>>> {
        let what = if owner.label().is_empty() {
            "a flow file".to_string()
        } else {
            owner.label().to_string()
        };
        let expected = format!("a mapping with the fields {}", allowed.join(", "));
        let fields = self.mapping(node, &what, &expected)?;
        for field in &fields {
            if !allowed.contains(&field.name) {
                let mut message = format!(
                    "unknown field {:?} {}: expected one of {}",
                    field.name,
                    owner.within(),
                    allowed.join(", ")
                );
                if let Some(closest) = closest(field.name, allowed.iter().copied()) {
                    message.push_str(&format!(" (did you mean {closest:?}?)"));
                }
                self.error(field.key_at, message);
            }
        }
        for &name in required {
            if !fields.iter().any(|field| field.name == name) {
                self.error(
                    owner.at,
                    format!("missing required field {name:?} {}", owner.within()),
                );
            }
        }
        Some(fields)
    }

    /// A string value; reports any other kind.
    pub fn string<'a>(
        &mut self,
        field: &Field<'a>,
        owner: &Owner,
        expected: &str,
    ) -> Option<&'a str> {
        self.string_as(field, &owner.field(field.name), expected)
    }

    /// A string value, with `subject` naming it in messages (`publish.key of action "retry"`).
    pub fn string_as<'a>(
        &mut self,
        field: &Field<'a>,
        subject: &str,
        expected: &str,
    ) -> Option<&'a str> {
        match &field.value.value {
            Node::Str(text) => Some(text),
            other => {
                let mut message = format!("{subject} must be {expected}, found {}", other.kind());
                if let (true, Some(text)) = (other.is_scalar(), other.key_text()) {
                    message.push_str(&format!(
                        " (write \"{text}\" in quotes if you mean the text)"
                    ));
                }
                self.error(field.value_at(), message);
                None
            }
        }
    }

    /// A non-empty string value.
    pub fn non_empty_string<'a>(
        &mut self,
        field: &Field<'a>,
        owner: &Owner,
        expected: &str,
    ) -> Option<&'a str> {
        self.non_empty_string_as(field, &owner.field(field.name), expected)
    }

    /// A non-empty string value, with `subject` naming it in messages.
    pub fn non_empty_string_as<'a>(
        &mut self,
        field: &Field<'a>,
        subject: &str,
        expected: &str,
    ) -> Option<&'a str> {
        let text = self.string_as(field, subject, expected)?;
        if text.trim().is_empty() {
            self.error(
                field.value_at(),
                format!("{subject} is empty: it must be {expected}"),
            );
            return None;
        }
        Some(text)
    }

    /// A path (`data.id`, `/data/id`, `$key`, ...).
    pub fn path(&mut self, field: &Field<'_>, owner: &Owner) -> Option<Path> {
        let text = self.string(
            field,
            owner,
            "a path such as data.id, /data/id or $header.NAME",
        )?;
        match Path::parse(text) {
            Ok(path) => Some(path),
            Err(problem) => {
                self.error(
                    field.value_at(),
                    format!("{}: {problem}", owner.field(field.name)),
                );
                None
            }
        }
    }

    /// A positive duration such as `15m`. A bare number is read as text so that the message
    /// says it lacks a unit.
    pub fn duration(&mut self, field: &Field<'_>, owner: &Owner) -> Option<Millis> {
        let text = match &field.value.value {
            Node::Str(text) => text.clone(),
            Node::Int(_) | Node::UInt(_) | Node::Float(_) => {
                field.value.value.key_text().unwrap_or_default()
            }
            other => {
                self.error(
                    field.value_at(),
                    format!(
                        "{} must be a duration such as 15m or 1h30m, found {}",
                        owner.field(field.name),
                        other.kind()
                    ),
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(0) => {
                self.error(
                    field.value_at(),
                    format!(
                        "{} is zero: give a positive duration such as 30s or 15m",
                        owner.field(field.name)
                    ),
                );
                None
            }
            Ok(millis) => Some(millis),
            Err(problem) => {
                self.error(
                    field.value_at(),
                    format!("{}: {problem}", owner.field(field.name)),
                );
                None
            }
        }
    }

    /// A name or a list of names (`await: A` or `await: [A, B]`), each with its position.
    /// Reports other kinds, non-string entries and names listed twice.
    pub fn names(
        &mut self,
        field: &Field<'_>,
        owner: &Owner,
        noun: &str,
    ) -> Vec<(String, Position)> {
        let mut names: Vec<(String, Position)> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut add = |reader: &mut Reader, name: &str, at: Position| {
            if seen.insert(name.to_string()) {
                names.push((name.to_string(), at));
            } else {
                reader.error(
                    at,
                    format!(
                        "{} lists {name:?} twice: remove one",
                        owner.field(field.name)
                    ),
                );
            }
        };
        match &field.value.value {
            Node::Str(name) => add(self, name, field.value_at()),
            Node::Seq(items) => {
                for item in items {
                    match &item.value {
                        Node::Str(name) => add(self, name, position(item)),
                        other => self.error(
                            position(item),
                            format!(
                                "{} must list {noun} names, found {}",
                                owner.field(field.name),
                                other.kind()
                            ),
                        ),
                    }
                }
            }
            other => self.error(
                field.value_at(),
                format!(
                    "{} must be {} name or a list of {noun} names, found {}",
                    owner.field(field.name),
                    article(noun),
                    other.kind()
                ),
            ),
        }
        names
    }
}

/// `a` or `an` before a noun, for messages.
fn article(noun: &str) -> String {
    match noun.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {noun}"),
        _ => format!("a {noun}"),
    }
}

/// The names declared in one section (events, steps or actions) in file order, looked up by
/// name without scanning them all. The first declaration of a name wins.
#[derive(Debug, Default)]
pub struct Names<'a> {
    /// The names by index.
    list: Vec<&'a str>,
    /// Index of each name.
    index: HashMap<&'a str, usize>,
}

impl<'a> Names<'a> {
    /// Indexes `list`.
    pub fn new(list: Vec<&'a str>) -> Names<'a> {
        let mut index = HashMap::with_capacity(list.len());
        for (position, name) in list.iter().enumerate() {
            index.entry(*name).or_insert(position);
        }
        Names { list, index }
    }

    /// The index of a name.
    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The names in file order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.list.iter().copied()
    }
}

/// Names longer than this get no "did you mean" suggestion, and at most this many candidates
/// are compared, so that a pathological file cannot make suggestions slow.
const SUGGESTION_LIMIT: usize = 64;
const SUGGESTION_CANDIDATES: usize = 1000;

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    if name.chars().count() > SUGGESTION_LIMIT {
        return None;
    }
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .filter(|candidate| candidate.chars().count() <= SUGGESTION_LIMIT)
        .take(SUGGESTION_CANDIDATES)
        .map(|candidate| {
            (
                edit_distance(&name.to_lowercase(), &candidate.to_lowercase()),
                candidate,
            )
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance over characters where inserting, deleting or replacing a character, or
/// swapping two adjacent ones, costs 1 (optimal string alignment).
fn edit_distance(left: &str, right: &str) -> usize {
    let left: Vec<char> = left.chars().collect();
    let right: Vec<char> = right.chars().collect();
    // distances[i][j]: distance between the first i chars of left and the first j of right.
    let mut distances = vec![vec![0usize; right.len() + 1]; left.len() + 1];
    for (i, row) in distances.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in distances[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=left.len() {
        for j in 1..=right.len() {
            let cost = usize::from(left[i - 1] != right[j - 1]);
            let mut best = (distances[i - 1][j] + 1)
                .min(distances[i][j - 1] + 1)
                .min(distances[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && left[i - 1] == right[j - 2] && left[i - 2] == right[j - 1] {
                best = best.min(distances[i - 2][j - 2] + 1);
            }
            distances[i][j] = best;
        }
    }
    distances[left.len()][right.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_only() {
        let fields = ["after", "await", "within", "when", "on_breach"];
        assert_eq!(closest("withn", fields.into_iter()), Some("within"));
        assert_eq!(closest("Await", fields.into_iter()), Some("await"));
        assert_eq!(closest("deadline", fields.into_iter()), None);
        assert_eq!(
            closest("valeu", ["topic", "key", "value"].into_iter()),
            Some("value")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn owners_render_fields() {
        let top = Owner::top(Position::default());
        assert_eq!(top.field("deadline"), "deadline");
        assert_eq!(top.within(), "at the top level");
        let step = Owner::named("step", "payment", Position::default());
        assert_eq!(step.field("within"), "within of step \"payment\"");
        assert_eq!(step.within(), "in step \"payment\"");
    }
}
