//! `worldhost repl`: a session of calls on one instance, fed on stdin as a script, and on a
//! pseudo-terminal (util-linux `script`) for the interactive path.

use crate::worldhost;
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use worldhost_test_artifacts as guest;

fn repl(script: &str) -> crate::Invocation {
    worldhost()
        .args(["repl", guest::INVOKE_CALC])
        .stdin(script.as_bytes().to_vec())
}

#[test]
fn a_resource_is_bound_from_its_constructor_and_its_methods_change_its_state() {
    repl(
        "# a comment, then a blank line\n\
         \n\
         let c = counter.new(5)\n\
         c.add(2)\n\
         c.add(3)\n\
         c.get()\n\
         let z = counter.zero()\n\
         z.get()\n\
         c\n\
         .type c\n\
         let x = add(40, 2)\n\
         add(x, 1)\n\
         x\n\
         echo-point({x: 1, y: 2, label: \"a, b\"})\n\
         describe(1)\n\
         .type add\n\
         make-some(3)\n\
         .quit\n\
         add(1, 1)\n",
    )
    .run()
    .success()
    .stdout(
        "7\n10\n10\n0\n<resource>\nown<resource>\n43\n42\n{x: 1, y: 2, label: \"a, b\"}\n\
         \"a=1 b=None c=None\"\nfunc(a: u32, b: u32) -> u32\n\"<resource>\"\n",
    );
}

#[test]
fn json_results_and_the_listing_commands() {
    worldhost()
        .args(["repl", "--json", guest::INVOKE_CALC])
        .stdin("echo-shape(circle(1.5))\n.exports\n.imports\n")
        .run()
        .success()
        .stdout_has("{\"tag\":\"circle\",\"value\":1.5}\n")
        .stdout_has("add func(a: u32, b: u32) -> u32\n")
        .stdout_has("worldhost:test/handles.[method]counter.add@0.1.0 func(self: borrow<counter>, by: u32) -> u32\n")
        .stdout_has("wasi:cli/environment@0.2.6\n");
}

#[test]
fn a_syntax_error_mid_script_stops_it_with_a_caret() {
    repl("add(1, 2)\nadd(1, x y)\nadd(2, 2)\n")
        .run()
        .code(1)
        .stdout("3\n")
        .stderr_has("`add(1, x y)` is not a WAVE call: unexpected token")
        .stderr_has("    add(1, x y)\n             ^");
    // A well-formed call whose argument does not fit its parameter.
    repl("add(1, \"two\")\n")
        .run()
        .code(1)
        .stderr_has(
            "`add(1, \"two\")`: the arguments do not fit `add: func(a: u32, b: u32) -> u32`",
        )
        .stderr_has("    add(1, \"two\")\n           ^^^^^");
    repl("c.get()\n")
        .run()
        .code(1)
        .stderr_has("`c` is neither a bound name nor a resource with `get`");
    repl("let c = counter.new(1)\nc.nope()\n")
        .run()
        .code(1)
        .stderr_has("`c` has no method `nope`; its methods: get, add");
    repl("add(1)\n")
        .run()
        .code(1)
        .stderr_has("`add(1)`: 1 arguments for `add: func(a: u32, b: u32) -> u32`");
    repl(".frobnicate\n")
        .run()
        .code(1)
        .stderr_has("unknown command `.frobnicate`");
}

#[test]
fn fail_on_err_ends_a_script_at_an_err_result() {
    worldhost()
        .args(["repl", "--fail-on-err", guest::INVOKE_CALC])
        .stdin("echo-result(ok(\"a\"))\necho-result(err(2))\nbump()\n")
        .run()
        .code(1)
        .stdout("ok(\"a\")\nerr(2)\n")
        .stderr_has("returned `err`");
}

#[test]
fn a_trap_in_a_script_ends_it_as_a_trap_does() {
    repl("bump()\ncrash()\nbump()\n")
        .run()
        .code(134)
        .stdout("1\n")
        .stderr_has("wasm `unreachable` instruction executed");
}

