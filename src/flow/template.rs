//! Action templates: any JSON value whose strings may contain `${key}`, `${flow}`, `${step}`,
//! `${attempt}` and `${events.NAME.PATH}`. A string that is exactly one `${...}` keeps the JSON
//! type of what it names (absent: null); inside a longer string a value is spliced as text
//! (absent: empty). `$${` writes a literal `${`. Templates are compiled once at load time.

use super::path::lookup;
use serde_json::Value;

/// A compiled template.
#[derive(Clone, Debug, PartialEq)]
pub enum Template {
    /// A value without any `${...}`: rendered as is.
    Literal(Value),
    /// A string that is exactly one `${...}`: rendered with the JSON type of the value.
    Exact(Var),
    /// A string mixing text and variables: rendered as a string.
    Text(Vec<Part>),
    /// An array of templates.
    Array(Vec<Template>),
    /// An object whose values are templates (keys are literal).
    Object(Vec<(String, Template)>),
}

/// A piece of a [`Template::Text`].
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A variable spliced as text.
    Var(Var),
}

/// A template variable.
#[derive(Clone, Debug, PartialEq)]
pub enum Var {
    /// The business key.
    Key,
    /// The flow name.
    Flow,
    /// The step name (null for instance-level breaches).
    Step,
    /// The action's own run count.
    Attempt,
    /// A value from the instance's latest event of that name (event index, payload path).
    Event(usize, Vec<Box<str>>),
}

/// The values a template is rendered with.
pub struct Context<'a> {
    /// The business key.
    pub key: &'a str,
    /// The flow name.
    pub flow: &'a str,
    /// The step, if the breach is a step's.
    pub step: Option<&'a str>,
    /// The action's run count.
    pub attempt: Option<u32>,
    /// The kept payload of the instance's latest event, by event index.
    pub events: &'a dyn Fn(usize) -> Option<&'a Value>,
}

impl Template {
    /// Compiles a template; `event_index` resolves event names. Returns every problem found.
    pub fn compile(
        value: &Value,
        event_index: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Template, Vec<String>> {
        let mut errors = Vec::new();
        let template = compile_value(value, event_index, &mut errors);
        if errors.is_empty() {
            Ok(template)
        } else {
            Err(errors)
        }
    }

    /// Renders the template to JSON.
    pub fn render(&self, context: &Context<'_>) -> Value {
        match self {
            Template::Literal(value) => value.clone(),
            Template::Exact(var) => var.value(context).unwrap_or(Value::Null),
            Template::Text(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        Part::Text(literal) => text.push_str(literal),
                        Part::Var(var) => match var.value(context) {
                            None | Some(Value::Null) => {}
                            Some(Value::String(value)) => text.push_str(&value),
                            Some(other) => text.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(text)
            }
            Template::Array(items) => {
                Value::Array(items.iter().map(|item| item.render(context)).collect())
            }
            Template::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(name, field)| (name.clone(), field.render(context)))
                    .collect(),
            ),
        }
    }

