//! Step conditions (`when`): CEL expressions over `key` and `events`, compiled once at load
//! time. JSON numbers become CEL `int` when they are integers and `double` otherwise; CEL
//! compares the two by value, so `events.X.amount > 1000` holds for 1500 and 1500.5 alike.
//! An evaluation builds CEL's values directly from the kept payloads, borrowing their strings,
//! and hands them to CEL through a variable resolver: no `cel::Value` maps, no copies.
//! Comparisons of a field with a number are answered without CEL when the field holds a number
//! of the literal's type (`fast`), with CEL's result; every other case goes through CEL.

mod fast;

use crate::json::Json;
use cel::common::ast::{EntryExpr, Expr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::parser::Expression;
use cel::{Context, Env, Program, Value as CelValue};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The CEL standard environment, built once: building it registers every standard function
/// and costs far more than evaluating a condition.
fn standard_env() -> Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(Env::stdlib())).clone()
}

/// A compiled `when` condition.
pub struct Condition {
    /// The expression as written, for messages.
    pub source: String,
    program: Program,
    /// `(event name, first field)` pairs the expression reads through `events`, or `None` when
    /// it uses `events` in a way that cannot be narrowed to fields.
    event_fields: Option<Vec<(String, Option<String>)>>,
    /// The same expression in the form `fast` evaluates, if it has one.
    fast: Option<fast::Fast>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Condition")
            .field("source", &self.source)
            .finish()
    }
}

impl Condition {
    /// Compiles a CEL expression; the error is the CEL parser's message.
    pub fn compile(source: &str) -> Result<Condition, String> {
        let program = Program::compile(source).map_err(|error| {
            format!(
                "CEL syntax error in {source:?}: {}",
                error.to_string().trim().replace('\n', " ")
            )
        })?;
        let mut uses = Vec::new();
        let event_fields = collect_event_uses(program.expression(), &mut uses).then_some(uses);
        let fast = fast::Fast::recognise(program.expression());
        Ok(Condition {
            source: source.to_string(),
            program,
            event_fields,
            fast,
        })
    }

    /// Event names the expression reads with the first field of each (`None`: the whole event),
    /// or `None` if `events` is used as a whole (then every payload must be kept).
    pub fn event_fields(&self) -> Option<&[(String, Option<String>)]> {
        self.event_fields.as_deref()
    }

    /// How deeply the expression's syntax tree nests (a literal or a name is 1). Evaluation
    /// recurses this deep, so the flow parser bounds it to keep evaluation within any stack.
    pub fn depth(&self) -> usize {
        expression_depth(self.program.expression())
    }

    /// Evaluates the condition over the instance key and the kept payloads by event name.
    /// `Err` carries the reason when the result is not a boolean.
    pub fn evaluate<'a>(
        &self,
        key: &'a str,
        events: impl Iterator<Item = (&'a str, &'a Json<'a>)> + Clone,
    ) -> Result<bool, String> {
        if let Some(result) = self.fast.as_ref().and_then(|fast| fast.evaluate(&events)) {
            return Ok(result);
        }
        self.evaluate_with_cel(key, events)
    }

    /// Evaluates the condition with CEL's interpreter.
    fn evaluate_with_cel<'a>(
        &self,
        key: &'a str,
        events: impl Iterator<Item = (&'a str, &'a Json<'a>)>,
    ) -> Result<bool, String> {
        let events: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = events
            .map(|(name, payload)| (CelMapKey::from(name), to_val(payload)))
            .collect();
        let variables = Variables {
            key: CelString::from(key),
            events: CelMap::from(events),
        };
        let mut context = Context::with_env(standard_env());
        context.set_variable_resolver(&variables);
        match self.program.execute(&context) {
            Ok(CelValue::Bool(result)) => Ok(result),
            Ok(other) => Err(format!(
                "condition {:?} gave {other:?}, not a boolean",
                self.source
            )),
            Err(error) => Err(format!("condition {:?} failed: {error}", self.source)),
        }
    }
}

/// The two variables a condition sees, resolved by name (no per-evaluation variable table).
struct Variables<'a> {
    key: CelString<'a>,
    events: CelMap<'a>,
}

impl VariableResolver for Variables<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "key" => Some(CowVal::Borrowed(&self.key)),
            "events" => Some(CowVal::Borrowed(&self.events)),
            _ => None,
        }
    }
}

