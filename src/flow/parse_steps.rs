//! Reading the `steps` section of a flow file: each step's `after` steps, the events it
//! `await`s, its SLA (`within`), its condition (`when`) and its `on_breach` actions
//! (SPEC 1.3, 1.5). Names are resolved to indexes here; a step that refers to an unknown name
//! is reported and keeps only the references that resolved.

use super::parse_actions::read_action_refs;
use super::reader::{closest, Field, Owner, Reader};
use super::yaml::{Node, Position};
use super::{ActionRef, Condition, Step};

/// Fields a step may have.
const STEP_FIELDS: [&str; 5] = ["after", "await", "within", "when", "on_breach"];

/// The steps of a flow with the positions later checks point at.
#[derive(Debug, Default)]
pub struct StepsRead {
    /// Steps in file order.
    pub steps: Vec<Step>,
    /// Where each step is named, by step index.
    pub name_at: Vec<Position>,
    /// Where each `after` entry is, parallel to [`Step::after`].
    pub after_at: Vec<Vec<Position>>,
    /// Where each `await` entry is, parallel to [`Step::awaits`].
    pub awaits_at: Vec<Vec<Position>>,
}

/// Reads the `steps` mapping. `events` and `actions` are the declared names, by index.
pub fn read_steps(
    reader: &mut Reader,
    field: &Field<'_>,
    events: &[&str],
    actions: &[&str],
) -> StepsRead {
    let mut read = StepsRead::default();
    let Some(entries) = reader.mapping(field.value, "steps", "a mapping of step names to what they await") else {
        return read;
    };
    if entries.is_empty() {
        reader.error(field.value_at(), "steps is empty: declare at least one step with the event it awaits");
    }
    let step_names: Vec<&str> = entries.iter().map(|entry| entry.name).collect();
    for entry in &entries {
        if entry.name.trim().is_empty() {
            reader.error(entry.key_at, "step name is empty: give the step a name");
        }
        let owner = Owner::named("step", entry.name, entry.key_at);
        let mut step = Step {
            name: entry.name.to_string(),
            after: Vec::new(),
            awaits: Vec::new(),
            within: None,
            on_breach: vec![ActionRef::Alert],
            when: None,
        };
        let mut after_at = Vec::new();
        let mut awaits_at = Vec::new();
        if let Some(fields) = reader.fields(entry.value, &owner, &STEP_FIELDS, &["await"]) {
            for field in &fields {
                match field.name {
                    "after" => {
                        for (name, at) in reader.names(field, &owner, "step") {
                            if name == entry.name {
                                reader.error(
                                    at,
                                    format!("step {:?} lists itself in after: a step cannot wait for itself", entry.name),
                                );
                                continue;
                            }
                            let message = || {
                                format!("step {:?} comes after unknown step {name:?}: declare it under steps", entry.name)
                            };
                            if let Some(before) = resolve(reader, &step_names, &name, at, message) {
                                step.after.push(before);
                                after_at.push(at);
                            }
                        }
                    }
                    "await" => {
                        let names = reader.names(field, &owner, "event");
                        if names.is_empty() && matches!(field.value.value, Node::Seq(_)) {
                            reader.error(
                                field.value_at(),
                                format!("{} is empty: list the event or events that complete the step", owner.field("await")),
                            );
                        }
                        for (name, at) in names {
                            let message = || {
                                format!("step {:?} waits for unknown event {name:?}: declare it under events", entry.name)
                            };
                            if let Some(event) = resolve(reader, events, &name, at, message) {
                                step.awaits.push(event);
                                awaits_at.push(at);
                            }
                        }
                    }
                    "within" => step.within = reader.duration(field, &owner),
                    "when" => {
                        let expected = "a CEL expression such as events.OrderPlaced.total > 1000";
                        let Some(source) = reader.non_empty_string(field, &owner, expected) else { continue };
                        match Condition::compile(source) {
                            Ok(condition) => {
                                let mut read_events: Vec<&str> = Vec::new();
                                for (event_name, _) in condition.event_fields().unwrap_or_default() {
                                    if !read_events.contains(&event_name.as_str()) {
                                        read_events.push(event_name);
                                    }
                                }
                                for event_name in read_events {
                                    if !events.contains(&event_name) {
                                        let mut message = format!(
                                            "{} reads unknown event {event_name:?}: declare it under events",
                                            owner.field("when")
                                        );
                                        if let Some(similar) = closest(event_name, events.iter().copied()) {
                                            message.push_str(&format!(" (did you mean {similar:?}?)"));
                                        }
                                        reader.error(field.value_at(), message);
                                    }
                                }
                                step.when = Some(condition);
                            }
                            Err(problem) => {
                                reader.error(field.value_at(), format!("{}: {}", owner.field("when"), tidy_cel_error(&problem)))
                            }
                        }
                    }
                    "on_breach" => step.on_breach = read_action_refs(reader, field, &owner, actions),
                    _ => {}
                }
            }
            let breach_field = fields.iter().find(|field| field.name == "on_breach");
            if let (Some(on_breach), false) = (breach_field, fields.iter().any(|field| field.name == "within")) {
                reader.error(
                    on_breach.key_at,
                    format!(
                        "step {:?} has on_breach but no within, so it can never breach: add within or remove on_breach",
                        entry.name
                    ),
                );
            }
        }
        read.steps.push(step);
        read.name_at.push(entry.key_at);
        read.after_at.push(after_at);
        read.awaits_at.push(awaits_at);
    }
    read
}

/// Shortens the CEL parser's message: drops its `ERROR: <input>:` prefix (keeping the
/// position in the expression) and the source excerpt it draws after ` | `, which only makes
/// sense on several lines.
fn tidy_cel_error(message: &str) -> String {
    const PREFIX: &str = "ERROR: <input>:";
    let Some(index) = message.find(PREFIX) else { return message.to_string() };
    let (head, tail) = message.split_at(index);
    let tail = &tail[PREFIX.len()..];
    let tail = tail.split(" | ").next().unwrap_or(tail);
    // `1:20: Syntax error: mismatched input ...` becomes `at 1:20 of the expression: ...`.
    match tail.split_once(": ") {
        Some((location, rest)) => {
            let rest = rest.strip_prefix("Syntax error: ").unwrap_or(rest);
            format!("{head}at {location} of the expression: {rest}")
        }
        None => format!("{head}{tail}"),
    }
}

/// Resolves a name among `known`; reports `message()` with the closest known name if it is
/// unknown.
pub fn resolve(
    reader: &mut Reader,
    known: &[&str],
    name: &str,
    at: Position,
    message: impl FnOnce() -> String,
) -> Option<usize> {
    if let Some(index) = known.iter().position(|candidate| *candidate == name) {
        return Some(index);
    }
    let mut text = message();
    if let Some(similar) = closest(name, known.iter().copied()) {
        text.push_str(&format!(" (did you mean {similar:?}?)"));
    }
    reader.error(at, text);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_errors_are_tidied() {
        let error = Condition::compile("events.A.x > 1 &&").unwrap_err();
        let tidy = tidy_cel_error(&error);
        assert!(
            tidy.starts_with("CEL syntax error in \"events.A.x > 1 &&\": at 1:18 of the expression: mismatched input"),
            "{tidy}"
        );
        assert!(!tidy.contains('^'), "{tidy}");
        assert_eq!(tidy_cel_error("something else | x"), "something else | x");
    }
}
