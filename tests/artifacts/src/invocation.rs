//! Runs a binary under test and checks its exit code and output. Every failed check panics with
//! the whole story: the command line, the exit status, stdout and stderr.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A command line to run, built up before [`Invocation::run`].
pub struct Invocation {
    command: Command,
    stdin: Vec<u8>,
}

/// What a finished process did.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for reports.
    pub shown: String,
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Invocation {
    /// `bin` with no arguments yet, stdin empty, and no `RUST_LOG` from the caller.
    pub fn new(bin: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(bin);
        command.env_remove("RUST_LOG");
        Self {
            command,
            stdin: Vec::new(),
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets an environment variable for the process.
    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    /// Runs it in `dir`.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Feeds `bytes` to its stdin.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Runs it to the end. Whatever it did, it must not have panicked.
    pub fn run(mut self) -> Outcome {
        let shown = format!("{:?}", self.command);
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let bytes = std::mem::take(&mut self.stdin);
        let feeder = std::thread::spawn(move || {
            // The guest may exit without reading; a broken pipe is not the test's concern.
            let _ = stdin.write_all(&bytes);
        });
        let output = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot wait for {shown}: {e}"));
        feeder.join().expect("the stdin feeder does not panic");
        let outcome = Outcome {
            shown,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        if outcome.stderr.contains("panicked") || outcome.stdout.contains("panicked") {
            outcome.fail("the process panicked");
        }
        outcome
    }
}

impl Outcome {
    /// Panics with `what` and the whole story.
    #[track_caller]
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- command: {}\n--- exit code: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.shown, self.code, self.stdout, self.stderr
        )
    }

    /// Checks the exit code.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        if self.code != Some(expected) {
            self.fail(&format!("expected exit code {expected}"));
        }
        self
    }

    /// Checks that it exited 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        self.code(0)
    }

    /// Checks stdout, exactly.
    #[track_caller]
    pub fn stdout(&self, expected: &str) -> &Self {
        if self.stdout != expected {
            self.fail(&format!("expected stdout to be exactly {expected:?}"));
        }
        self
    }

    /// Checks that stdout contains `part`.
    #[track_caller]
    pub fn stdout_has(&self, part: &str) -> &Self {
        if !self.stdout.contains(part) {
            self.fail(&format!("expected stdout to contain {part:?}"));
        }
        self
    }

    /// The lines of stdout that are not indented: the items of a listing such as
    /// `worldhost handlers`.
    pub fn stdout_items(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|line| !line.starts_with(' '))
            .collect()
    }

    /// Checks that stderr contains `part`.
    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Self {
        if !self.stderr.contains(part) {
            self.fail(&format!("expected stderr to contain {part:?}"));
        }
        self
    }

    /// Checks that nothing was printed on stderr.
    #[track_caller]
    pub fn stderr_is_empty(&self) -> &Self {
        if !self.stderr.is_empty() {
            self.fail("expected nothing on stderr");
        }
        self
    }

    /// Checks that stderr is a one-paragraph `error: …` message: one line (no blank line), no
    /// backtrace of Rust's.
    #[track_caller]
    pub fn one_paragraph_error(&self) -> &Self {
        let text = self.stderr.trim_end();
        if !text.starts_with("error: ") || text.contains("\n\n") || text.contains("stack backtrace")
        {
            self.fail("expected a one-paragraph `error: …` on stderr");
        }
        self
    }
}
