//! Conditions simple enough to evaluate without CEL's interpreter: comparisons of one field of
//! a kept payload with a number (`events.OrderPlaced.total > 1000`, `double(events.X.y) >=
//! 0.5`), joined by `&&`, `||` and `!`. Such a condition is recognised once, at compile time;
//! an evaluation gives an answer only when every field it reads is a number of the literal's
//! own CEL type (after `double()`), where CEL's result is plain arithmetic comparison. Anything
//! else (a missing event or field, a string, an `int` against a `double`, a `uint`) gives no
//! answer and the caller runs CEL, so errors and mixed-type rules stay exactly CEL's.

use crate::json::Json;
use cel::common::ast::{operators, Expr, LiteralValue};
use cel::parser::Expression;

/// A recognised condition.
#[derive(Debug)]
pub(super) enum Fast {
    Compare {
        event: String,
        field: String,
        /// Wrapped in `double(...)`.
        to_double: bool,
        op: Op,
        literal: Number,
        /// Written `LITERAL op FIELD`: the operands are swapped back when comparing.
        swapped: bool,
    },
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Not(Box<Fast>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Op {
    Less,
    LessEquals,
    Greater,
    GreaterEquals,
    Equals,
    NotEquals,
}

/// A number as CEL types it: JSON integers are `int`, other numbers `double`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Number {
    Int(i64),
    Double(f64),
}

impl Fast {
    /// The fast form of an expression, if it has one.
    pub(super) fn recognise(expression: &Expression) -> Option<Fast> {
        let Expr::Call(call) = &expression.expr else {
            return None;
        };
        if call.target.is_some() {
            return None;
        }
        let both = |args: &[Expression]| -> Option<(Box<Fast>, Box<Fast>)> {
            match args {
                [left, right] => Some((
                    Box::new(Fast::recognise(left)?),
                    Box::new(Fast::recognise(right)?),
                )),
                _ => None,
            }
        };
        let op = match call.func_name.as_str() {
            operators::LOGICAL_AND => return both(&call.args).map(|(l, r)| Fast::And(l, r)),
            operators::LOGICAL_OR => return both(&call.args).map(|(l, r)| Fast::Or(l, r)),
            operators::LOGICAL_NOT => {
                return match call.args.as_slice() {
                    [operand] => Some(Fast::Not(Box::new(Fast::recognise(operand)?))),
                    _ => None,
                }
            }
            operators::LESS => Op::Less,
            operators::LESS_EQUALS => Op::LessEquals,
            operators::GREATER => Op::Greater,
            operators::GREATER_EQUALS => Op::GreaterEquals,
            operators::EQUALS => Op::Equals,
            operators::NOT_EQUALS => Op::NotEquals,
            _ => return None,
        };
        let [left, right] = call.args.as_slice() else {
            return None;
        };
        let (operand, literal, swapped) = match (literal(left), literal(right)) {
            (None, Some(literal)) => (left, literal, false),
            (Some(literal), None) => (right, literal, true),
            _ => return None,
        };
        let (event, field, to_double) = field_operand(operand)?;
        Some(Fast::Compare {
            event,
            field,
            to_double,
            op,
            literal,
            swapped,
        })
    }

