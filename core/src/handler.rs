//! The `Handler` trait and its registry. A handler is a unit struct in its own crate, submitted
//! with `inventory::submit! { Registration(&MyHandler) }`; linking the crate into a binary is
//! all it takes to register it. This file names no handler.

use crate::engine::EnginePlan;
use crate::load::Loaded;
use crate::settings::Settings;
use crate::world::{Item, WasmKind, World, export_version};
use anyhow::{Result, anyhow};
use clap::ArgMatches;
use std::any::Any;
use std::process::ExitCode;

/// How strongly a handler claims a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// It can run the component, with this strength (see [`strength`]).
    Yes(u32),
    /// It cannot, and this says why, in a phrase that completes "… cannot run it: ":
    /// "it does not export `wasi:cli/run`".
    No(String),
}

/// Conventional claim strengths: the highest claim wins.
pub mod strength {
    /// The component exports what the handler's world exports, and nothing stronger claims it.
    pub const WORLD: u32 = 50;
    /// The handler can run it, but a more specific handler should win (e.g. "exports some
    /// function").
    pub const FALLBACK: u32 = 10;
    /// A flag that belongs to the handler was given (`--invoke`): the user asked for it.
    pub const EXPLICIT: u32 = 100;
}

/// A world handler: recognises components of one world and runs them.
pub trait Handler: Sync + 'static {
    /// The `--handler` value, lowercase-hyphenated: "http-proxy".
    fn name(&self) -> &'static str;
    /// One line for `worldhost handlers` and `--help`.
    fn summary(&self) -> &'static str;
    /// What it looks for, for error messages: "an export of `wasi:cli/run`".
    fn looks_for(&self) -> &'static str;
    /// How strongly it claims the component described by `world`, on the command line that
    /// `asked` describes. Only looks: it never runs anything.
    fn claim(&self, world: &World, asked: &Asked<'_>) -> Claim;
    /// What it found in this component that it claims, when that says more than
    /// [`Handler::looks_for`] (which version of its world, and why that one), in a phrase
    /// that `inspect` shows as the reason for the choice: "it exports `wasi:cli/run@0.3.0`
    /// (WASI 0.3)". `None` (the default) says it with `looks_for`.
    fn found(&self, _world: &World) -> Option<String> {
        None
    }
    /// A subcommand of its own that means `run --handler NAME` (`serve` for the HTTP proxy),
    /// with its one-line help; `None` (the default) for none.
    fn subcommand(&self) -> Option<(&'static str, &'static str)> {
        None
    }
    /// Adds the handler's own flags to the `run` command, under their own help heading.
    /// Every handler's flags are parsed on every run: none may be required.
    fn augment_args(&self, cmd: clap::Command) -> clap::Command {
        cmd
    }
    /// Its own flags as its own type, read once from the command line that
    /// [`Handler::augment_args`] added them to ([`flags_of`] reads a `clap::Args` struct);
    /// handlers find them in [`HandlerFlags`]. `None` (the default) for none.
    fn parse_flags(&self, _matches: &ArgMatches) -> Result<Option<Flags>> {
        Ok(None)
    }
    /// The engine this handler's components run in, made from `base` (the shared engine's
    /// configuration): the shared one (the default), one of its own (a server wants the
    /// pooling allocator), or one of its own with a start engine (see [`EnginePlan`]). When
    /// the handler is chosen only after loading, the code is moved into its engine (copied,
    /// not compiled again, when the two compile alike; see [`Loaded::moved`]).
    fn engine(&self, _base: &wasmtime::Config, _settings: &Settings) -> EnginePlan {
        EnginePlan::Shared
    }
    /// Whether code compiled ahead of time for this component (`worldhost compile`) is given
    /// wasmtime's concurrency support, which the handler may need when it runs it though the
    /// component uses no concurrency (a server asked to reuse a WASI 0.2 proxy's instances):
    /// an artifact cannot be compiled again. `false` (the default) spares its stores and calls
    /// the cost.
    fn compiles_concurrent(&self, _world: &World) -> bool {
        false
    }
    /// Whether the words after the component on the command line go to the guest (a
    /// command's arguments, a call's); a handler that has no use for them (a server) returns
    /// false, and core refuses them as a usage error that shows where options go, instead of
    /// dropping them.
    fn takes_guest_args(&self) -> bool {
        true
    }
    /// Runs the component and returns the process's exit status; never exits itself.
    fn run(&self, cx: RunContext<'_>) -> Result<ExitCode>;
}

/// An error in how worldhost was called, found after clap parsed the command line: `main`
/// prints it as any error and exits 2, as for clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What a handler is given to run a component.
pub struct RunContext<'a> {
    /// The loaded component, its engine and its world.
    pub component: &'a Loaded,
    /// The handlers' own flags.
    pub flags: &'a HandlerFlags,
    /// The shared settings: granted capabilities and limits.
    pub settings: &'a Settings,
    /// The arguments after the component on the command line.
    pub args: &'a [String],
}

