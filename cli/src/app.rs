//! The clap command tree: `run` (shared flags plus every handler's own, each under its heading),
//! the subcommands handlers bring (`serve`, `repl`), `compile`, `inspect`, `cache`, `handlers`;
//! and the shorthand `worldhost app.wasm` = `worldhost run app.wasm`.

use crate::args::SharedArgs;
use anyhow::{Result, bail};
use clap::builder::PossibleValuesParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args as _, Command, value_parser};
use std::ffi::OsString;
use worldhost_core::handlers;

const SUBCOMMANDS: &[&str] = &[
    "run",
    "compile",
    "compose",
    "inspect",
    "cache",
    "handlers",
    "completions",
    "man",
    "help",
];

/// The subcommands handlers bring (`serve`), with the handler each one stands for.
pub fn handler_subcommands() -> Vec<(&'static str, &'static str, &'static str)> {
    handlers()
        .into_iter()
        .filter_map(|h| h.subcommand().map(|(name, about)| (name, about, h.name())))
        .collect()
}

/// The whole command line, with every linked handler's flags.
pub fn command() -> Command {
    command_for(None)
}

/// The command line for a process whose subcommand is `selected`: that subcommand is built
/// whole and the others are only named, with their one-line help (what `--help`, clap's
/// suggestions and its errors need). Every subcommand that runs or compiles holds the shared
/// flags, wasmtime's option groups among them, and every handler's; building all of them
/// for every process is time a 3 ms run notices. `None`: everything (completions, the man
/// page, `help`, the tests).
pub(crate) fn command_for(selected: Option<&str>) -> Command {
    let whole = |name: &str| selected.is_none_or(|s| s == name);
    let part = |name: &'static str, about: &'static str, build: &dyn Fn() -> Command| {
        if whole(name) {
            build()
        } else {
            Command::new(name).about(about)
        }
    };
    Command::new("worldhost")
        .about("Runs WebAssembly components: reads the component's WIT world and picks the handler that runs it")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::Count)
                .global(true)
                .help("Log what worldhost does on stderr (-vv, -vvv for more); RUST_LOG overrides"),
        )
        .after_help("`worldhost app.wasm ARGS…` is short for `worldhost run app.wasm ARGS…`.")
        .subcommand(part("run", RUN_ABOUT, &run_command))
        .subcommands(handler_subcommands().into_iter().map(|(name, about, handler)| {
            part(name, about, &|| {
                run_command()
                    .name(name)
                    .about(about)
                    .override_usage(format!("worldhost {name} [OPTIONS] <COMPONENT> [ARGS]..."))
                    // The handler is given by the subcommand.
                    .mut_arg("handler", |a| a.hide(true).default_value(handler))
            })
        }))
        .subcommand(part("compile", COMPILE_ABOUT, &compile_command))
        .subcommand(part("compose", COMPOSE_ABOUT, &compose_command))
        .subcommand(part("inspect", INSPECT_ABOUT, &inspect_command))
        .subcommand(cache_command())
        .subcommand(
            Command::new("handlers")
                .about("List the registered handlers, the world each recognises, and their flags"),
        )
        .subcommand(
            Command::new("completions")
                .about("Print a completion script for SHELL (e.g. `worldhost completions bash > /etc/bash_completion.d/worldhost`)")
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(value_parser!(clap_complete::Shell)),
                ),
        )
        .subcommand(
            Command::new("man")
                .about("Print the manual page, in roff (`worldhost man > worldhost.1; man ./worldhost.1`)"),
        )
}

const RUN_ABOUT: &str = "Run a component with the handler its world calls for";
const COMPILE_ABOUT: &str =
    "Precompile a component into an artifact that `run` and `serve` start without compiling";
const COMPOSE_ABOUT: &str =
    "Compose a component with middleware and plugs into one that any runtime runs (as `wac`)";
const INSPECT_ABOUT: &str =
    "Show a component's world, its functions, and the handler that would run it";

/// The subcommand `argv` (after [`expand_shorthand`]) names, if it names one; `help` needs
/// every subcommand, so it names none here.
pub(crate) fn selected_subcommand(argv: &[OsString]) -> Option<String> {
    let first = argv.iter().skip(1).find(|a| !is_verbose_flag(a))?;
    let first = first.to_str()?;
    let known = SUBCOMMANDS.contains(&first)
        || handler_subcommands()
            .iter()
            .any(|(name, _, _)| *name == first);
    (known && first != "help").then(|| first.to_string())
}

/// The shared flags. `-R` (wasmtime's execution recording, which needs its `rr` feature) is
/// accepted, so that its error says so, but not shown.
fn shared_args(cmd: Command) -> Command {
    SharedArgs::augment_args(cmd).mut_arg("record_raw", |arg| arg.hide(true))
}

