//! Reading the `events` section of a flow file: each event's topic, `match` entries, key, time
//! and id paths, and the aliases that `links` introduce and `alias` uses (SPEC 1.1, 1.2).
//!
//! An event with problems is still returned, with placeholders where its fields were unusable,
//! so that every later reference to it resolves and reports nothing spurious; the problems
//! themselves are in the reader and make the whole file fail.

use super::path::{json_equal, Path};
use super::reader::{closest, Field, Owner, Reader};
use super::yaml::{position, Node, Position};
use super::{EventDef, Link, Matcher};
use serde_json::Value;
use std::collections::hash_map::{Entry, HashMap};

/// Fields an event may have.
const EVENT_FIELDS: [&str; 7] = ["topic", "match", "key", "alias", "links", "time", "id"];

/// The events of a flow with the positions later checks point at.
#[derive(Debug, Default)]
pub struct EventsRead {
    /// Events in file order.
    pub events: Vec<EventDef>,
    /// Where each event is named, by event index.
    pub name_at: Vec<Position>,
    /// Alias names in order of first appearance in `links`.
    pub aliases: Vec<String>,
}

/// Reads the `events` mapping. Reports an empty one: a flow needs at least one event.
pub fn read_events(reader: &mut Reader, field: &Field<'_>) -> EventsRead {
    let mut read = EventsRead::default();
    let Some(entries) = reader.mapping(
        field.value,
        "events",
        "a mapping of event names to topic, match and key",
    ) else {
        return read;
    };
    if entries.is_empty() {
        reader.error(
            field.value_at(),
            "events is empty: declare at least one event with its topic, match and key",
        );
    }
    let mut alias_uses: Vec<(usize, String, Position)> = Vec::new();
    let mut alias_index: HashMap<String, usize> = HashMap::new();
    for entry in &entries {
        check_event_name(reader, entry.name, entry.key_at);
        let owner = Owner::named("event", entry.name, entry.key_at);
        let mut event = EventDef {
            name: entry.name.to_string(),
            topic: String::new(),
            matchers: Vec::new(),
            key: Path::RecordKey,
            alias: None,
            links: Vec::new(),
            time: None,
            id: None,
        };
        if let Some(fields) = reader.fields(entry.value, &owner, &EVENT_FIELDS, &["topic", "key"]) {
            for field in &fields {
                match field.name {
                    "topic" => {
                        event.topic = read_topic(reader, field, &owner)
                            .unwrap_or_default()
                            .to_string()
                    }
                    "match" => event.matchers = read_matchers(reader, field, &owner),
                    "key" => event.key = reader.path(field, &owner).unwrap_or(Path::RecordKey),
                    "alias" => {
                        if let Some(alias) = reader.non_empty_string(
                            field,
                            &owner,
                            "the name of an alias from links",
                        ) {
                            alias_uses.push((
                                read.events.len(),
                                alias.to_string(),
                                field.value_at(),
                            ));
                        }
                    }
                    "links" => {
                        event.links =
                            read_links(reader, field, &owner, &mut read.aliases, &mut alias_index)
                    }
                    "time" => event.time = reader.path(field, &owner),
                    "id" => event.id = reader.path(field, &owner),
                    _ => {}
                }
            }
        }
        read.events.push(event);
        read.name_at.push(entry.key_at);
    }
    for (event_idx, alias, at) in alias_uses {
        match alias_index.get(&alias) {
            Some(&alias_idx) => read.events[event_idx].alias = Some(alias_idx),
            None => {
                let mut message = format!(
                    "event {:?} is routed through alias {alias:?} but no event links it: add links: {{ {alias}: PATH }} to the event that carries it",
                    read.events[event_idx].name
                );
                if let Some(similar) = closest(&alias, read.aliases.iter().map(String::as_str)) {
                    message.push_str(&format!(" (did you mean {similar:?}?)"));
                }
                reader.error(at, message);
            }
        }
    }
    read
}

/// Event names are used as `${events.NAME.PATH}` and `events.NAME` in templates and
/// conditions, so they cannot contain dots or spaces.
fn check_event_name(reader: &mut Reader, name: &str, at: Position) {
    if name.is_empty() {
        reader.error(at, "event name is empty: give the event a name");
    } else if name.contains('.') || name.chars().any(char::is_whitespace) {
        reader.error(
            at,
            format!("event name {name:?} contains a dot or a space, so templates and conditions cannot refer to it: use letters, digits, '_' or '-'"),
        );
    }
}

/// A Kafka topic name, which must be a non-empty string of letters, digits, `.`, `_` and `-`.
fn read_topic<'a>(reader: &mut Reader, field: &Field<'a>, owner: &Owner) -> Option<&'a str> {
    let topic = reader.non_empty_string(field, owner, "a Kafka topic name")?;
    if let Some(problem) = kafka_topic_problem(topic) {
        reader.error(
            field.value_at(),
            format!("{}: {problem}", owner.field("topic")),
        );
        return None;
    }
    Some(topic)
}

/// What is wrong with a Kafka topic name, if anything.
pub fn kafka_topic_problem(topic: &str) -> Option<String> {
    let valid_chars = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_chars || topic.is_empty() || topic == "." || topic == ".." || topic.len() > 249 {
        return Some(format!(
            "{topic:?} is not a valid Kafka topic name: use 1 to 249 letters, digits, '.', '_' or '-'"
        ));
    }
    None
}