    /// The condition's value, or `None` when only CEL can say (see the module documentation).
    /// `events` are the kept payloads by event name; a repeated name's last payload counts.
    pub(super) fn evaluate<'a>(
        &self,
        events: &(impl Iterator<Item = (&'a str, &'a Json<'a>)> + Clone),
    ) -> Option<bool> {
        match self {
            Fast::And(left, right) => Some(left.evaluate(events)? && right.evaluate(events)?),
            Fast::Or(left, right) => Some(left.evaluate(events)? || right.evaluate(events)?),
            Fast::Not(operand) => Some(!operand.evaluate(events)?),
            Fast::Compare {
                event,
                field,
                to_double,
                op,
                literal,
                swapped,
            } => {
                let payload = events
                    .clone()
                    .filter(|(name, _)| name == event)
                    .last()?
                    .1;
                let Json::Number(number) = payload.get(field)? else {
                    return None;
                };
                let mut value = match (number.as_i64(), number.as_u64()) {
                    (Some(integer), _) => Number::Int(integer),
                    (None, Some(_)) => return None,
                    (None, None) => Number::Double(number.as_f64()?),
                };
                if *to_double {
                    if let Number::Int(integer) = value {
                        value = Number::Double(integer as f64);
                    }
                }
                let (left, right) = if *swapped {
                    (*literal, value)
                } else {
                    (value, *literal)
                };
                compare(left, *op, right)
            }
        }
    }
}

/// `left op right` for two numbers of the same CEL type; `None` for mixed types or NaN.
fn compare(left: Number, op: Op, right: Number) -> Option<bool> {
    let ordering = match (left, right) {
        (Number::Int(left), Number::Int(right)) => left.cmp(&right),
        (Number::Double(left), Number::Double(right)) => left.partial_cmp(&right)?,
        _ => return None,
    };
    Some(match op {
        Op::Less => ordering.is_lt(),
        Op::LessEquals => ordering.is_le(),
        Op::Greater => ordering.is_gt(),
        Op::GreaterEquals => ordering.is_ge(),
        Op::Equals => ordering.is_eq(),
        Op::NotEquals => ordering.is_ne(),
    })
}

fn literal(expression: &Expression) -> Option<Number> {
    match &expression.expr {
        Expr::Literal(LiteralValue::Int(integer)) => Some(Number::Int(*integer.inner())),
        Expr::Literal(LiteralValue::Double(double)) => Some(Number::Double(*double.inner())),
        _ => None,
    }
}

/// `events.NAME.FIELD` or `double(events.NAME.FIELD)`: (name, field, whether `double`).
fn field_operand(expression: &Expression) -> Option<(String, String, bool)> {
    match &expression.expr {
        Expr::Call(call)
            if call.func_name == "double" && call.target.is_none() && call.args.len() == 1 =>
        {
            let (event, field, _) = field_operand(&call.args[0])?;
            Some((event, field, true))
        }
        Expr::Select(select) if !select.test => {
            let Expr::Select(inner) = &select.operand.expr else {
                return None;
            };
            if inner.test || !matches!(&inner.operand.expr, Expr::Ident(root) if root == "events")
            {
                return None;
            }
            Some((inner.field.clone(), select.field.clone(), false))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Condition;
    use crate::json::Json;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// The fast answer (if any) and CEL's, for one payload of event `A`.
    fn both(source: &str, payload: Option<Value>) -> (Option<bool>, Result<bool, String>) {
        let condition = Condition::compile(source).unwrap();
        let fast = condition.fast.as_ref().unwrap_or_else(|| panic!("{source} is not fast"));
        let payload = payload.map(Json::from);
        let events = payload.iter().map(|payload| ("A", payload));
        (fast.evaluate(&events), condition.evaluate_with_cel("k", events.clone()))
    }

    #[test]
    fn recognises_comparisons_of_a_field_with_a_number() {
        for source in [
            "events.A.x > 1000",
            "double(events.A.x) > 1000.0",
            "1000 <= events.A.x",
            "events.A.x != 5 && !(events.B.y == 2.5) || events.A.x < -3",
            "events.A.x >= -2.5",
        ] {
            assert!(Condition::compile(source).unwrap().fast.is_some(), "{source}");
        }
        for source in [
            "key == 'k'",
            "events.A.x > events.B.y",
            "int(events.A.x) > 1",
            "has(events.A.x)",
            "events.A.x.y > 1",
            "events.A > 1",
            "size(events) > 0",
            "events.A.x + 1 > 2",
            "events.A.x == 'a'",
            "events.A.x > 1u",
            "events.A.x > 1 ? true : false",
        ] {
            assert!(Condition::compile(source).unwrap().fast.is_none(), "{source}");
        }
    }

    #[test]
    fn answers_numbers_of_the_literals_type_and_leaves_the_rest_to_cel() {
        assert_eq!(both("events.A.x > 1000", Some(json!({"x": 1500}))), (Some(true), Ok(true)));
        assert_eq!(
            both("double(events.A.x) > 1000.0", Some(json!({"x": 999}))),
            (Some(false), Ok(false))
        );
        assert_eq!(both("1000 < events.A.x", Some(json!({"x": 1000}))), (Some(false), Ok(false)));
        assert_eq!(
            both("events.A.x <= 1000.0", Some(json!({"x": 1000.0}))),
            (Some(true), Ok(true))
        );
        // CEL compares int with double by value; the fast form leaves that to CEL.
        assert_eq!(both("events.A.x > 1000", Some(json!({"x": 1500.5}))), (None, Ok(true)));
        // Errors stay CEL's.
        let (fast, cel) = both("events.A.x > 1000", Some(json!({"y": 1})));
        assert_eq!(fast, None);
        assert!(cel.is_err());
        let (fast, cel) = both("events.A.x > 1000", None);
        assert_eq!(fast, None);
        assert!(cel.is_err());
        let (fast, cel) = both("events.A.x > 1000", Some(json!({"x": "big"})));
        assert_eq!(fast, None);
        assert!(cel.is_err());
        // `false && error` is false in CEL, and here.
        assert_eq!(
            both("events.A.x > 1000 && events.A.y > 1", Some(json!({"x": 5}))),
            (Some(false), Ok(false))
        );
        assert_eq!(
            both("events.A.y > 1 || events.A.x > 1000", Some(json!({"x": 5000}))),
            (None, Ok(true))
        );
    }

    fn value() -> impl Strategy<Value = Option<Value>> {
        let number = prop_oneof![
            (-2000i64..2000).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-2000.0f64..2000.0).prop_map(Value::from),
            any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::from),
            Just(json!(1000.0)),
            Just(json!(9007199254740993i64)),
            Just(json!("1500")),
            Just(Value::Null),
        ];
        prop_oneof![
            4 => number.prop_map(|x| Some(json!({"x": x}))),
            1 => Just(Some(json!({}))),
            1 => Just(None),
        ]
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            (-2000i64..2000).prop_map(|x| x.to_string()),
            any::<i64>().prop_filter("not MIN", |x| *x != i64::MIN).prop_map(|x| x.to_string()),
            (-2000.0f64..2000.0).prop_map(|x| format!("{x:?}")),
            Just("1000.0".to_string()),
            Just("9007199254740992.0".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whenever the fast form answers, CEL gives the same answer.
        #[test]
        fn agrees_with_cel(
            payload in value(),
            literal in literal(),
            op in prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]),
            to_double in any::<bool>(),
            swapped in any::<bool>(),
            negated in any::<bool>(),
        ) {
            let field = if to_double { "double(events.A.x)" } else { "events.A.x" };
            let comparison = if swapped {
                format!("{literal} {op} {field}")
            } else {
                format!("{field} {op} {literal}")
            };
            let source = if negated { format!("!({comparison})") } else { comparison };
            let (fast, cel) = both(&source, payload);
            if let Some(fast) = fast {
                prop_assert_eq!(Ok(fast), cel, "{}", source);
            }
        }
    }
}