fn run_command() -> Command {
    let cmd = Command::new("run").arg(handler_arg()).arg(
        Arg::new("component")
            .value_name("COMPONENT")
            .help("The component (.wasm or .wat), then the arguments given to it")
            .required(true)
            .num_args(1..)
            // Everything after the component is the guest's, flags included; a flag in the
            // component's own place is not taken for a path but left to clap, whose error
            // names it and suggests a close one (exit 2), as wasmtime's does.
            .trailing_var_arg(true)
            .value_parser(value_parser!(OsString)),
    );
    let cmd = shared_args(cmd);
    let cmd = handlers()
        .into_iter()
        .fold(cmd, |cmd, h| h.augment_args(cmd));
    // Set last: clap's derive turns an `Args` struct's doc comment into the command's about.
    cmd.about(RUN_ABOUT)
        .long_about(None)
        .override_usage("worldhost run [OPTIONS] <COMPONENT> [ARGS]...")
}

fn compile_command() -> Command {
    let cmd = Command::new("compile")
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("OUT")
                .value_parser(value_parser!(std::path::PathBuf))
                .help("Where to write the artifact (default: the component's path, with .cwasm)"),
        )
        .arg(
            Arg::new("component")
                .value_name("COMPONENT")
                .required(true)
                .value_parser(value_parser!(std::path::PathBuf))
                .help("The component or core module (.wasm or .wat)"),
        );
    with_code_flags(cmd)
        .about(COMPILE_ABOUT)
        .long_about(None)
        .override_usage("worldhost compile [OPTIONS] <COMPONENT> [-o OUT]")
        .after_help(
            "The artifact is machine code for this machine, this worldhost and these settings: \
             the `-O`, `-C`, `-D` and `-W` keys that change code (and `-W fuel`, `-W timeout`) \
             must then be given to `run` as well. Run only artifacts you made or trust, as you \
             would a native program.",
        )
}

fn compose_command() -> Command {
    let cmd = Command::new("compose")
        .arg(
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("OUT")
                .required(true)
                .value_parser(value_parser!(std::path::PathBuf))
                .help("Where to write the composed component"),
        )
        .arg(
            Arg::new("component")
                .value_name("COMPONENT")
                .required(true)
                .value_parser(value_parser!(std::path::PathBuf))
                .help(
                    "The component the middleware forwards to and the plugs fill (.wasm or .wat)",
                ),
        );
    crate::args::ComposeArgs::augment_args(cmd)
        .about(COMPOSE_ABOUT)
        .override_usage(
            "worldhost compose [--middleware PATH]... [--plug PATH]... <COMPONENT> -o <OUT>",
        )
        .after_help(
            "The result is a standard component: `worldhost run` and `serve` run it as they run \
             the pieces given with the same flags, and so do `wasmtime run` and `wasmtime serve`.",
        )
}

/// The shared flags that grant a running guest something, by clap id, and as written.
const RUN_ONLY_FLAGS: &[(&str, &str)] = &[
    ("dirs", "--dir"),
    ("envs", "--env"),
    ("argv0", "--argv0"),
    ("allow_outgoing", "--allow-outgoing"),
    ("profile", "--profile"),
];

/// The shared flags for a subcommand that compiles but runs nothing (`compile`, `inspect`):
/// `-O`, `-C`, `-D`, `-W` (they change the code) and `--no-cache` are shown; `-S` is accepted,
/// as `wasmtime compile` accepts it, but not shown; the run-only flags are hidden and refused
/// ([`refuse_run_only_flags`]).
fn with_code_flags(cmd: Command) -> Command {
    RUN_ONLY_FLAGS
        .iter()
        .map(|(id, _)| *id)
        .chain(["wasi_raw"])
        .fold(shared_args(cmd), |cmd, id| {
            cmd.mut_arg(id, |arg| arg.hide(true))
        })
}

/// An error for a run-only flag given to `subcommand`, which runs nothing.
pub(crate) fn refuse_run_only_flags(matches: &ArgMatches, subcommand: &str) -> Result<()> {
    for (id, flag) in RUN_ONLY_FLAGS {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            bail!(
                "`{flag}` is for a guest that runs, and `worldhost {subcommand}` runs nothing; \
                 give `{flag}` to `worldhost run` (of the flags shared with `run`, `{subcommand}` \
                 takes `-O`, `-C`, `-D`, `-W`, `--config` and `--no-cache`)"
            );
        }
    }
    Ok(())
}

fn cache_command() -> Command {
    Command::new("cache")
        .about("Show where the compilation cache lives and what it holds; `clear` empties it")
        .subcommand(Command::new("dir").about("Print the cache directory"))
        .subcommand(Command::new("clear").about("Remove every cached compilation"))
}