#[test]
fn repl_runs_only_when_asked_and_only_on_components() {
    // A command's `run` is an exported function like any other.
    worldhost()
        .args(["repl", guest::HELLO])
        .stdin("run()\n")
        .run()
        .success()
        .stdout("Hello, world!\nok\n");
    worldhost()
        .args(["repl", guest::EXIT_CODE_P1])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`--handler repl` cannot run")
        .stderr_has("it is a core module");
    // Never chosen by itself: a component with exports still asks for `--invoke`.
    worldhost()
        .args(["run", guest::INVOKE_CALC])
        .run()
        .code(1)
        .stderr_has("repl: it runs only when asked for, with `worldhost repl`");
    worldhost()
        .args(["handlers"])
        .run()
        .success()
        .stdout_has("repl\n");
}

/// A REPL on a pseudo-terminal, driven like a person: each line is typed once the prompt it
/// answers has appeared (typing ahead is discarded by line editors, as on a real terminal).
struct Terminal {
    child: std::process::Child,
    output: mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    fn start(args: &str, data_home: &std::path::Path) -> Terminal {
        let command = format!("{} {args}", env!("CARGO_BIN_EXE_worldhost"));
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("XDG_DATA_HOME", data_home)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("script (util-linux) starts");
        let mut stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            output,
            seen: String::new(),
        }
    }

    /// Waits until the output since the last call contains `marker` (raw: lines end in
    /// `\r\n` on a terminal); returns the output before it, without terminal escapes and
    /// carriage returns.
    fn until(&mut self, marker: &str) -> String {
        while !self.seen.contains(marker) {
            let chunk = self
                .output
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {marker:?} in {:?}", self.seen));
            self.seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        let (before, after) = self.seen.split_once(marker).unwrap();
        let before = before.to_string();
        self.seen = after.to_string();
        strip_escapes(&before)
    }

    fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\r").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
}

fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next_if_eq(&'[').is_some() {
                while chars.next().is_some_and(|c| !c.is_ascii_alphabetic()) {}
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}

#[test]
fn on_a_terminal_a_trap_poisons_the_instance_and_a_fresh_one_is_offered() {
    let data = tempfile::tempdir().unwrap();
    let mut term = Terminal::start(&format!("repl {}", guest::INVOKE_CALC), data.path());
    term.until("> ");
    term.type_line("let c = counter.new(1)");
    term.until("> ");
    term.type_line("c.add(4)");
    assert!(term.until("> ").contains("5\n"));
    term.type_line("bump()");
    assert!(term.until("> ").contains("1\n"));
    term.type_line("crash()");
    let trap = term.until("[Y/n] ");
    assert!(trap.contains("the instance is poisoned"), "{trap}");
    assert!(trap.contains("unreachable"), "{trap}");
    term.type_line("y");
    assert!(term.until("> ").contains("a fresh instance"));
    // State starts over, and the handle bound before the trap is gone.
    term.type_line("bump()");
    assert!(term.until("> ").contains("1\n"));
    term.type_line("c.get()");
    assert!(term.until("> ").contains("`c` is neither a bound name"));
    // An error on a terminal does not end the session.
    term.type_line("add(2, 3)");
    assert!(term.until("> ").contains("5\n"));
    // Tab completes a function's name.
    // (rustyline redraws the prompt as it completes: wait for the result itself.)
    term.type_line("bu\t()");
    assert!(term.until("\n2\r\n").contains("bump"));
    term.until("> ");
    term.type_line(".quit");
    assert!(term.child.wait().unwrap().success());
    // History is kept for the next session.
    let history = std::fs::read_to_string(data.path().join("worldhost/repl-history")).unwrap();
    assert!(history.contains("c.add(4)"), "{history}");
}

#[test]
fn a_history_file_that_is_a_link_is_neither_read_nor_written() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("worldhost");
    std::fs::create_dir(&dir).unwrap();
    let target = data.path().join("elsewhere");
    std::fs::write(&target, "bump()\n").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("repl-history")).unwrap();
    let mut term = Terminal::start(&format!("repl {}", guest::INVOKE_CALC), data.path());
    let opening = term.until("> ");
    assert!(
        opening.contains("the REPL keeps no history") && opening.contains("symbolic link"),
        "{opening}"
    );
    term.type_line("add(2, 3)");
    assert!(term.until("> ").contains("5\n"));
    term.type_line(".quit");
    assert!(term.child.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "bump()\n");
    assert!(
        std::fs::symlink_metadata(dir.join("repl-history"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
