//! Reading the `steps` section of a flow file: each step's `after` steps, the events it
//! `await`s, its SLA (`within`), its condition (`when`) and its `on_breach` actions
//! (SPEC 1.3, 1.5). Names are resolved to indexes here; a step that refers to an unknown name
//! is reported and keeps only the references that resolved.

use super::parse_actions::read_action_refs;
use super::reader::{closest, Field, Names, Owner, Reader};
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
    events: &Names<'_>,
    actions: &Names<'_>,
) -> StepsRead {
    let mut read = StepsRead::default();
    let Some(entries) = reader.mapping(
        field.value,
        "steps",
        "a mapping of step names to what they await",
    ) else {
        return read;
    };
    if entries.is_empty() {
        reader.error(
            field.value_at(),
            "steps is empty: declare at least one step with the event it awaits",
        );
    }
    let step_names = Names::new(entries.iter().map(|entry| entry.name).collect());
    let names = SectionNames {
        steps: &step_names,
        events,
        actions,
    };
    for entry in &entries {
        let (step, after_at, awaits_at) = read_step(reader, entry, &names);
        read.steps.push(step);
        read.name_at.push(entry.key_at);
        read.after_at.push(after_at);
        read.awaits_at.push(awaits_at);
    }
    read
}

/// The names a step may refer to.
struct SectionNames<'n, 'a> {
    steps: &'n Names<'a>,
    events: &'n Names<'a>,
    actions: &'n Names<'a>,
}

/// Reads one step, with the positions of its `after` and `await` entries.
fn read_step(
    reader: &mut Reader,
    entry: &Field<'_>,
    names: &SectionNames<'_, '_>,
) -> (Step, Vec<Position>, Vec<Position>) {
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
    let Some(fields) = reader.fields(entry.value, &owner, &STEP_FIELDS, &["await"]) else {
        return (step, after_at, awaits_at);
    };
    for field in &fields {
        match field.name {
            "after" => {
                for (name, at) in reader.names(field, &owner, "step") {
                    if name == entry.name {
                        reader.error(
                            at,
                            format!(
                                "step {:?} lists itself in after: a step cannot wait for itself",
                                entry.name
                            ),
                        );
                        continue;
                    }
                    let message = || {
                        format!(
                            "step {:?} comes after unknown step {name:?}: declare it under steps",
                            entry.name
                        )
                    };
                    if let Some(before) = resolve(reader, names.steps, &name, at, message) {
                        step.after.push(before);
                        after_at.push(at);
                    }
                }
            }
            "await" => {
                let awaited = reader.names(field, &owner, "event");
                if awaited.is_empty() && matches!(field.value.value, Node::Seq(_)) {
                    reader.error(
                        field.value_at(),
                        format!(
                            "{} is empty: list the event or events that complete the step",
                            owner.field("await")
                        ),
                    );
                }
                for (name, at) in awaited {
                    let message = || {
                        format!(
                            "step {:?} waits for unknown event {name:?}: declare it under events",
                            entry.name
                        )
                    };
                    if let Some(event) = resolve(reader, names.events, &name, at, message) {
                        step.awaits.push(event);
                        awaits_at.push(at);
                    }
                }
            }
            "within" => step.within = reader.duration(field, &owner),
            "when" => step.when = read_when(reader, field, &owner, names.events),
            "on_breach" => step.on_breach = read_action_refs(reader, field, &owner, names.actions),
            _ => {}
        }
    }
    let breach_field = fields.iter().find(|field| field.name == "on_breach");
    if let (Some(on_breach), false) = (
        breach_field,
        fields.iter().any(|field| field.name == "within"),
    ) {
        reader.error(
            on_breach.key_at,
            format!(
                "on_breach of step {:?} has no effect without within (a step without an SLA never breaches): add within or remove on_breach",
                entry.name
            ),
        );
    }
    (step, after_at, awaits_at)
}

/// `when`: a CEL expression whose `events.NAME` names are declared events.
fn read_when(
    reader: &mut Reader,
    field: &Field<'_>,
    owner: &Owner,
    events: &Names<'_>,
) -> Option<Condition> {
    let expected = "a CEL expression such as events.OrderPlaced.total > 1000";
    let source = reader.non_empty_string(field, owner, expected)?;
    let condition = match compile_condition(source) {
        Ok(condition) => condition,
        Err(problem) => {
            reader.error(
                field.value_at(),
                format!("{}: {}", owner.field("when"), tidy_cel_error(&problem)),
            );
            return None;
        }
    };
    let mut read_events: Vec<&str> = Vec::new();
    for (event_name, _) in condition.event_fields().unwrap_or_default() {
        if !read_events.contains(&event_name.as_str()) {
            read_events.push(event_name);
        }
    }
    for event_name in read_events {
        if events.get(event_name).is_none() {
            let mut message = format!(
                "{} reads unknown event {event_name:?}: declare it under events",
                owner.field("when")
            );
            if let Some(similar) = closest(event_name, events.iter()) {
                message.push_str(&format!(" (did you mean {similar:?}?)"));
            }
            reader.error(field.value_at(), message);
        }
    }
    Some(condition)
}

