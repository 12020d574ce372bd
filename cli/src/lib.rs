//! worldhost's command line: parses the arguments with clap, lets core load the component and
//! select a handler, and hands it the run. Knows no particular world: the handlers it links
//! bring their own flags and their own recognition.
#![warn(unused_crate_dependencies)]

// Naming a handler crate links it; linking is what makes its `inventory::submit!` count.
use worldhost_handler_command as _;
use worldhost_handler_http_proxy as _;
use worldhost_handler_invoke as _;
use worldhost_handler_preview1 as _;
// Linked for its features only (hack/Cargo.toml).
use worldhost_workspace_hack as _;

mod app;
mod args;
mod compile;
mod handlers;
mod inspect;
mod progress;
mod refuse;
mod run;
mod telemetry;

pub use app::command;
#[doc(hidden)]
pub use args::{SharedArgs, use_host_environment};

// Linked for its features only: OTLP's HTTP client speaks TLS to an https endpoint.
use reqwest as _;

#[cfg(test)]
use bytes as _;
#[cfg(test)]
use h2 as _;
#[cfg(test)]
use opentelemetry_proto as _;
#[cfg(test)]
use proptest as _;
#[cfg(test)]
use prost as _;
#[cfg(test)]
use rcgen as _;
#[cfg(test)]
use tempfile as _;
#[cfg(test)]
use tokio as _;
#[cfg(test)]
use ureq as _;
#[cfg(test)]
use worldhost_test_artifacts as _;

use std::process::ExitCode;

/// Runs worldhost with the process's arguments and returns its exit status.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Runs worldhost with `argv` (the program's name first) and returns its exit status; may be
/// called more than once in a process (the fuzz targets do).
pub fn main_from(argv: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    worldhost_core::run_began();
    let argv = app::expand_shorthand(argv.into_iter().collect());
    let selected = app::selected_subcommand(&argv);
    let matches = match app::command_for(selected.as_deref()).try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if let Err(e) = init_logging(matches.get_count("verbose")) {
        eprintln!("{}", wrapped(&format!("error: {e:#}"), stderr_width()));
        return ExitCode::FAILURE;
    }
    // The run's span (OpenTelemetry's, when it is on): what ran, with what, and its exit status.
    let span = tracing::trace_span!(
        parent: None,
        "run",
        otel.name = %format_args!("worldhost {}", matches.subcommand_name().unwrap_or("")),
        otel.kind = "internal",
        worldhost.component = tracing::field::Empty,
        worldhost.handler = tracing::field::Empty,
        process.exit.code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let code = span.in_scope(|| finish(dispatch(&matches)));
    if !span.is_disabled() {
        let number = (0..=255u8).find(|&n| ExitCode::from(n) == code);
        span.record("process.exit.code", number.map_or(-1, i64::from));
    }
    drop(span);
    telemetry::flush();
    code
}

/// Runs the subcommand of `matches`.
fn dispatch(matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    match matches.subcommand() {
        Some(("run", m)) => run::run("run", m),
        // A handler's own subcommand: `run` with its `--handler` preset.
        Some((name, m))
            if app::handler_subcommands()
                .iter()
                .any(|(n, _, _)| *n == name) =>
        {
            run::run(name, m)
        }
        Some(("compile", m)) => compile::compile(m),
        Some(("compose", m)) => compile::compose(m),
        Some(("inspect", m)) => inspect::inspect(m),
        Some(("cache", m)) => compile::cache(m),
        Some(("handlers", _)) => handlers::list(),
        Some(("completions", m)) => completions(m),
        Some(("man", _)) => man_page(),
        _ => unreachable!("clap requires a subcommand"),
    }
}

/// The exit status for what a subcommand returned: its own, a guest's, or 1 (2 for a usage
/// error) with the error on stderr.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result.map_err(|e| e.downcast::<worldhost_core::GuestExit>()) {
        Ok(code) => code,
        // A guest's exit status is the process's; a trap is reported, with its backtrace.
        Err(Ok(exit)) => {
            if exit.trapped() {
                tracing::Span::current().record("error.type", "trap");
                eprintln!("error: {exit}");
            }
            exit.exit_code()
        }
        Err(Err(e)) => {
            tracing::Span::current().record("error.type", "error");
            eprintln!("{}", wrapped(&format!("error: {e:#}"), stderr_width()));
            if e.is::<worldhost_core::UsageError>() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `worldhost completions SHELL`: clap_complete's script for the whole command tree.
fn completions(matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let shell = *matches
        .get_one::<clap_complete::Shell>("shell")
        .expect("clap requires the shell");
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "worldhost", &mut script);
    print_stdout(&String::from_utf8_lossy(&script))
}

/// `worldhost man`: clap_mangen's page for the whole command tree.
fn man_page() -> anyhow::Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command()).render(&mut page)?;
    print_stdout(&String::from_utf8_lossy(&page))
}

/// The width of the terminal stderr is, if it is one.
fn stderr_width() -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(std::io::stderr()).ok()?;
    Some(usize::from(size.ws_col)).filter(|w| *w >= 40)
}

/// `text` with each line longer than `width` broken at spaces, the rest of a line indented
/// two more than its beginning: a message read in a terminal, not one line of 3,000
/// characters. Without a width (not a terminal), as it is.
fn wrapped(text: &str, width: Option<usize>) -> String {
    let Some(width) = width else {
        return text.to_string();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let mut current = " ".repeat(indent);
        for word in line.trim_start().split(' ') {
            if !current.trim().is_empty() && current.len() + 1 + word.len() > width {
                out.push(std::mem::take(&mut current));
                current = " ".repeat(indent + 2);
            } else if !current.trim().is_empty() {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push(current);
    }
    out.join("\n")
}

/// Writes a command's whole output to stdout; see `worldhost_core::output`.
fn print_stdout(text: &str) -> anyhow::Result<ExitCode> {
    worldhost_core::output::write_stdout(text)?;
    Ok(ExitCode::SUCCESS)
}

/// `-v` shows worldhost's info lines, `-vv` debug, `-vvv` trace; `RUST_LOG` overrides. Spans
/// go to OpenTelemetry, when the `OTEL_*` variables turn it on.
fn init_logging(verbose: u8) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::{FilterExt as _, filter_fn};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match verbose {
            0 => "warn",
            1 => "warn,worldhost=info",
            2 => "info,worldhost=debug",
            _ => "debug,worldhost=trace",
        })
    });
    use std::io::IsTerminal as _;
    let ansi = std::io::stderr().is_terminal();
    match telemetry::start()? {
        // Without telemetry, the subscriber as it always was: one global filter, whose level
        // lets every disabled log call in wasmtime and worldhost cost one comparison. (A
        // registry with per-layer filters, an absent layer among them, cost a server 15% of
        // its requests/s: every call site became interesting.) worldhost's own spans are at
        // TRACE, so `-v` and `-vv` lines do not carry them.
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
            .with_target(false)
            .try_init()
            .ok(),
        // With it, the spans go to OpenTelemetry and the log shows events only.
        Some(otel) => {
            let log = tracing_subscriber::fmt::layer()
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_filter(filter.and(filter_fn(|meta| meta.is_event())));
            tracing_subscriber::registry()
                .with(otel)
                .with(log)
                .try_init()
                .ok()
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wrapped;

    #[test]
    fn long_lines_wrap_at_spaces_and_short_ones_stay() {
        let text = "error: one two three four five six\n  handler: seven eight nine";
        assert_eq!(wrapped(text, None), text);
        assert_eq!(
            wrapped(text, Some(16)),
            "error: one two\n  three four\n  five six\n  handler: seven\n    eight nine"
        );
    }
}