    /// Renders to a string (topics and keys): strings as they are, other JSON as text.
    pub fn render_text(&self, context: &Context<'_>) -> String {
        match self.render(context) {
            Value::String(text) => text,
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// Calls `visit` with every `${events.NAME.PATH}` (event index, path segments).
    pub fn for_each_event_path(&self, visit: &mut dyn FnMut(usize, &[Box<str>])) {
        let mut visit_var = |var: &Var| {
            if let Var::Event(event, segments) = var {
                visit(*event, segments);
            }
        };
        match self {
            Template::Literal(_) => {}
            Template::Exact(var) => visit_var(var),
            Template::Text(parts) => parts.iter().for_each(|part| {
                if let Part::Var(var) = part {
                    visit_var(var)
                }
            }),
            Template::Array(items) => items
                .iter()
                .for_each(|item| item.for_each_event_path(visit)),
            Template::Object(fields) => fields
                .iter()
                .for_each(|(_, field)| field.for_each_event_path(visit)),
        }
    }
}

impl Var {
    fn value(&self, context: &Context<'_>) -> Option<Value> {
        match self {
            Var::Key => Some(Value::String(context.key.to_string())),
            Var::Flow => Some(Value::String(context.flow.to_string())),
            Var::Step => context.step.map(|step| Value::String(step.to_string())),
            Var::Attempt => context.attempt.map(Value::from),
            Var::Event(event, segments) => lookup((context.events)(*event)?, segments).cloned(),
        }
    }
}

fn compile_value(
    value: &Value,
    event_index: &dyn Fn(&str) -> Option<usize>,
    errors: &mut Vec<String>,
) -> Template {
    match value {
        Value::String(text) => compile_string(text, event_index, errors),
        Value::Array(items) => {
            let compiled: Vec<Template> = items
                .iter()
                .map(|item| compile_value(item, event_index, errors))
                .collect();
            if compiled
                .iter()
                .all(|item| matches!(item, Template::Literal(_)))
            {
                Template::Literal(value.clone())
            } else {
                Template::Array(compiled)
            }
        }
        Value::Object(fields) => {
            let compiled: Vec<(String, Template)> = fields
                .iter()
                .map(|(name, field)| (name.clone(), compile_value(field, event_index, errors)))
                .collect();
            if compiled
                .iter()
                .all(|(_, field)| matches!(field, Template::Literal(_)))
            {
                Template::Literal(value.clone())
            } else {
                Template::Object(compiled)
            }
        }
        other => Template::Literal(other.clone()),
    }
}

fn compile_string(
    text: &str,
    event_index: &dyn Fn(&str) -> Option<usize>,
    errors: &mut Vec<String>,
) -> Template {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(position) = rest.find('$') {
        literal.push_str(&rest[..position]);
        let after = &rest[position..];
        if let Some(escaped) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = escaped;
        } else if let Some(open) = after.strip_prefix("${") {
            let Some(close) = open.find('}') else {
                errors.push(format!(
                    "unclosed \"${{\" in template {text:?}: add the closing \"}}\""
                ));
                return Template::Literal(Value::String(text.to_string()));
            };
            match compile_var(open[..close].trim(), event_index) {
                Ok(var) => {
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(var));
                }
                Err(message) => errors.push(message),
            }
            rest = &open[close + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    match parts.as_slice() {
        [] => Template::Literal(Value::String(String::new())),
        [Part::Text(only)] => Template::Literal(Value::String(only.clone())),
        [Part::Var(only)] => Template::Exact(only.clone()),
        _ => Template::Text(parts),
    }
}

fn compile_var(name: &str, event_index: &dyn Fn(&str) -> Option<usize>) -> Result<Var, String> {
    match name {
        "key" => return Ok(Var::Key),
        "flow" => return Ok(Var::Flow),
        "step" => return Ok(Var::Step),
        "attempt" => return Ok(Var::Attempt),
        _ => {}
    }
    let Some(reference) = name.strip_prefix("events.") else {
        return Err(format!(
            "unknown template variable \"${{{name}}}\": use ${{key}}, ${{flow}}, ${{step}}, ${{attempt}} or ${{events.NAME.PATH}}"
        ));
    };
    let mut segments = reference.split('.');
    let event_name = segments.next().unwrap_or_default();
    let Some(event) = event_index(event_name) else {
        return Err(format!(
            "template \"${{{name}}}\" names unknown event {event_name:?}: declare it under events"
        ));
    };
    let segments: Vec<Box<str>> = segments.map(Into::into).collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(format!(
            "template \"${{{name}}}\" has an empty path segment"
        ));
    }
    Ok(Var::Event(event, segments))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(name: &str) -> Option<usize> {
        (name == "Placed").then_some(0)
    }

    fn render(template: Value) -> Value {
        let payload = json!({"total": 1500, "address": {"street": "Main"}});
        let lookup = |event: usize| (event == 0).then_some(&payload);
        let context = Context {
            key: "o-1",
            flow: "f",
            step: Some("pay"),
            attempt: Some(2),
            events: &lookup,
        };
        Template::compile(&template, &events)
            .unwrap()
            .render(&context)
    }

    #[test]
    fn exact_variables_keep_their_type() {
        assert_eq!(render(json!("${events.Placed.total}")), json!(1500));
        assert_eq!(render(json!("${attempt}")), json!(2));
        assert_eq!(render(json!("${events.Placed.missing}")), json!(null));
        assert_eq!(
            render(json!("${events.Placed.address}")),
            json!({"street": "Main"})
        );
    }

    #[test]
    fn text_splices_and_absent_is_empty() {
        assert_eq!(
            render(json!("order ${key} of ${flow}/${step}")),
            json!("order o-1 of f/pay")
        );
        assert_eq!(
            render(json!(
                "total=${events.Placed.total};x=${events.Placed.nope}"
            )),
            json!("total=1500;x=")
        );
        assert_eq!(render(json!("cost $5 $${key}")), json!("cost $5 ${key}"));
        assert_eq!(
            render(json!({"a": ["${key}", 1], "b": "lit"})),
            json!({"a": ["o-1", 1], "b": "lit"})
        );
    }

    #[test]
    fn compile_errors_are_collected() {
        let errors = Template::compile(
            &json!({"a": "${nope}", "b": "${events.Other.x}", "c": "${key"}),
            &events,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[1].contains("unknown event \"Other\""));
    }
}
