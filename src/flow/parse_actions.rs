//! Reading the `actions` section of a flow file and the action lists that refer to it
//! (`on_breach`, `on_deadline`, `on_stuck`, `then`): each action's `publish` record with its
//! templates, its `attempts` and what runs once they are spent (SPEC 1.6).

use super::parse_events::kafka_topic_problem;
use super::reader::{closest, Field, Names, Owner, Reader};
use super::yaml::{position, Node, Position};
use super::{Action, ActionRef, Publish, Template};
use serde_json::Value;
use serde_saphyr::Spanned;

/// Fields an action may have.
const ACTION_FIELDS: [&str; 3] = ["publish", "attempts", "then"];
/// Fields of an action's `publish`.
const PUBLISH_FIELDS: [&str; 3] = ["topic", "key", "value"];
/// The built-in action, which a declared action may not shadow.
const ALERT: &str = "alert";

/// The names of the declared actions with where each is declared, in file order. Reports the
/// reserved name `alert`. Read before anything refers to actions.
pub fn read_action_names<'a>(reader: &mut Reader, field: &Field<'a>) -> Vec<Field<'a>> {
    let Some(entries) = reader.mapping(
        field.value,
        "actions",
        "a mapping of action names to their publish records",
    ) else {
        return Vec::new();
    };
    for entry in &entries {
        if entry.name == ALERT {
            reader.error(
                entry.key_at,
                "action name \"alert\" is reserved for the built-in alert: give the declared action another name",
            );
        } else if entry.name.trim().is_empty() {
            reader.error(entry.key_at, "action name is empty: give the action a name");
        }
    }
    entries
}

/// A list of actions (`[alert, retry-payment]`): `alert` is the built-in, other names must be
/// declared under `actions`. A single name is read as a list of one.
pub fn read_action_refs(
    reader: &mut Reader,
    field: &Field<'_>,
    owner: &Owner,
    actions: &Names<'_>,
) -> Vec<ActionRef> {
    let mut refs = Vec::new();
    for (name, at) in reader.names(field, owner, "action") {
        if name == ALERT {
            refs.push(ActionRef::Alert);
        } else if let Some(action_idx) = actions.get(&name) {
            refs.push(ActionRef::Declared(action_idx));
        } else {
            let mut message = format!(
                "{} names unknown action {name:?}: declare it under actions, or use the built-in alert",
                owner.field(field.name)
            );
            if let Some(similar) = closest(&name, actions.iter().chain([ALERT])) {
                message.push_str(&format!(" (did you mean {similar:?}?)"));
            }
            reader.error(at, message);
        }
    }
    refs
}

