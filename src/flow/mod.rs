//! The compiled form of a flow file: events with their matchers and key paths, steps with their
//! SLAs, actions with their templates, all cross-referenced by index. The parser
//! ([`parse`]) turns YAML into a [`FlowDef`] after validating every rule of SPEC 1.7, and
//! [`Flow::new`] derives what the engine needs per record (each event's role, which parts of
//! payloads must be kept for conditions and templates).

pub mod condition;
pub mod parse;
mod parse_actions;
mod parse_events;
mod parse_steps;
pub mod path;
mod reader;
pub mod template;
mod validate_rules;
mod yaml;

pub use condition::Condition;
pub use parse::{load_dir_or_files, parse_flow_file, Diagnostic, LoadReport};
pub use path::Path;
pub use template::Template;

use crate::time::Millis;
use crate::json::Json;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// Everything a flow file declares, validated and cross-referenced by index.
#[derive(Debug)]
pub struct FlowDef {
    /// Unique flow name, `[a-z0-9][a-z0-9._-]*`.
    pub name: String,
    /// Free text shown in the UI and `validate`.
    pub description: Option<String>,
    /// The file the flow came from, for messages.
    pub file: PathBuf,
    /// Events in file order (the order decides which name wins when two match).
    pub events: Vec<EventDef>,
    /// Events that open an instance.
    pub start: Vec<usize>,
    /// Steps in file order (the display order).
    pub steps: Vec<Step>,
    /// Events that end the instance as failed.
    pub fail: Vec<usize>,
    /// Whole-instance deadline after the start time.
    pub deadline: Option<Millis>,
    /// Actions run when the deadline is breached (default `[alert]`).
    pub on_deadline: Vec<ActionRef>,
    /// Silence after which an open instance is stuck.
    pub stuck_after: Option<Millis>,
    /// Actions run when the instance is stuck (default `[alert]`).
    pub on_stuck: Vec<ActionRef>,
    /// Declared actions in file order.
    pub actions: Vec<Action>,
    /// Alias names introduced by `links`, indexed by [`EventDef::alias`] and [`Link::alias`].
    pub aliases: Vec<String>,
}

/// One named event: which records it is and where its key, time and id are.
#[derive(Debug)]
pub struct EventDef {
    /// The name used in `start`, `await`, `fail` and templates.
    pub name: String,
    /// Kafka topic the event is read from.
    pub topic: String,
    /// Conditions that must all hold for a record to be this event.
    pub matchers: Vec<Matcher>,
    /// Where the business key (or the alias value, with `alias`) is.
    pub key: Path,
    /// Route through this alias instead of the primary key.
    pub alias: Option<usize>,
    /// Aliases this event registers for its instance.
    pub links: Vec<Link>,
    /// Event time; `None` means the record timestamp.
    pub time: Option<Path>,
    /// Event id for de-duplication; `None` means the CloudEvents default.
    pub id: Option<Path>,
}

/// One `match` entry: the value at `path` must equal one of `allowed`.
#[derive(Debug)]
pub struct Matcher {
    /// Where to look.
    pub path: Path,
    /// Allowed scalars (a single scalar in the file is a list of one).
    pub allowed: Vec<Value>,
}

/// One `links` entry: the value at `path` identifies the instance under alias `alias`.
#[derive(Debug)]
pub struct Link {
    /// Index into [`FlowDef::aliases`].
    pub alias: usize,
    /// Where the alias value is.
    pub path: Path,
}

/// A milestone of the process.
#[derive(Debug)]
pub struct Step {
    /// Step name, unique in the flow.
    pub name: String,
    /// Steps that must be complete before this one opens (AND-join); empty: opens at start.
    pub after: Vec<usize>,
    /// Events any one of which completes the step.
    pub awaits: Vec<usize>,
    /// SLA: the step must complete within this long after it opens.
    pub within: Option<Millis>,
    /// Actions run on a breach (default `[alert]`).
    pub on_breach: Vec<ActionRef>,
    /// Condition evaluated when the step would open; false skips it.
    pub when: Option<Condition>,
}

/// A reference to an action from `on_breach`, `on_deadline`, `on_stuck` or `then`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionRef {
    /// The built-in `alert`: the breach goes to the alerts topic.
    Alert,
    /// A declared action, by index into [`FlowDef::actions`].
    Declared(usize),
}

/// A declared action.
#[derive(Debug)]
pub struct Action {
    /// Action name, unique in the flow.
    pub name: String,
    /// The record it publishes.
    pub publish: Publish,
    /// With attempts, a retry: runs on at most this many breaches of one step of one instance.
    pub attempts: Option<u32>,
    /// What runs once the attempts are spent (default `[alert]`).
    pub then: Vec<ActionRef>,
}

