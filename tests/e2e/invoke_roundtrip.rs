//! Property test: random `list<shape>` values (records, variants, strings with escapes, floats)
//! rendered in WAVE go through the calc guest's identity export and come back printed exactly
//! as they went in. Each case is one process with many `--invoke` calls.

use crate::worldhost;
use proptest::prelude::*;
use worldhost_test_artifacts as guest;

#[derive(Debug, Clone)]
enum Shape {
    Circle(f64),
    Rect { x: i32, y: i32, label: String },
    Empty,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        // Quarters print exactly in both Rust and WAVE.
        any::<i32>().prop_map(|q| Shape::Circle(f64::from(q) / 4.0)),
        (any::<i32>(), any::<i32>(), label()).prop_map(|(x, y, label)| Shape::Rect { x, y, label }),
        Just(Shape::Empty),
    ]
}

fn label() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::char::range('a', 'z'),
            Just(' '),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('\t'),
            Just('é'),
            Just('😀'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn wave_string(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn wave(shapes: &[Shape]) -> String {
    let items: Vec<String> = shapes
        .iter()
        .map(|s| match s {
            Shape::Circle(r) => format!("circle({r})"),
            Shape::Rect { x, y, label } => {
                format!("rect({{x: {x}, y: {y}, label: {}}})", wave_string(label))
            }
            Shape::Empty => "empty".into(),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn values_come_back_equal(
        batch in proptest::collection::vec(proptest::collection::vec(shape(), 0..5), 1..16)
    ) {
        let mut args = vec!["run".to_string()];
        let mut expected = String::new();
        for shapes in &batch {
            let value = wave(shapes);
            args.push("--invoke".into());
            args.push(format!("echo-shapes({value})"));
            expected.push_str(&value);
            expected.push('\n');
        }
        args.push(guest::INVOKE_CALC.into());
        let out = worldhost().args(&args).run();
        out.success();
        prop_assert_eq!(&out.stdout, &expected);
    }
}
