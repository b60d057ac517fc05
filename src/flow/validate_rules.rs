//! Checks that span sections of a flow file and run once every name is resolved: each event
//! has at most one role (start, one step's `await`, or `fail`), `after` has no cycles, no two
//! events of the flow claim the same records (SPEC 1.2), and start events carry the key itself.

use super::path::json_equal;
use super::reader::Reader;
use super::yaml::Position;
use super::{FlowDef, Matcher};

/// Where the references that these checks point at are in the file.
#[derive(Debug, Default)]
pub struct Spans {
    /// Where each event is named, by event index.
    pub event_names: Vec<Position>,
    /// Where each `start` entry is, parallel to [`FlowDef::start`].
    pub start: Vec<Position>,
    /// Where each `after` entry is, by step, parallel to [`super::Step::after`].
    pub after: Vec<Vec<Position>>,
    /// Where each `await` entry is, by step, parallel to [`super::Step::awaits`].
    pub awaits: Vec<Vec<Position>>,
    /// Where each `fail` entry is, parallel to [`FlowDef::fail`].
    pub fail: Vec<Position>,
}

/// Runs every cross-section check on a flow whose names are resolved.
pub fn check_flow(reader: &mut Reader, def: &FlowDef, spans: &Spans) {
    check_event_roles(reader, def, spans);
    check_after_cycles(reader, def, spans);
    check_overlapping_events(reader, def, spans);
    check_start_aliases(reader, def, spans);
}

/// An event opens the instance, completes one step, or fails the instance: never two of these.
fn check_event_roles(reader: &mut Reader, def: &FlowDef, spans: &Spans) {
    let event_name = |event: usize| def.events[event].name.as_str();
    let mut starts = vec![false; def.events.len()];
    for &event in &def.start {
        starts[event] = true;
    }
    let mut completes: Vec<Option<usize>> = vec![None; def.events.len()];
    for (step_idx, step) in def.steps.iter().enumerate() {
        for (&event, &at) in step.awaits.iter().zip(&spans.awaits[step_idx]) {
            if starts[event] {
                reader.error(
                    at,
                    format!(
                        "event {:?} opens the instance (start) and also completes step {:?}: an event can have only one role, so use another event for one of them",
                        event_name(event),
                        step.name
                    ),
                );
            } else if let Some(earlier) = completes[event] {
                reader.error(
                    at,
                    format!(
                        "event {:?} completes both step {:?} and step {:?}: an event can complete only one step, so list it in one await or declare a second event",
                        event_name(event),
                        def.steps[earlier].name,
                        step.name
                    ),
                );
            } else {
                completes[event] = Some(step_idx);
            }
        }
    }
    for (&event, &at) in def.fail.iter().zip(&spans.fail) {
        if starts[event] {
            reader.error(
                at,
                format!("event {:?} is in both start and fail: an event cannot both open and fail the instance", event_name(event)),
            );
        } else if let Some(step_idx) = completes[event] {
            reader.error(
                at,
                format!(
                    "event {:?} is in fail but also completes step {:?}: an event cannot both complete a step and fail the instance",
                    event_name(event),
                    def.steps[step_idx].name
                ),
            );
        }
    }
}

/// Steps whose `after` lists form a cycle can never open. Each cycle closed by an `after`
/// entry is reported at that entry, named in opening order (`a -> b -> a`: b opens after a).
fn check_after_cycles(reader: &mut Reader, def: &FlowDef, spans: &Spans) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::Unvisited; def.steps.len()];
    for root in 0..def.steps.len() {
        if marks[root] != Mark::Unvisited {
            continue;
        }
        // Iterative depth-first search along `after` edges: (step, next `after` entry to try).
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some(top) = path.last_mut() {
            let (step_idx, entry) = *top;
            top.1 += 1;
            let Some(&before) = def.steps[step_idx].after.get(entry) else {
                marks[step_idx] = Mark::Done;
                path.pop();
                continue;
            };
            match marks[before] {
                Mark::Unvisited => {
                    marks[before] = Mark::OnPath;
                    path.push((before, 0));
                }
                Mark::OnPath => {
                    // A step marked OnPath is always on the path, so the fallback is never used.
                    let start = path
                        .iter()
                        .position(|&(on_path, _)| on_path == before)
                        .unwrap_or(0);
                    // `path[start..]` follows `after` edges; opening order is the reverse.
                    let mut names: Vec<&str> = vec![def.steps[before].name.as_str()];
                    names.extend(
                        path[start..]
                            .iter()
                            .rev()
                            .map(|&(on_path, _)| def.steps[on_path].name.as_str()),
                    );
                    reader.error(
                        spans.after[step_idx][entry],
                        format!(
                            "cycle in after: {} (each step opens after the one before it), so none of them can ever open: remove one of these after entries",
                            names.join(" -> ")
                        ),
                    );
                }
                Mark::Done => {}
            }
        }
    }
}

/// Within a flow, the first event in file order that a record matches wins. Two events on one
/// topic with equal `match` would claim the same records, and an event whose records all match
/// an earlier, more general event would never be recognised.
fn check_overlapping_events(reader: &mut Reader, def: &FlowDef, spans: &Spans) {
    for (later_idx, later) in def.events.iter().enumerate() {
        for earlier in &def.events[..later_idx] {
            if later.topic.is_empty() || earlier.topic != later.topic {
                continue;
            }
            let earlier_covers_later = covers(&earlier.matchers, &later.matchers);
            if earlier_covers_later && covers(&later.matchers, &earlier.matchers) {
                reader.error(
                    spans.event_names[later_idx],
                    format!(
                        "events {:?} and {:?} read topic {:?} with the same match, so every such record would be both: make their match differ",
                        earlier.name, later.name, later.topic
                    ),
                );
                break;
            }
            if earlier_covers_later {
                reader.error(
                    spans.event_names[later_idx],
                    format!(
                        "event {:?} can never be recognised: every record it matches on topic {:?} also matches the earlier event {:?}, and the first event in file order wins; move {:?} above {:?} or narrow the match of {:?}",
                        later.name, later.topic, earlier.name, later.name, earlier.name, earlier.name
                    ),
                );
                break;
            }
        }
    }
}

/// Whether every record that satisfies `specific` also satisfies `general`: each entry of
/// `general` has an entry on the same path in `specific` that allows no value `general` refuses.
fn covers(general: &[Matcher], specific: &[Matcher]) -> bool {
    general.iter().all(|wide| {
        specific.iter().any(|narrow| {
            narrow.path == wide.path
                && narrow
                    .allowed
                    .iter()
                    .all(|value| wide.allowed.iter().any(|other| json_equal(value, other)))
        })
    })
}

/// An instance is opened by its start event's key; an alias is only known once an instance
/// has linked it, so a start event routed through an alias could never open anything.
fn check_start_aliases(reader: &mut Reader, def: &FlowDef, spans: &Spans) {
    for (&event, &at) in def.start.iter().zip(&spans.start) {
        if let Some(alias) = def.events[event].alias {
            reader.error(
                at,
                format!(
                    "start event {:?} is routed through alias {:?}, which only an open instance can link, so it could never open one: give it the business key and remove alias",
                    def.events[event].name, def.aliases[alias]
                ),
            );
        }
    }
}