/// Reads every declared action. `entries` are the ones [`read_action_names`] returned, so
/// action indexes are their positions in it.
pub fn read_actions(
    reader: &mut Reader,
    entries: &[Field<'_>],
    event_index: &dyn Fn(&str) -> Option<usize>,
) -> Vec<Action> {
    let action_names = Names::new(entries.iter().map(|entry| entry.name).collect());
    let mut actions = Vec::with_capacity(entries.len());
    for (action_idx, entry) in entries.iter().enumerate() {
        let owner = Owner::named("action", entry.name, entry.key_at);
        let mut action = Action {
            name: entry.name.to_string(),
            publish: Publish {
                topic: Template::Literal(Value::Null),
                key: None,
                value: Template::Literal(Value::Null),
            },
            attempts: None,
            then: vec![ActionRef::Alert],
        };
        let Some(fields) = reader.fields(entry.value, &owner, &ACTION_FIELDS, &["publish"]) else {
            actions.push(action);
            continue;
        };
        let mut then_at: Option<Position> = None;
        for field in &fields {
            match field.name {
                "publish" => {
                    if let Some(publish) = read_publish(reader, field, &owner, event_index) {
                        action.publish = publish;
                    }
                }
                "attempts" => action.attempts = read_attempts(reader, field, &owner),
                "then" => {
                    then_at = Some(field.key_at);
                    action.then = read_action_refs(reader, field, &owner, &action_names);
                    if action.then.contains(&ActionRef::Declared(action_idx)) {
                        reader.error(
                            field.value_at(),
                            format!("{} names the action itself: then runs once its attempts are spent, so name another action or alert", owner.field("then")),
                        );
                    }
                }
                _ => {}
            }
        }
        let has_attempts = fields.iter().any(|field| field.name == "attempts");
        if let (Some(at), false) = (then_at, has_attempts) {
            reader.error(
                at,
                format!(
                    "then of action {:?} has no effect without attempts (it runs once the attempts are spent): add attempts to make the action a retry, or remove then",
                    entry.name
                ),
            );
        }
        actions.push(action);
    }
    actions
}

/// `attempts`: a whole number from 1 up.
fn read_attempts(reader: &mut Reader, field: &Field<'_>, owner: &Owner) -> Option<u32> {
    let subject = owner.field("attempts");
    match &field.value.value {
        Node::Int(0) => {
            reader.error(
                field.value_at(),
                format!("{subject} is 0, so the action would never run: use 1 or more, or remove attempts for an action that runs on every breach"),
            );
            None
        }
        Node::Int(count) if *count > 0 => match u32::try_from(*count) {
            Ok(count) => Some(count),
            Err(_) => {
                reader.error(
                    field.value_at(),
                    format!("{subject} is too large: use at most {}", u32::MAX),
                );
                None
            }
        },
        Node::UInt(_) => {
            reader.error(
                field.value_at(),
                format!("{subject} is too large: use at most {}", u32::MAX),
            );
            None
        }
        Node::Int(count) => {
            reader.error(
                field.value_at(),
                format!("{subject} must be a positive whole number, found {count}"),
            );
            None
        }
        other => {
            reader.error(
                field.value_at(),
                format!(
                    "{subject} must be a positive whole number, found {}",
                    other.kind()
                ),
            );
            None
        }
    }
}

/// `publish`: the topic (required), key and value templates of the record an action sends.
fn read_publish(
    reader: &mut Reader,
    field: &Field<'_>,
    action: &Owner,
    event_index: &dyn Fn(&str) -> Option<usize>,
) -> Option<Publish> {
    let owner = Owner::labelled(format!("publish of {}", action.label()), field.key_at);
    let fields = reader.fields(field.value, &owner, &PUBLISH_FIELDS, &["topic"])?;
    let mut topic = None;
    let mut key = None;
    let mut value = Some(Template::Literal(Value::Null));
    for field in &fields {
        let subject = action.field(&format!("publish.{}", field.name));
        match field.name {
            "topic" => {
                if reader
                    .non_empty_string_as(field, &subject, "a Kafka topic name or a template")
                    .is_none()
                {
                    continue;
                }
                topic = compile_templates(reader, field.value, &subject, event_index);
                if let Some(Template::Literal(Value::String(literal))) = &topic {
                    if let Some(problem) = kafka_topic_problem(literal) {
                        reader.error(field.value_at(), format!("{subject}: {problem}"));
                    }
                }
            }
            "key"
                if reader
                    .string_as(field, &subject, "a string template such as \"${key}\"")
                    .is_some() =>
            {
                key = compile_templates(reader, field.value, &subject, event_index);
            }
            "value" => value = compile_templates(reader, field.value, &subject, event_index),
            _ => {}
        }
    }
    Some(Publish {
        topic: topic?,
        key,
        value: value?,
    })
}

/// Compiles a template, reporting each problem at the string it is in.
fn compile_templates(
    reader: &mut Reader,
    node: &Spanned<Node>,
    subject: &str,
    event_index: &dyn Fn(&str) -> Option<usize>,
) -> Option<Template> {
    let mut clean = true;
    report_template_strings(reader, node, subject, event_index, &mut clean);
    let json = node.value.to_json().ok()?;
    // Every problem was reported string by string above; compiling the whole value again
    // only yields the same messages.
    clean
        .then(|| Template::compile(&json, event_index).ok())
        .flatten()
}

fn report_template_strings(
    reader: &mut Reader,
    node: &Spanned<Node>,
    subject: &str,
    event_index: &dyn Fn(&str) -> Option<usize>,
    clean: &mut bool,
) {
    match &node.value {
        Node::Str(text) => {
            if let Err(problems) = Template::compile(&Value::String(text.clone()), event_index) {
                *clean = false;
                for problem in problems {
                    reader.error(position(node), format!("{subject}: {problem}"));
                }
            }
        }
        Node::Seq(items) => items
            .iter()
            .for_each(|item| report_template_strings(reader, item, subject, event_index, clean)),
        Node::Map(entries) => entries.iter().for_each(|(_, value)| {
            report_template_strings(reader, value, subject, event_index, clean)
        }),
        _ => {}
    }
}