/// Longest `when` expression accepted, in characters.
const MAX_CONDITION_CHARS: usize = 4096;
/// Deepest nesting of brackets accepted in `when`, checked before the CEL parser runs: its
/// recursion costs around 150 KiB of stack per level in a debug build.
const MAX_CONDITION_BRACKETS: usize = 32;
/// Deepest syntax tree accepted in `when`: evaluation recurses this deep on whatever thread
/// the engine runs on.
const MAX_CONDITION_DEPTH: usize = 32;
/// Stack of the thread that parses a condition; with the limits above parsing needs less than
/// a tenth of it.
const CONDITION_PARSER_STACK_BYTES: usize = 64 << 20;

/// Compiles a `when` expression within limits that keep parsing and evaluation from
/// overflowing a stack: the CEL parser is recursive, so it runs on a thread with a large stack
/// and only after the text passed the length and bracket checks.
fn compile_condition(source: &str) -> Result<Condition, String> {
    let length = source.chars().count();
    if length > MAX_CONDITION_CHARS {
        return Err(format!(
            "the expression is {length} characters long, more than {MAX_CONDITION_CHARS}: simplify it"
        ));
    }
    let brackets = bracket_nesting(source);
    if brackets > MAX_CONDITION_BRACKETS {
        return Err(format!(
            "the expression nests brackets {brackets} deep, more than {MAX_CONDITION_BRACKETS}: simplify it"
        ));
    }
    let owned = source.to_string();
    let parser = std::thread::Builder::new()
        .name("cel-parser".to_string())
        .stack_size(CONDITION_PARSER_STACK_BYTES)
        .spawn(move || {
            let condition = Condition::compile(&owned)?;
            let depth = condition.depth();
            if depth > MAX_CONDITION_DEPTH {
                // Dropped here, on the large stack, since dropping recurses as deep.
                drop(condition);
                return Err(format!(
                    "the expression nests {depth} levels deep, more than {MAX_CONDITION_DEPTH}: split it, or use `x in [a, b, c]` for long lists of alternatives"
                ));
            }
            Ok(condition)
        })
        .map_err(|error| format!("cannot start the condition parser: {error}"))?;
    parser.join().unwrap_or_else(|_| {
        Err("the CEL parser failed on this expression: simplify it".to_string())
    })
}

/// The deepest nesting of `(`, `[` and `{` outside string literals.
fn bracket_nesting(source: &str) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    deepest
}

/// Shortens the CEL parser's message: drops its `ERROR: <input>:` prefix (keeping the
/// position in the expression) and the source excerpt it draws after ` | `, which only makes
/// sense on several lines.
fn tidy_cel_error(message: &str) -> String {
    const PREFIX: &str = "ERROR: <input>:";
    let Some(index) = message.find(PREFIX) else {
        return message.to_string();
    };
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
    known: &Names<'_>,
    name: &str,
    at: Position,
    message: impl FnOnce() -> String,
) -> Option<usize> {
    if let Some(index) = known.get(name) {
        return Some(index);
    }
    let mut text = message();
    if let Some(similar) = closest(name, known.iter()) {
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

    #[test]
    fn deep_conditions_are_refused_without_overflowing_the_stack() {
        // Twenty nested brackets overflow a 2 MiB test thread inside the CEL parser if it
        // runs on that thread.
        let nested = |depth: usize| format!("{}1{} == 1", "int(".repeat(depth), ")".repeat(depth));
        assert!(compile_condition(&nested(25)).is_ok());
        let too_deep = compile_condition(&nested(33)).unwrap_err();
        assert!(
            too_deep.starts_with("the expression nests brackets 33 deep, more than 32"),
            "{too_deep}"
        );
        let chain = vec!["1"; 40].join(" + ") + " > 0";
        let too_deep = compile_condition(&chain).unwrap_err();
        assert!(
            too_deep.starts_with("the expression nests 41 levels deep, more than 32"),
            "{too_deep}"
        );
        let long = vec!["true"; 1000].join(" || ");
        assert!(compile_condition(&long)
            .unwrap_err()
            .starts_with("the expression is 7996 characters long"));
        assert!(compile_condition("events.A.x > 1 &&")
            .unwrap_err()
            .starts_with("CEL syntax error"));
    }

    #[test]
    fn bracket_nesting_skips_string_literals() {
        assert_eq!(bracket_nesting("f(g([1, {2: 3}]))"), 4);
        assert_eq!(bracket_nesting("x == '((((' && y == \"[[\\\"[\""), 0);
        assert_eq!(bracket_nesting(")))("), 1);
    }
}