/// The `match` mapping: paths to a scalar or a non-empty list of scalars.
fn read_matchers(reader: &mut Reader, field: &Field<'_>, owner: &Owner) -> Vec<Matcher> {
    let what = owner.field("match");
    let expected = "a mapping of paths to expected values, such as { type: OrderPlaced }";
    let Some(entries) = reader.mapping(field.value, &what, expected) else {
        return Vec::new();
    };
    let mut matchers: Vec<Matcher> = Vec::new();
    let mut spellings: HashMap<String, &str> = HashMap::new();
    for entry in &entries {
        let path = match Path::parse(entry.name) {
            Ok(path) => Some(path),
            Err(problem) => {
                reader.error(entry.key_at, format!("{what}: {problem}"));
                None
            }
        };
        let allowed = read_allowed_values(reader, entry, owner);
        let (Some(path), Some(allowed)) = (path, allowed) else {
            continue;
        };
        // Equal paths have equal canonical text, whichever way they are spelled.
        match spellings.entry(path.to_string()) {
            Entry::Occupied(earlier) => reader.error(
                entry.key_at,
                format!(
                    "{what} tests the same field as {:?} under another spelling, {:?}: keep one entry",
                    earlier.get(),
                    entry.name
                ),
            ),
            Entry::Vacant(slot) => {
                slot.insert(entry.name);
                matchers.push(Matcher { path, allowed });
            }
        }
    }
    matchers
}

/// The expected value of one `match` entry: a scalar, or a non-empty list of scalars.
fn read_allowed_values(
    reader: &mut Reader,
    entry: &Field<'_>,
    owner: &Owner,
) -> Option<Vec<Value>> {
    let subject = owner.field(&format!("match value for {:?}", entry.name));
    match &entry.value.value {
        Node::Map(_) => {
            reader.error(
                entry.value_at(),
                format!(
                    "{subject} must be a scalar or a list of scalars, found a mapping: to test a nested field, use a dotted path such as {}.type",
                    entry.name
                ),
            );
            None
        }
        Node::Seq(items) => {
            if items.is_empty() {
                reader.error(
                    entry.value_at(),
                    format!("{subject} is an empty list, which no record can match: list at least one allowed value"),
                );
                return None;
            }
            let mut allowed: Vec<Value> = Vec::with_capacity(items.len());
            let mut all_good = true;
            for item in items {
                match scalar_json(reader, item, &subject) {
                    Some(value) if allowed.iter().any(|known| json_equal(known, &value)) => {
                        reader.error(
                            position(item),
                            format!("{subject} lists {value} twice: remove one"),
                        );
                    }
                    Some(value) => allowed.push(value),
                    None => all_good = false,
                }
            }
            all_good.then_some(allowed)
        }
        _ => scalar_json(reader, entry.value, &subject).map(|value| vec![value]),
    }
}

fn scalar_json(
    reader: &mut Reader,
    node: &serde_saphyr::Spanned<Node>,
    subject: &str,
) -> Option<Value> {
    if !node.value.is_scalar() {
        reader.error(
            position(node),
            format!("{subject} lists {}: allowed values must be scalars (strings, numbers, booleans or null)", node.value.kind()),
        );
        return None;
    }
    match node.value.to_json() {
        Ok(value) => Some(value),
        Err(problem) => {
            reader.error(position(node), format!("{subject}: {problem}"));
            None
        }
    }
}

/// The `links` mapping: alias names to paths. New alias names are added to `aliases` and
/// `alias_index`.
fn read_links(
    reader: &mut Reader,
    field: &Field<'_>,
    owner: &Owner,
    aliases: &mut Vec<String>,
    alias_index: &mut HashMap<String, usize>,
) -> Vec<Link> {
    let what = owner.field("links");
    let Some(entries) = reader.mapping(
        field.value,
        &what,
        "a mapping of alias names to paths, such as { paymentId: payment.id }",
    ) else {
        return Vec::new();
    };
    let mut links = Vec::new();
    for entry in &entries {
        let name_ok = !entry.name.trim().is_empty();
        if !name_ok {
            reader.error(entry.key_at, format!("{what} has an empty alias name: name the alias, as in {{ paymentId: payment.id }}"));
        }
        let link = owner.field(&format!("link {:?}", entry.name));
        let path = match &entry.value.value {
            Node::Str(text) => Path::parse(text)
                .map_err(|problem| reader.error(entry.value_at(), format!("{link}: {problem}")))
                .ok(),
            other => {
                reader.error(
                    entry.value_at(),
                    format!(
                        "{link} must be a path such as payment.id, found {}",
                        other.kind()
                    ),
                );
                None
            }
        };
        let (true, Some(path)) = (name_ok, path) else {
            continue;
        };
        let alias = *alias_index
            .entry(entry.name.to_string())
            .or_insert_with(|| {
                aliases.push(entry.name.to_string());
                aliases.len() - 1
            });
        links.push(Link { alias, path });
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_topic_names() {
        assert_eq!(kafka_topic_problem("customer-events.v1_x"), None);
        assert!(kafka_topic_problem("customer events").is_some());
        assert!(kafka_topic_problem("..").is_some());
        assert!(kafka_topic_problem(&"a".repeat(250)).is_some());
        assert!(kafka_topic_problem("orders/eu").is_some());
    }
}
