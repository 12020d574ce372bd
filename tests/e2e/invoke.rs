//! The invoke handler: every WIT value kind in and out, name lookup, several calls on one
//! instance, and each error. Printed results are those `wasmtime run --invoke` 48.0.8 prints.

use crate::worldhost;
use worldhost_test_artifacts as guest;

/// Runs one `--invoke` per call on the calc guest and checks the output, a line per call.
#[track_caller]
fn calls(pairs: &[(&str, &str)]) {
    calls_with(&[], pairs);
}

/// The same, with `flags` before the calls.
#[track_caller]
fn calls_with(flags: &[&str], pairs: &[(&str, &str)]) {
    let mut args = vec!["run"];
    args.extend(flags);
    for (call, _) in pairs {
        args.extend(["--invoke", call]);
    }
    args.push(guest::INVOKE_CALC);
    let expected: String = pairs.iter().map(|(_, out)| format!("{out}\n")).collect();
    worldhost().args(args).run().success().stdout(&expected);
}

#[test]
pub(crate) fn invoke_calc() {
    worldhost()
        .args(["run", "--invoke", "add(1, 2)", guest::INVOKE_CALC])
        .run()
        .success()
        .stdout("3\n");
}

#[test]
fn integers_at_their_bounds() {
    calls(&[
        ("echo-s8(-128)", "-128"),
        ("echo-s8(127)", "127"),
        ("echo-u8(0)", "0"),
        ("echo-u8(255)", "255"),
        ("echo-s16(-32768)", "-32768"),
        ("echo-u16(65535)", "65535"),
        ("echo-s32(-2147483648)", "-2147483648"),
        ("echo-u32(4294967295)", "4294967295"),
        ("echo-s64(-9223372036854775808)", "-9223372036854775808"),
        ("echo-u64(18446744073709551615)", "18446744073709551615"),
    ]);
}

#[test]
fn floats_with_nan_and_infinities() {
    calls(&[
        ("echo-f32(nan)", "nan"),
        ("echo-f32(inf)", "inf"),
        ("echo-f32(-inf)", "-inf"),
        ("echo-f32(0.1)", "0.1"),
        ("echo-f64(-0.25)", "-0.25"),
        ("echo-f64(2.0)", "2"),
        ("echo-f64(nan)", "nan"),
        ("echo-f64(-inf)", "-inf"),
    ]);
}

