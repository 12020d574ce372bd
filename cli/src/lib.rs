//! worldhost's command line: parses the arguments with clap, lets core load the component and
//! select a handler, and hands it the run. Knows no particular world: the handlers it links
//! bring their own flags and their own recognition.
#![warn(unused_crate_dependencies)]

// Naming a handler crate links it; linking is what makes its `inventory::submit!` count.
use worldhost_handler_command as _;
use worldhost_handler_http_proxy as _;
use worldhost_handler_invoke as _;
use worldhost_handler_preview1 as _;

mod app;
mod args;
mod compile;
mod handlers;
mod inspect;
mod progress;
mod run;

pub use app::command;
#[doc(hidden)]
pub use args::SharedArgs;

#[cfg(test)]
use proptest as _;
#[cfg(test)]
use tempfile as _;
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
    init_logging(matches.get_count("verbose"));
    let result = match matches.subcommand() {
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
        Some(("inspect", m)) => inspect::inspect(m),
        Some(("cache", m)) => compile::cache(m),
        Some(("handlers", _)) => handlers::list(),
        Some(("completions", m)) => completions(m),
        Some(("man", _)) => man_page(),
        _ => unreachable!("clap requires a subcommand"),
    };
    match result.map_err(|e| e.downcast::<worldhost_core::GuestExit>()) {
        Ok(code) => code,
        // A guest's exit status is the process's; a trap is reported, with its backtrace.
        Err(Ok(exit)) => {
            if exit.trapped() {
                eprintln!("error: {exit}");
            }
            exit.exit_code()
        }
        Err(Err(e)) => {
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

/// `-v` shows worldhost's info lines, `-vv` debug, `-vvv` trace; `RUST_LOG` overrides.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(match verbose {
            0 => "warn",
            1 => "warn,worldhost=info",
            2 => "info,worldhost=debug",
            _ => "debug,worldhost=trace",
        })
    });
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init()
        .ok();
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