/// The record an action publishes.
#[derive(Debug)]
pub struct Publish {
    /// Destination topic (a template).
    pub topic: Template,
    /// Record key (a template); `None` publishes without a key.
    pub key: Option<Template>,
    /// Record value (any JSON; strings are templates).
    pub value: Template,
}

/// What an event does to an instance, derived once per flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventRole {
    /// Opens an instance.
    Start,
    /// Completes this step.
    Await(usize),
    /// Ends the instance as failed.
    Fail,
    /// Only recorded (re-arms stuck detection, may carry links).
    Other,
}

/// Which part of an event's payload an instance keeps for conditions and templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Nothing refers to this event's payload.
    Nothing,
    /// Only these top-level fields are referred to.
    Fields(BTreeSet<Box<str>>),
    /// The whole payload is needed (a condition uses it in a way that cannot be narrowed).
    Whole,
}

/// A flow ready for the engine: the definition plus derived lookups.
#[derive(Debug)]
pub struct Flow {
    /// The validated definition.
    pub def: FlowDef,
    /// Role of each event, by event index.
    pub roles: Vec<EventRole>,
    /// Payload projection of each event, by event index.
    pub keep: Vec<Keep>,
    /// Steps that open at start (no `after`), in file order.
    pub initial_steps: Vec<usize>,
    /// For each step, the steps that list it in `after`.
    pub dependents: Vec<Vec<usize>>,
}

impl Flow {
    /// Derives the engine's lookups from a validated definition.
    pub fn new(def: FlowDef) -> Flow {
        let mut roles = vec![EventRole::Other; def.events.len()];
        for &event in &def.fail {
            roles[event] = EventRole::Fail;
        }
        for (step_idx, step) in def.steps.iter().enumerate() {
            for &event in &step.awaits {
                roles[event] = EventRole::Await(step_idx);
            }
        }
        for &event in &def.start {
            roles[event] = EventRole::Start;
        }
        let mut keep = vec![Keep::Nothing; def.events.len()];
        let mut want = |event: usize, field: Option<&str>| {
            let slot = &mut keep[event];
            match (field, &mut *slot) {
                (_, Keep::Whole) => {}
                (None, _) => *slot = Keep::Whole,
                (Some(field), Keep::Fields(fields)) => {
                    fields.insert(field.into());
                }
                (Some(field), Keep::Nothing) => {
                    *slot = Keep::Fields(BTreeSet::from([field.into()]))
                }
            }
        };
        for step in &def.steps {
            if let Some(condition) = &step.when {
                match condition.event_fields() {
                    Some(uses) => {
                        for (name, field) in uses {
                            if let Some(event) = def.events.iter().position(|e| e.name == *name) {
                                want(event, field.as_deref());
                            }
                        }
                    }
                    None => (0..def.events.len()).for_each(|event| want(event, None)),
                }
            }
        }
        for action in &def.actions {
            let publish = &action.publish;
            let templates = [
                Some(&publish.topic),
                publish.key.as_ref(),
                Some(&publish.value),
            ];
            for template in templates.into_iter().flatten() {
                template.for_each_event_path(&mut |event, segments| {
                    want(event, segments.first().map(|s| &**s))
                });
            }
        }
        let initial_steps = (0..def.steps.len())
            .filter(|&s| def.steps[s].after.is_empty())
            .collect();
        let mut dependents = vec![Vec::new(); def.steps.len()];
        for (step_idx, step) in def.steps.iter().enumerate() {
            for &before in &step.after {
                dependents[before].push(step_idx);
            }
        }
        Flow {
            def,
            roles,
            keep,
            initial_steps,
            dependents,
        }
    }

    /// The flow's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Topics this flow reads, sorted and de-duplicated.
    pub fn topics(&self) -> BTreeSet<&str> {
        self.def
            .events
            .iter()
            .map(|event| event.topic.as_str())
            .collect()
    }
}

impl Keep {
    /// Projects a payload to what must be kept, as compact JSON text; `None` when nothing is.
    pub fn project(&self, payload: &Json<'_>) -> Option<Box<str>> {
        match self {
            Keep::Nothing => None,
            Keep::Whole => Some(payload.to_text().into_boxed_str()),
            Keep::Fields(fields) => {
                if !payload.is_object() {
                    return Some(payload.to_text().into_boxed_str());
                }
                // Written into one buffer: a str serialises exactly as `Value::String` does.
                let mut text = Vec::with_capacity(64);
                text.push(b'{');
                for field in fields {
                    if let Some(value) = payload.get(field) {
                        if text.len() > 1 {
                            text.push(b',');
                        }
                        // Writing JSON into a Vec cannot fail.
                        let _ = serde_json::to_writer(&mut text, &**field);
                        text.push(b':');
                        let _ = serde_json::to_writer(&mut text, value);
                    }
                }
                text.push(b'}');
                // serde_json writes UTF-8.
                Some(String::from_utf8(text).unwrap_or_default().into_boxed_str())
            }
        }
    }
}