#[test]
fn bools_chars_and_strings() {
    calls(&[
        ("echo-bool(true)", "true"),
        ("echo-bool(false)", "false"),
        ("echo-char('☃')", "'☃'"),
        ("echo-char('\\n')", "'\\n'"),
        (r#"echo-string("hé😀\n\"q\"\t")"#, r#""hé😀\n\"q\"\t""#),
        (r#"echo-string("")"#, r#""""#),
    ]);
}

#[test]
fn lists_tuples_and_records() {
    calls(&[
        ("echo-bytes([0, 255])", "[0, 255]"),
        ("echo-bytes([])", "[]"),
        (
            r#"echo-nested([["a"], [], ["b", "c"]])"#,
            r#"[["a"], [], ["b", "c"]]"#,
        ),
        (r#"echo-tuple((1, "x", true))"#, r#"(1, "x", true)"#),
        (
            r#"echo-point({x: 1, y: -2, label: "p"})"#,
            r#"{x: 1, y: -2, label: "p"}"#,
        ),
    ]);
}

#[test]
fn variants_enums_and_flags() {
    calls(&[
        ("echo-shape(circle(1.5))", "circle(1.5)"),
        (
            r#"echo-shape(rect({x: 0, y: 0, label: ""}))"#,
            r#"rect({x: 0, y: 0, label: ""})"#,
        ),
        ("echo-shape(empty)", "empty"),
        ("echo-color(green)", "green"),
        ("echo-perms({read, exec})", "{read, exec}"),
        ("echo-perms({})", "{}"),
    ]);
}

#[test]
fn options_and_results() {
    calls(&[
        ("echo-option(some(5))", "some(5)"),
        ("echo-option(none)", "none"),
        (r#"echo-result(ok("fine"))"#, r#"ok("fine")"#),
        ("echo-result(err(3))", "err(3)"),
        ("echo-unit-result(ok)", "ok"),
        ("echo-unit-result(err)", "err"),
        // Trailing options may be left out.
        ("describe(1)", r#""a=1 b=None c=None""#),
        ("describe(1, some(2))", r#""a=1 b=Some(2) c=None""#),
        (
            r#"describe(1, none, some("c"))"#,
            r#""a=1 b=None c=Some(\"c\")""#,
        ),
    ]);
}

#[test]
fn a_function_without_results_prints_unit() {
    worldhost()
        .args([
            "run",
            "--invoke",
            "nothing()",
            "--invoke",
            "add(2, 2)",
            guest::INVOKE_CALC,
        ])
        .run()
        .success()
        .stdout("()\n4\n");
    worldhost()
        .args(["run", "--json", "--invoke", "nothing()", guest::INVOKE_CALC])
        .run()
        .success()
        .stdout("null\n");
}

#[test]
fn names_inside_interfaces() {
    calls(&[
        // A short name found in one interface only.
        ("mul(6, 7)", "42"),
        // Qualified, as wasmtime spells it: the version after the function.
        ("worldhost:test/ops.mul@0.1.0(2, 3)", "6"),
        ("worldhost:test/more-ops.scale@0.1.0(1.5)", "15"),
        // Without the version, and by the interface's short name (wasmtime takes neither).
        ("worldhost:test/ops.scale(1.5)", "3"),
        ("more-ops.scale(1.5)", "15"),
    ]);
}

#[test]
fn a_short_name_in_two_interfaces_is_ambiguous() {
    worldhost()
        .args(["run", "--invoke", "scale(1.5)", guest::INVOKE_CALC])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`scale` is exported by more than one interface")
        .stderr_has("`worldhost:test/ops.scale@0.1.0`, `worldhost:test/more-ops.scale@0.1.0`");
}

#[test]
fn state_carries_across_calls_on_one_instance() {
    calls(&[
        ("bump()", "1"),
        ("bump()", "2"),
        ("add(1, 1)", "2"),
        ("bump()", "3"),
    ]);
}

#[test]
fn unknown_function_lists_the_exports_with_signatures() {
    worldhost()
        .args(["run", "--invoke", "ad(1, 2)", guest::INVOKE_CALC])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("no exported function named `ad`")
        .stderr_has("`add: func(a: u32, b: u32) -> u32`")
        .stderr_has("more (`worldhost inspect` lists them)");
}

#[test]
fn syntax_error_shows_a_caret() {
    worldhost()
        .args(["run", "--invoke", "add(1, ", guest::INVOKE_CALC])
        .run()
        .code(1)
        .stderr_has(
            "error: `--invoke add(1, ` is not a WAVE function call: unexpected end of input",
        )
        .stderr_has("    add(1, \n           ^\n")
        .stderr_has("e.g. `--invoke 'add(1, 2)'`");
}

#[test]
fn wrong_argument_type_shows_the_signature() {
    worldhost()
        .args(["run", "--invoke", r#"add(1, "two")"#, guest::INVOKE_CALC])
        .run()
        .code(1)
        .stderr_has("the arguments do not fit `add: func(a: u32, b: u32) -> u32`")
        .stderr_has("    add(1, \"two\")\n           ^^^^^\n");
    worldhost()
        .args(["run", "--invoke", "echo-u8(256)", guest::INVOKE_CALC])
        .run()
        .code(1)
        .stderr_has("func(x: u8) -> u8");
}

#[test]
fn wrong_number_of_arguments_shows_the_signature() {
    worldhost()
        .args(["run", "--invoke", "add(1)", guest::INVOKE_CALC])
        .run()
        .code(1)
        .stderr_has("the arguments do not fit `add: func(a: u32, b: u32) -> u32`");
}

#[test]
fn a_bad_call_anywhere_stops_before_anything_runs() {
    // The first call is fine, the second is not: nothing is printed, because all calls are
    // checked before the component is instantiated.
    worldhost()
        .args([
            "run",
            "--invoke",
            "add(1, 2)",
            "--invoke",
            "add(",
            guest::INVOKE_CALC,
        ])
        .run()
        .code(1)
        .stdout("");
}

#[test]
fn resources_cannot_be_passed() {
    worldhost()
        .args(["run", "--invoke", "make(1)", guest::INVOKE_CALC])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has(
            "handles.make@0.1.0` returns `counter`, which holds a resource, stream or future",
        )
        .stderr_has("`worldhost repl` keeps resource handles by name");
}

#[test]
fn a_trap_exits_134_after_earlier_results() {
    worldhost()
        .args([
            "run", "--invoke", "bump()", "--invoke", "crash()", "--invoke", "bump()",
        ])
        .args([guest::INVOKE_CALC])
        .run()
        .code(134)
        .stdout("1\n")
        .stderr_has("`invoke_calc.wasm` trapped: wasm `unreachable` instruction executed")
        .stderr_has("invoke_calc.wasm!crash");
}

#[test]
fn without_invoke_the_error_offers_a_call_to_paste() {
    worldhost()
        .args(["run", guest::INVOKE_CALC])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("no handler recognises")
        .stderr_has("invoke: no `--invoke` was given; call one with `--invoke 'add(0, 0)'`, or as `add 0 0` after the component")
        .stderr_has("`bump: func() -> u32`");
}

#[test]
fn a_command_runs_as_one_without_invoke_and_is_called_with_it() {
    worldhost()
        .args(["run", guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n");
    worldhost()
        .args(["run", "--invoke", "wasi:cli/run.run@0.2.0()", guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\nok\n");
}

#[test]
pub(crate) fn invoke_import() {
    worldhost()
        .args(["run", "--invoke", "no-host()", guest::INVOKE_IMPORT])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("imports `worldhost:test/host@0.1.0`, which worldhost does not provide")
        .stderr_has("`-W unknown-imports-trap=y`");
}

#[test]
fn unknown_imports_trap_links_them_as_traps() {
    worldhost()
        .args(["run", "-W", "unknown-imports-trap", "--invoke", "no-host()"])
        .args(["--invoke", "call-host()", guest::INVOKE_IMPORT])
        .run()
        .code(1)
        .stdout("7\n")
        .stderr_has("unknown import: `worldhost:test/host@0.1.0#greet` has not been defined");
}

#[test]
fn inspect_lists_every_function_with_its_signature() {
    worldhost()
        .args(["inspect", guest::INVOKE_CALC])
        .run()
        .success()
        .stdout_has("  add: func(a: u32, b: u32) -> u32\n")
        .stdout_has("worldhost:test/kinds.describe@0.1.0: func(a: u32, b: option<u32>, c: option<string>) -> string")
        .stdout_has("invoke       no: no `--invoke` was given")
        // In the component's own WIT names, not wasmtime's nameless types.
        .stdout_has("      echo-point: func(x: point) -> point\n")
        .stdout_has("      [method]counter.add: func(self: borrow<counter>, by: u32) -> u32\n");
}

#[test]
fn a_call_that_does_not_fit_names_the_types_as_the_component_does() {
    worldhost()
        .args(["run", "--invoke", "echo-point(1)", guest::INVOKE_CALC])
        .run()
        .code(1)
        .stderr_has("the arguments do not fit `worldhost:test/kinds.echo-point@0.1.0: func(x: point) -> point`");
}

#[test]
fn invoke_help_has_its_own_heading() {
    worldhost()
        .args(["run", "--help"])
        .run()
        .success()
        .stdout_has("Invoke options:")
        .stdout_has("--invoke <CALL>");
}

#[test]
fn json_output_for_every_value_kind() {
    calls_with(
        &["--json"],
        &[
            ("echo-bool(true)", "true"),
            ("echo-s8(-128)", "-128"),
            ("echo-u64(18446744073709551615)", "18446744073709551615"),
            ("echo-s64(-9223372036854775808)", "-9223372036854775808"),
            ("echo-f64(1.5)", "1.5"),
            ("echo-f32(nan)", r#""nan""#),
            ("echo-f64(-inf)", r#""-inf""#),
            ("echo-char('é')", r#""é""#),
            (r#"echo-string("a\"b\n☃")"#, r#""a\"b\n☃""#),
            ("echo-bytes([0, 255])", "[0,255]"),
            (r#"echo-nested([["a"], []])"#, r#"[["a"],[]]"#),
            (r#"echo-tuple((1, "x", false))"#, r#"[1,"x",false]"#),
            // Fields in WIT order, not sorted.
            (
                r#"echo-point({x: 1, y: -2, label: "p"})"#,
                r#"{"x":1,"y":-2,"label":"p"}"#,
            ),
            ("echo-shape(circle(2.5))", r#"{"tag":"circle","value":2.5}"#),
            (
                r#"echo-shape(rect({x: 0, y: 1, label: ""}))"#,
                r#"{"tag":"rect","value":{"x":0,"y":1,"label":""}}"#,
            ),
            ("echo-shape(empty)", r#"{"tag":"empty"}"#),
            ("echo-color(blue)", r#""blue""#),
            ("echo-perms({read, exec})", r#"["read","exec"]"#),
            ("echo-perms({})", "[]"),
            ("echo-option(some(7))", "7"),
            ("echo-option(none)", "null"),
            (r#"echo-result(ok("fine"))"#, r#"{"ok":"fine"}"#),
            ("echo-result(err(3))", r#"{"err":3}"#),
            ("echo-unit-result(ok)", r#"{"ok":null}"#),
            ("echo-unit-result(err)", r#"{"err":null}"#),
        ],
    );
}

#[test]
fn fail_on_err_exits_1_at_the_first_err_and_runs_nothing_after() {
    worldhost()
        .args([
            "run",
            "--fail-on-err",
            "--invoke",
            r#"echo-result(ok("a"))"#,
            "--invoke",
            "echo-unit-result(err)",
            "--invoke",
            "bump()",
            guest::INVOKE_CALC,
        ])
        .run()
        .code(1)
        .stdout("ok(\"a\")\nerr\n");
    // Without the flag an err is a result like any other (as in wasmtime).
    worldhost()
        .args(["run", "--invoke", "echo-result(err(3))", guest::INVOKE_CALC])
        .run()
        .success()
        .stdout("err(3)\n");
    // ok results pass.
    worldhost()
        .args([
            "run",
            "--fail-on-err",
            "--json",
            "--invoke",
            "echo-unit-result(ok)",
            guest::INVOKE_CALC,
        ])
        .run()
        .success()
        .stdout("{\"ok\":null}\n");
}

#[test]
fn exports_make_a_command_line() {
    // FUNCTION ARG…, each a WAVE value; strings and chars may be bare.
    let run = |args: &[&str]| {
        let mut all = vec!["run", guest::INVOKE_CALC];
        all.extend(args);
        worldhost().args(all).run()
    };
    run(&["add", "1", "2"]).success().stdout("3\n");
    run(&["echo-string", r#"a "b" c"#])
        .success()
        .stdout("\"a \\\"b\\\" c\"\n");
    run(&["echo-string", r#""already wave""#])
        .success()
        .stdout("\"already wave\"\n");
    run(&["echo-char", "é"]).success().stdout("'é'\n");
    run(&["kinds.describe", "1", "some(2)"])
        .success()
        .stdout("\"a=1 b=Some(2) c=None\"\n");
    run(&["echo-point", r#"{x: 1, y: 2, label: "p"}"#])
        .success()
        .stdout("{x: 1, y: 2, label: \"p\"}\n");
    worldhost()
        .args([
            "run",
            "--json",
            guest::INVOKE_CALC,
            "echo-shape",
            "circle(2.5)",
        ])
        .run()
        .success()
        .stdout("{\"tag\":\"circle\",\"value\":2.5}\n");
    // Errors name what was typed, with the caret and the signature.
    run(&["add", "1", "x"])
        .code(1)
        .stderr_has("`add 1 x`: the arguments do not fit `add: func(a: u32, b: u32) -> u32`")
        .stderr_has("    add(1, x)\n           ^");
    run(&["nope"])
        .code(1)
        .one_paragraph_error()
        .stderr_has("no exported function named `nope`");
    // --help lists the functions with their signatures.
    run(&["--help"])
        .success()
        .stdout_has("invoke_calc.wasm exports these functions")
        .stdout_has("  add func(a: u32, b: u32) -> u32\n")
        .stdout_has("  worldhost:test/ops.mul@0.1.0 func(a: s32, b: s32) -> s32\n");
    // A command takes its arguments itself: the command guest's args are not a call.
    worldhost()
        .args(["run", guest::PRINT_ARGS, "add", "1"])
        .run()
        .success()
        .stdout("print-args.wasm\nadd\n1\n");
}