/// What a handler's claim may look at besides the component's world: the command line.
#[derive(Clone, Copy)]
pub struct Asked<'a> {
    /// The handler named by `--handler` or by its subcommand (`serve`, `repl`), if any.
    pub handler: Option<&'a str>,
    /// Whether words follow the component on the command line (a command's arguments, a call
    /// written as `FUNCTION ARG…`).
    pub guest_args: bool,
    /// The handlers' own flags; none under `inspect` and `compile`, which take none.
    pub flags: &'a HandlerFlags,
}

/// The invoke handler's flags, filed as this type: preview1 reads them for `--invoke NAME`.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    /// Each `--invoke CALL`, in order.
    pub calls: Vec<String>,
    /// `--json`: results as JSON.
    pub json: bool,
    /// `--fail-on-err`: exit 1 at the first `err(…)`.
    pub fail_on_err: bool,
}

/// One handler's flags, as its own type.
pub type Flags = Box<dyn Any + Send + Sync>;

/// [`Handler::parse_flags`] for a handler whose flags are the `clap::Args` struct `A`.
pub fn flags_of<A: clap::FromArgMatches + Send + Sync + 'static>(
    matches: &ArgMatches,
) -> Result<Option<Flags>> {
    Ok(Some(Box::new(A::from_arg_matches(matches)?)))
}

/// Every handler's own flags, each parsed once, by the command line's owner, into the
/// handler's type: a handler reads its own (or another's) by type, never by a flag's id.
#[derive(Default)]
pub struct HandlerFlags(Vec<Flags>);

impl HandlerFlags {
    /// Every handler's flags, from a command line that has them (`run`, `serve`, `repl`).
    pub fn parse(matches: &ArgMatches) -> Result<Self> {
        let all = handlers().into_iter();
        let parsed = all.filter_map(|h| h.parse_flags(matches).transpose());
        Ok(Self(parsed.collect::<Result<_>>()?))
    }

    /// The flags of type `A`, if the command line had them.
    pub fn get<A: 'static>(&self) -> Option<&A> {
        self.0.iter().find_map(|flags| flags.downcast_ref())
    }

    /// The flags of type `A`, which a run always has (every handler's flags are parsed).
    pub fn of<A: 'static>(&self) -> Result<&A> {
        let name = std::any::type_name::<A>();
        let missing = || anyhow!("no flags {name} on this command line");
        self.get().ok_or_else(missing)
    }
}

impl Asked<'_> {
    /// Whether the user named `handler` (`--handler NAME`, or its subcommand).
    pub fn named(&self, handler: &str) -> bool {
        self.handler == Some(handler)
    }
}

/// What `inventory::submit!` stores. The value must be a constant, so handlers are unit structs.
pub struct Registration(pub &'static dyn Handler);

inventory::collect!(Registration);

/// Every handler linked into this binary, sorted by name (inventory's order is unspecified).
pub fn handlers() -> Vec<&'static dyn Handler> {
    let mut all: Vec<&'static dyn Handler> = inventory::iter::<Registration>
        .into_iter()
        .map(|r| r.0)
        .collect();
    all.sort_by_key(|h| h.name());
    all
}

/// The handler registered under `name`.
pub fn handler_named(name: &str) -> Option<&'static dyn Handler> {
    handlers().into_iter().find(|h| h.name() == name)
}

/// The usual claim of a handler for one world: [`strength::WORLD`] when the component exports
/// `interface` (`ns:pkg/iface`) at a version one of `versions` accepts (semver requirements:
/// `"0.2"` takes every 0.2.x, not 0.20), otherwise the reason why not.
pub fn claim_export(world: &World, interface: &str, versions: &[&str]) -> Claim {
    if world.kind == WasmKind::CoreModule {
        return Claim::No("it is a core module, not a component".into());
    }
    let exported: Vec<&Item> = world.exports_of(interface).collect();
    if exported.is_empty() {
        return Claim::No(format!("it does not export `{interface}`"));
    }
    if export_version(world, interface, versions).is_some() {
        return Claim::Yes(strength::WORLD);
    }
    let takes: Vec<String> = versions.iter().map(|v| format!("{v}.x")).collect();
    match exported[0]
        .interface
        .as_ref()
        .and_then(|i| i.version.as_ref())
    {
        Some(v) if v.pre.is_empty() => Claim::No(format!(
            "it exports `{interface}@{v}`, and this handler takes {}",
            takes.join(" or ")
        )),
        Some(v) => Claim::No(format!(
            "it exports `{interface}@{v}`, a prerelease, and this handler takes the releases {} \
             (rebuild the component against a released WIT)",
            takes.join(" or ")
        )),
        None => Claim::No(format!("its `{interface}` export has no version")),
    }
}
