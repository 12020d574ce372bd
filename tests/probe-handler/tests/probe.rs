//! `worldhost-probe` is worldhost's `main` linked with one more handler, defined outside core:
//! these tests prove that linking alone registers it, that it is chosen by its claim and by
//! `--handler`, that its flags reach `--help` and its run, and that equal claims are an error.

use worldhost_test_artifacts::{self as guest, Invocation};

fn probe() -> Invocation {
    Invocation::new(env!("CARGO_BIN_EXE_worldhost-probe"))
}

fn data(name: &str) -> String {
    format!("{}/../e2e/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn linking_the_crate_registers_the_handler() {
    let out = probe().args(["handlers"]).run();
    out.success();
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter(|line| !line.starts_with(' '))
        .collect();
    assert_eq!(
        names,
        [
            "command",
            "http-proxy",
            "invoke",
            "preview1",
            "probe",
            "repl"
        ],
        "{}",
        out.stdout
    );
    out.stdout_has("recognises: an export of `worldhost:probe/ping`")
        .stdout_has("--probe-greeting <TEXT>");
}

#[test]
fn chosen_by_its_claim() {
    probe()
        .args(["run", guest::PROBE_EXPORT])
        .run()
        .success()
        .stdout("probe: pong from the probe guest\n");
}

#[test]
fn its_own_flag_reaches_its_run() {
    probe()
        .args([
            guest::PROBE_EXPORT,
            "--probe-greeting",
            "ignored: after the component",
        ])
        .run()
        .success()
        .stdout("probe: pong from the probe guest\n");
    probe()
        .args(["--probe-greeting", "hi", guest::PROBE_EXPORT])
        .run()
        .success()
        .stdout("hi: pong from the probe guest\n");
}

#[test]
fn a_stronger_claim_wins_over_it() {
    // The probe claims every component weakly; the command handler's claim on a command wins.
    probe()
        .args(["run", guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

#[test]
fn chosen_by_handler_flag() {
    probe()
        .args(["run", "--handler", "probe", guest::HELLO])
        .run()
        .success()
        .stdout_has("probe: `hello.wasm` has no ping; it exports `wasi:cli/run@0.2.");
}

#[test]
fn its_flags_have_their_own_help_heading() {
    probe()
        .args(["run", "--help"])
        .run()
        .success()
        .stdout_has("Probe options:")
        .stdout_has("--probe-greeting <TEXT>")
        .stdout_has("[possible values: command, http-proxy, invoke, preview1, probe, repl]");
}

#[test]
fn inspect_explains_its_choice() {
    probe()
        .args(["inspect", guest::PROBE_EXPORT])
        .run()
        .success()
        .stdout_has(
            "handler    probe: it has an export of `worldhost:probe/ping` (claim strength 50)",
        )
        .stdout_has("command      no: it does not export `wasi:cli/run`");
}

#[test]
fn equal_claims_name_the_candidates() {
    probe()
        .args(["run", &data("both-worlds.wat")])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has(
            "is claimed equally by command (an export of `wasi:cli/run`) and probe (an export \
             of `worldhost:probe/ping`); choose one with `--handler command` or `--handler probe`",
        );
}
