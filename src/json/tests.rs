//! `Json` against `serde_json::Value`: the same verdict, the same error text, equal values and
//! the same compact text for the same input.

use super::*;
use proptest::prelude::*;

/// Parses with both; panics with the input when they disagree.
fn same_as_value(text: &str) {
    let ours = Json::parse(text);
    let theirs: Result<Value, _> = serde_json::from_str(text);
    match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => {
            assert!(ours == theirs, "{text}: {ours:?} vs {theirs:?}");
            assert_eq!(ours.to_text(), theirs.to_string(), "{text}");
            assert_eq!(ours.to_value(), theirs, "{text}");
            assert_eq!(Json::from(theirs.clone()), ours.clone().into_owned(), "{text}");
            assert_eq!(Json::borrowed(&theirs), ours, "{text}");
        }
        (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string(), "{text}"),
        (ours, theirs) => panic!("{text}: {ours:?} vs {theirs:?}"),
    }
}

#[test]
fn reads_like_value() {
    for text in [
        r#"{"b":1,"a":[true,false,null],"c":{"z":"x","y":-2.5e3}}"#,
        r#"{"a":1,"a":2,"b":3,"a":4}"#,
        r#"{"é":"\u00e9\n","a\"b":"c\\d"}"#,
        r#"[1, 18446744073709551615, -9223372036854775808, 1.0, 0.1, 1e300, -0, -0.0]"#,
        r#"{"$serde_json::private::RawValue":"{\"x\":[1,2]}"}"#,
        r#"{"$serde_json::private::RawValue":7}"#,
        r#"{"$serde_json::private::RawValue":"{not json"}"#,
        r#"{"a":1,"$serde_json::private::RawValue":"2"}"#,
        r#"{"a":1,}"#,
        r#"{1:2}"#,
        r#"[1,2"#,
        r#"1e400"#,
        r#""\ud800""#,
        "{\"a\":1} x",
        "",
        "  null ",
    ] {
        same_as_value(text);
    }
}

#[test]
fn fields_are_sorted_unique_and_found() {
    let json = Json::parse(r#"{"b":1,"a":2,"b":3}"#).unwrap();
    assert_eq!(json.to_text(), r#"{"a":2,"b":3}"#);
    assert_eq!(json.get("b"), Some(&Json::Number(3.into())));
    assert_eq!(json.get("c"), None);
    assert_eq!(Json::parse("[1]").unwrap().get("a"), None);
}

#[test]
fn strings_without_escapes_borrow_from_the_text() {
    let json = Json::parse(r#"{"plain":"text","escaped":"a\tb"}"#).unwrap();
    let Json::Object(fields) = &json else {
        panic!("not an object: {json}");
    };
    assert!(fields.iter().all(|(name, _)| matches!(name, Cow::Borrowed(_))));
    assert!(matches!(json.get("plain"), Some(Json::String(Cow::Borrowed("text")))));
    assert!(matches!(json.get("escaped"), Some(Json::String(Cow::Owned(_)))));
}

proptest! {
    #[test]
    fn random_text_reads_like_value(text in r#"[\[\]{}",:0-9a-c.eE+\- \\nu]{0,40}"#) {
        same_as_value(&text);
    }

    #[test]
    fn mutated_objects_read_like_value(
        cut in 0usize..70,
        insert in r#"[\[\]{}",:0-9a-c\\]{0,6}"#,
    ) {
        let base = r#"{"b":[1,2.5,{"x":null}],"a":"q\"r","b":true,"c":{"d":-3,"a":"s"}}"#;
        let cut = cut.min(base.len());
        let text = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
        same_as_value(&text);
    }
}