/// Converts JSON to a CEL value borrowing its strings: integers to `int` (or `uint` beyond
/// i64), other numbers to `double`; an object's repeated name keeps its last value.
pub fn to_val<'a>(value: &'a Json<'a>) -> Box<dyn Val + 'a> {
    match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(flag) => Box::new(CelBool::from(*flag)),
        Json::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Box::new(CelInt::from(integer))
            } else if let Some(integer) = number.as_u64() {
                Box::new(CelUInt::from(integer))
            } else {
                Box::new(CelDouble::from(number.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(text) => Box::new(CelString::from(&**text)),
        Json::Array(items) => Box::new(CelList::from(items.iter().map(to_val).collect::<Vec<_>>())),
        Json::Object(fields) => {
            // Later fields replace earlier ones of the same name, as in `serde_json::Map`.
            let map: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> = fields
                .iter()
                .map(|(name, field)| (CelMapKey::from(&**name), to_val(field)))
                .collect();
            Box::new(CelMap::from(map))
        }
    }
}

/// Walks the expression and records `events.NAME.FIELD` selections. Returns false when
/// `events` appears anywhere other than as the root of such a selection.
fn collect_event_uses(expression: &Expression, uses: &mut Vec<(String, Option<String>)>) -> bool {
    match &expression.expr {
        Expr::Ident(name) => name != "events",
        Expr::Select(select) => {
            // events.NAME.FIELD
            if let Expr::Select(inner) = &select.operand.expr {
                if matches!(&inner.operand.expr, Expr::Ident(root) if root == "events") {
                    uses.push((inner.field.clone(), Some(select.field.clone())));
                    return true;
                }
            }
            // events.NAME (the whole event, e.g. in has(events.NAME))
            if matches!(&select.operand.expr, Expr::Ident(root) if root == "events") {
                uses.push((select.field.clone(), None));
                return true;
            }
            collect_event_uses(&select.operand, uses)
        }
        Expr::Call(call) => {
            call.target
                .as_deref()
                .is_none_or(|target| collect_event_uses(target, uses))
                && call.args.iter().all(|arg| collect_event_uses(arg, uses))
        }
        Expr::Comprehension(comprehension) => [
            &comprehension.iter_range,
            &comprehension.accu_init,
            &comprehension.loop_cond,
            &comprehension.loop_step,
            &comprehension.result,
        ]
        .into_iter()
        .all(|part| collect_event_uses(part, uses)),
        Expr::List(list) => list
            .elements
            .iter()
            .all(|element| collect_event_uses(element, uses)),
        Expr::Map(map) => map
            .entries
            .iter()
            .all(|entry| entry_uses(&entry.expr, uses)),
        Expr::Struct(structure) => structure
            .entries
            .iter()
            .all(|entry| entry_uses(&entry.expr, uses)),
        Expr::Literal(_) | Expr::Unspecified => true,
    }
}

fn expression_depth(expression: &Expression) -> usize {
    let deepest = |parts: &mut dyn Iterator<Item = &Expression>| {
        parts.map(expression_depth).max().unwrap_or(0)
    };
    let entry_depth = |entry: &EntryExpr| match entry {
        EntryExpr::StructField(field) => expression_depth(&field.value),
        EntryExpr::MapEntry(entry) => {
            expression_depth(&entry.key).max(expression_depth(&entry.value))
        }
    };
    1 + match &expression.expr {
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => 0,
        Expr::Select(select) => expression_depth(&select.operand),
        Expr::Call(call) => deepest(&mut call.target.as_deref().into_iter().chain(&call.args)),
        Expr::Comprehension(comprehension) => deepest(
            &mut [
                &comprehension.iter_range,
                &comprehension.accu_init,
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ]
            .into_iter(),
        ),
        Expr::List(list) => deepest(&mut list.elements.iter()),
        Expr::Map(map) => map
            .entries
            .iter()
            .map(|entry| entry_depth(&entry.expr))
            .max()
            .unwrap_or(0),
        Expr::Struct(structure) => structure
            .entries
            .iter()
            .map(|entry| entry_depth(&entry.expr))
            .max()
            .unwrap_or(0),
    }
}

fn entry_uses(entry: &EntryExpr, uses: &mut Vec<(String, Option<String>)>) -> bool {
    match entry {
        EntryExpr::StructField(field) => collect_event_uses(&field.value, uses),
        EntryExpr::MapEntry(entry) => {
            collect_event_uses(&entry.key, uses) && collect_event_uses(&entry.value, uses)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::objects::{Key, Map};
    use serde_json::{json, Value};

    fn eval(source: &str, payload: Value) -> Result<bool, String> {
        let payload = Json::from(payload);
        Condition::compile(source)
            .unwrap()
            .evaluate("k-1", [("Placed", &payload)].into_iter())
    }

    #[test]
    fn numbers_compare_across_int_and_double() {
        assert_eq!(
            eval("events.Placed.amount > 1000", json!({"amount": 1500})),
            Ok(true)
        );
        assert_eq!(
            eval("events.Placed.amount > 1000", json!({"amount": 1500.5})),
            Ok(true)
        );
        assert_eq!(
            eval("events.Placed.amount > 1000", json!({"amount": 999})),
            Ok(false)
        );
        assert_eq!(
            eval(
                "double(events.Placed.amount) > 1000.0",
                json!({"amount": 1500})
            ),
            Ok(true)
        );
        assert_eq!(eval("key == 'k-1'", json!({})), Ok(true));
    }

    /// The conversion through `cel::Value` maps that evaluation used before (kept as the
    /// reference the direct conversion must agree with).
    fn to_cel_value(value: &Value) -> CelValue {
        match value {
            Value::Null => CelValue::Null,
            Value::Bool(flag) => CelValue::Bool(*flag),
            Value::Number(number) => {
                if let Some(integer) = number.as_i64() {
                    CelValue::Int(integer)
                } else if let Some(integer) = number.as_u64() {
                    CelValue::UInt(integer)
                } else {
                    CelValue::Float(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(text) => CelValue::String(Arc::new(text.clone())),
            Value::Array(items) => {
                CelValue::List(Arc::new(items.iter().map(to_cel_value).collect()))
            }
            Value::Object(fields) => {
                let map: HashMap<Key, CelValue> = fields
                    .iter()
                    .map(|(name, field)| (Key::from(name.clone()), to_cel_value(field)))
                    .collect();
                CelValue::Map(Map { map: Arc::new(map) })
            }
        }
    }

    fn eval_through_values(source: &str, payload: &Value) -> Result<CelValue, String> {
        let program = Program::compile(source).unwrap();
        let mut context = Context::with_env(standard_env());
        context.add_variable_from_value("key", "k-1".to_string());
        let events = HashMap::from([(Key::from("Placed".to_string()), to_cel_value(payload))]);
        context.add_variable_from_value("events", CelValue::Map(Map { map: Arc::new(events) }));
        program.execute(&context).map_err(|error| error.to_string())
    }

    #[test]
    fn agrees_with_evaluation_through_cel_values() {
        let text = r#"{"amount":1500,"big":18446744073709551615,"rate":0.5,"name":"Ann",
            "tags":["a","b"],"nested":{"x":{"y":[1,2.5,null]}},"flag":true,"none":null,
            "name":"Bob"}"#;
        let value: Value = serde_json::from_str(text).unwrap();
        let payload = Json::parse(text).unwrap();
        for source in [
            "events.Placed.amount > 1000",
            "events.Placed.big > 1u",
            "events.Placed.rate * 2.0 == 1.0",
            "events.Placed.name == 'Bob'",
            "size(events.Placed.tags) == 2 && 'b' in events.Placed.tags",
            "events.Placed.nested.x.y[1] == 2.5 && events.Placed.nested.x.y[2] == null",
            "has(events.Placed.flag) && events.Placed.flag && !has(events.Placed.missing)",
            "events.Placed.none == null",
            "events.Placed.tags.map(t, t + key) == ['ak-1', 'bk-1']",
            "events.Placed.nested == {'x': {'y': [1, 2.5, null]}}",
            "size(events) == 1 && 'Placed' in events && key.startsWith('k')",
            "events.Placed.missing > 1",
            "events.Placed.name > 1",
            "events.Other.x == 1",
            "events.Placed.amount",
        ] {
            let reference = match eval_through_values(source, &value) {
                Ok(CelValue::Bool(result)) => Ok(result),
                Ok(other) => Err(format!("condition {source:?} gave {other:?}, not a boolean")),
                Err(error) => Err(format!("condition {source:?} failed: {error}")),
            };
            let direct = Condition::compile(source)
                .unwrap()
                .evaluate("k-1", [("Placed", &payload)].into_iter());
            assert_eq!(direct, reference, "{source}");
        }
    }

    #[test]
    fn errors_and_non_booleans() {
        assert!(eval("events.Placed.missing > 1", json!({})).is_err());
        assert!(eval("events.Placed.amount", json!({"amount": 1})).is_err());
        assert!(Condition::compile("events.Placed.amount >").is_err());
    }

    #[test]
    fn event_uses_are_narrowed() {
        let condition =
            Condition::compile("double(events.A.total) > 1.0 && has(events.B.x) && key != ''")
                .unwrap();
        assert_eq!(
            condition.event_fields().unwrap(),
            &[
                ("A".to_string(), Some("total".to_string())),
                ("B".to_string(), Some("x".to_string()))
            ]
        );
        assert!(Condition::compile("size(events) > 0")
            .unwrap()
            .event_fields()
            .is_none());
    }

    #[test]
    fn depth_counts_nesting() {
        assert_eq!(Condition::compile("true").unwrap().depth(), 1);
        assert_eq!(Condition::compile("events.A.x > 1").unwrap().depth(), 4);
        assert_eq!(Condition::compile("1 + 1 + 1 > 0").unwrap().depth(), 4);
        assert_eq!(Condition::compile("[[1]] == [[1]]").unwrap().depth(), 4);
    }
}