fn inspect_command() -> Command {
    let cmd = Command::new("inspect")
        .arg(handler_arg())
        .arg(
            Arg::new("wit")
                .long("wit")
                .action(ArgAction::SetTrue)
                .conflicts_with("json")
                .help("Print the component's world as WIT"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print the description as JSON, for tools"),
        )
        .arg(
            Arg::new("component")
                .value_name("COMPONENT")
                .required(true)
                .value_parser(value_parser!(std::path::PathBuf))
                .help("The component (.wasm or .wat)"),
        );
    // `-W`: an artifact compiled with `-W fuel` is inspected with it. The about is set after
    // the shared flags, whose doc comment clap would take for it.
    with_code_flags(cmd).about(INSPECT_ABOUT).long_about(None)
}

/// `--handler NAME`: the names come from the registry, so `--help` and clap's error list them.
fn handler_arg() -> Arg {
    let names: Vec<&'static str> = handlers().iter().map(|h| h.name()).collect();
    Arg::new("handler")
        .long("handler")
        .value_name("NAME")
        .value_parser(PossibleValuesParser::new(names))
        .help("Run with this handler instead of the one the component's world calls for")
}

/// `worldhost [-v] app.wasm …` → `worldhost [-v] run app.wasm …`: when the first argument that
/// is not `-v` names no subcommand and is not a help or version flag, `run` is meant.
pub fn expand_shorthand(mut argv: Vec<OsString>) -> Vec<OsString> {
    let first = argv
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, a)| !is_verbose_flag(a));
    if let Some((at, arg)) = first {
        let arg = arg.to_string_lossy();
        let is_builtin = SUBCOMMANDS.contains(&arg.as_ref())
            || handler_subcommands()
                .iter()
                .any(|(name, _, _)| *name == arg)
            || matches!(arg.as_ref(), "-h" | "--help" | "-V" | "--version");
        if !is_builtin {
            argv.insert(at, "run".into());
        }
    }
    argv
}

fn is_verbose_flag(arg: &OsString) -> bool {
    let arg = arg.to_string_lossy();
    arg == "--verbose"
        || (arg.len() > 1 && arg.starts_with('-') && arg[1..].chars().all(|c| c == 'v'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: &[&str]) -> Vec<String> {
        let argv = args.iter().map(OsString::from).collect();
        expand_shorthand(argv)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
        for name in ["run", "serve", "compile", "inspect", "cache"] {
            command_for(Some(name)).debug_assert();
        }
    }

    #[test]
    fn only_the_subcommand_asked_for_is_built_whole() {
        let selected = |args: &[&str]| {
            let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
            selected_subcommand(&expand_shorthand(argv))
        };
        assert_eq!(selected(&["wh", "-v", "app.wasm"]).as_deref(), Some("run"));
        assert_eq!(
            selected(&["wh", "serve", "a.wasm"]).as_deref(),
            Some("serve")
        );
        assert_eq!(selected(&["wh", "help", "serve"]), None);
        assert_eq!(selected(&["wh", "--help"]), None);
        // The others are still there for `--help` and suggestions, with their one-line help.
        let run = command_for(Some("run"));
        let serve = run.find_subcommand("serve").expect("serve is named");
        assert!(serve.get_about().is_some() && serve.get_arguments().next().is_none());
        let e = command_for(Some("run"))
            .try_get_matches_from(["wh", "servee"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("serve"), "{e}");
    }

    #[test]
    fn a_component_first_means_run() {
        assert_eq!(
            expand(&["wh", "app.wasm", "x"]),
            ["wh", "run", "app.wasm", "x"]
        );
        assert_eq!(
            expand(&["wh", "-v", "app.wasm"]),
            ["wh", "-v", "run", "app.wasm"]
        );
        assert_eq!(
            expand(&["wh", "--dir", ".", "a.wasm"]),
            ["wh", "run", "--dir", ".", "a.wasm"]
        );
    }

    #[test]
    fn a_flag_in_the_components_place_is_a_usage_error_and_later_ones_are_the_guests() {
        let parse = |args: &[&str]| command().try_get_matches_from(expand(args));
        let e = parse(&["wh", "run", "--no-such-flag", "app.wasm"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
        assert_eq!(e.exit_code(), 2);
        let e = parse(&["wh", "--no-cahce", "app.wasm"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a similar argument exists: '--no-cache'"), "{e}");
        let m = parse(&["wh", "app.wasm", "--dir", "-x"]).unwrap();
        let (_, run) = m.subcommand().unwrap();
        let words: Vec<_> = run.get_many::<OsString>("component").unwrap().collect();
        assert_eq!(words, ["app.wasm", "--dir", "-x"]);
    }

    #[test]
    fn subcommands_and_help_are_left_alone() {
        assert_eq!(
            expand(&["wh", "inspect", "a.wasm"]),
            ["wh", "inspect", "a.wasm"]
        );
        assert_eq!(
            expand(&["wh", "-vv", "handlers"]),
            ["wh", "-vv", "handlers"]
        );
        assert_eq!(expand(&["wh", "--help"]), ["wh", "--help"]);
        assert_eq!(expand(&["wh"]), ["wh"]);
    }
}
