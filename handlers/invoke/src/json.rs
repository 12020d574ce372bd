//! Results as JSON, for tools (`--json`): one JSON value per call, on a line of its own.
//!
//! - bool, integers, finite floats, strings and chars: JSON's own (a char is a one-character
//!   string; integers keep all 64 bits, as serde_json writes them);
//! - nan, inf and -inf, which JSON cannot write: the strings `"nan"`, `"inf"`, `"-inf"`;
//! - list and tuple: arrays; record: an object with the WIT field names;
//! - variant: `{"tag": CASE}`, with `"value"` when the case has a payload; enum: its case as a
//!   string; flags: an array of the set flags' names;
//! - option: `null` for none, the value for some (so `option<option<T>>` cannot tell
//!   `none` from `some(none)`, as in most JSON APIs);
//! - result: `{"ok": VALUE}` or `{"err": VALUE}`, the value `null` without a payload;
//! - map: an array of `[key, value]` pairs;
//! - a handle (resource, future, stream), which has no value to write: `"<resource>"` etc.

use serde_json::{Map, Value, json};
use wasmtime::component::Val;

/// `val` as JSON.
pub(crate) fn to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        Val::Float32(x) => float(f64::from(*x)),
        Val::Float64(x) => float(*x),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Val::Map(entries) => Value::Array(
            entries
                .iter()
                .map(|(k, v)| json!([to_json(k), to_json(v)]))
                .collect(),
        ),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, v)| (name.clone(), to_json(v)))
                .collect::<Map<_, _>>(),
        ),
        Val::Variant(case, payload) => match payload {
            Some(v) => json!({ "tag": case, "value": to_json(v) }),
            None => json!({ "tag": case }),
        },
        Val::Enum(case) => json!(case),
        Val::Flags(set) => json!(set),
        Val::Option(v) => v.as_deref().map_or(Value::Null, to_json),
        Val::Result(Ok(v)) => json!({ "ok": v.as_deref().map_or(Value::Null, to_json) }),
        Val::Result(Err(v)) => json!({ "err": v.as_deref().map_or(Value::Null, to_json) }),
        // Handles cannot be written as values; `--invoke` refuses them before a call (see
        // `passable`), and the REPL shows where one is.
        Val::Resource(_) => json!("<resource>"),
        Val::Future(_) => json!("<future>"),
        Val::Stream(_) => json!("<stream>"),
        Val::ErrorContext(_) => json!("<error-context>"),
    }
}

fn float(x: f64) -> Value {
    if x.is_nan() {
        json!("nan")
    } else if x.is_infinite() {
        json!(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        json!(x)
    }
}

/// The results of one call as one JSON value: `null` for none, the result itself, or an array
/// when a function has several (older component encodings allow it).
pub(crate) fn results_to_json(results: &[Val]) -> Value {
    match results {
        [] => Value::Null,
        [one] => to_json(one),
        many => Value::Array(many.iter().map(to_json).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_to_json() {
        let v = Val::Record(vec![
            ("x".into(), Val::S32(-1)),
            ("label".into(), Val::String("a\"b".into())),
        ]);
        assert_eq!(to_json(&v).to_string(), r#"{"x":-1,"label":"a\"b"}"#);
        assert_eq!(
            to_json(&Val::U64(u64::MAX)).to_string(),
            "18446744073709551615"
        );
        assert_eq!(to_json(&Val::Float32(f32::NEG_INFINITY)), json!("-inf"));
        assert_eq!(to_json(&Val::Float64(f64::NAN)), json!("nan"));
        assert_eq!(
            to_json(&Val::Variant(
                "circle".into(),
                Some(Box::new(Val::Float64(1.5)))
            )),
            json!({"tag": "circle", "value": 1.5})
        );
        assert_eq!(to_json(&Val::Result(Err(None))), json!({"err": null}));
        assert_eq!(to_json(&Val::Option(None)), Value::Null);
    }
}
