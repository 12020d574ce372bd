//! `worldhost inspect`: the component's imports (with the flag that grants each WASI one), its
//! exports and their functions' WIT signatures, every handler's claim, and the choice. `--wit`
//! prints the world as WIT; `--json` the same description for tools.

use crate::args::SharedArgs;
use anyhow::{Context as _, Result};
use clap::{ArgMatches, FromArgMatches as _};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use worldhost_core::code::kind::read_component;
use worldhost_core::engine::cache_for;
use worldhost_core::select::{claims, select};
use worldhost_core::{
    Claim, Function, HandlerFlags, InterfaceName, Item, RunRequest, World, prepare,
};

pub(crate) fn inspect(matches: &ArgMatches) -> Result<ExitCode> {
    let path = matches
        .get_one::<PathBuf>("component")
        .expect("clap requires the component");
    if matches.get_flag("wit") {
        return crate::print_stdout(&wit_text(path)?);
    }
    crate::app::refuse_run_only_flags(matches, "inspect")?;
    let settings = SharedArgs::from_arg_matches(matches)?.resolve()?;
    // Loaded as `run` loads it: compiled (or cached) for the engine of the handler that would
    // run it, so that a precompiled server loads too, and `run` finds the cache warm.
    // Its command line has no handler flags.
    let flags = HandlerFlags::default();
    let asked = crate::run::asked(matches, &flags);
    let prepared = prepare(&RunRequest {
        path,
        settings: &settings,
        asked,
        cache: cache_for(&settings).as_ref(),
        progress: &crate::progress::Spinner,
        provisional: true,
    })?;
    // Signatures in the component's own WIT names.
    let loaded = prepared.loaded.with_wit_names();
    let world = &loaded.world;
    let shown = path.display().to_string();
    let choice = &select(&shown, world, &asked);
    let claims = claims(world, &asked);

    if matches.get_flag("json") {
        let (handler, reason) = match &choice {
            Ok(c) => (json!(c.handler.name()), json!(c.reason)),
            Err(e) => (Value::Null, json!(format!("{e:#}"))),
        };
        let description = json!({
            "component": shown,
            "handler": handler,
            "reason": reason,
            "imports": world.imports.iter().map(item_json).collect::<Vec<_>>(),
            "exports": world.exports.iter().map(item_json).collect::<Vec<_>>(),
            "claims": claims.iter().map(|(h, c)| match c {
                Claim::Yes(strength) => json!({"handler": h.name(), "claims": true, "strength": strength}),
                Claim::No(why) => json!({"handler": h.name(), "claims": false, "reason": why}),
            }).collect::<Vec<_>>(),
        });
        return crate::print_stdout(&format!("{:#}\n", description));
    }

    let mut out = String::new();
    writeln!(out, "component  {shown}")?;
    match choice {
        Ok(c) => writeln!(out, "handler    {}: {}", c.handler.name(), c.reason)?,
        Err(_) => writeln!(
            out,
            "handler    none: no handler claims it (their reasons are under `claims`); \
             `--handler NAME` runs it with one anyway"
        )?,
    }
    write_items(&mut out, "imports", &world.imports, true)?;
    write_items(&mut out, "exports", &world.exports, false)?;
    writeln!(out, "\nclaims")?;
    for (handler, claim) in &claims {
        match claim {
            Claim::Yes(strength) => {
                writeln!(out, "  {:<12} yes, strength {strength}", handler.name())?
            }
            Claim::No(why) => writeln!(out, "  {:<12} no: {why}", handler.name())?,
        }
    }
    write_functions(&mut out, world)?;
    crate::print_stdout(&out)
}

/// Lists items; for imports (`hints`), what each WASI import is granted and by which flag.
/// The functions of WASI imports are left out: they are not for the user to call.
fn write_items(out: &mut String, heading: &str, items: &[Item], hints: bool) -> Result<()> {
    writeln!(out, "\n{heading}")?;
    if items.is_empty() {
        writeln!(out, "  (none)")?;
    }
    let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0);
    for item in items {
        let hint = item
            .interface
            .as_ref()
            .and_then(grant_hint)
            .filter(|_| hints);
        match hint {
            Some(hint) => writeln!(out, "  {:<width$}  {hint}", item.name)?,
            None => {
                writeln!(out, "  {}", item.name)?;
                for function in &item.functions {
                    writeln!(out, "      {}: {}", function.name, function.signature())?;
                }
            }
        }
    }
    Ok(())
}

/// Every exported function by its qualified name, as a call would name it.
fn write_functions(out: &mut String, world: &World) -> Result<()> {
    let count = world.exported_functions().count();
    if count > 0 {
        writeln!(out, "\nexported functions ({count}), by qualified name")?;
        for function in world.exported_functions() {
            writeln!(out, "  {function}")?;
        }
    }
    Ok(())
}

fn item_json(item: &Item) -> Value {
    json!({
        "name": item.name,
        "interface": item.interface,
        "kind": item.kind,
        "grant": item.interface.as_ref().and_then(grant_hint),
        "functions": item.functions.iter().map(function_json).collect::<Vec<_>>(),
    })
}

fn function_json(function: &Function) -> Value {
    json!({
        "name": function.name,
        "qualified-name": function.qualified_name(),
        "signature": function.signature(),
        "params": function.params.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
        "results": function.results,
    })
}

/// For a WASI import, what the guest gets by default and which flag grants more: what
/// `inspect` prints beside each import. `None` for an interface that is not WASI's.
fn grant_hint(interface: &InterfaceName) -> Option<&'static str> {
    if interface.namespace != "wasi" {
        return None;
    }
    Some(
        match (interface.package.as_str(), interface.interface.as_str()) {
            ("filesystem", _) => "no directory unless granted: pass --dir HOST[::GUEST][::ro]",
            ("cli", "environment") => {
                "no variable unless granted: pass --env NAME[=VAL] or -S inherit-env (arguments \
             are always given)"
            }
            ("cli", "stdin" | "stdout" | "stderr") => {
                "inherited: the guest shares worldhost's own stdio"
            }
            ("cli", _) => "always provided",
            ("sockets", "ip-name-lookup") => "denied unless granted: pass -S allow-ip-name-lookup",
            ("sockets", _) => "no address reachable unless granted: pass -S inherit-network",
            ("clocks" | "random" | "io", _) => "always provided",
            _ => "not provided by the shared WASI settings; the handler decides",
        },
    )
}

/// The component's world as WIT, decoded from its binary with wit-parser and printed by
/// wit-component's printer (as `wasm-tools component wit` does).
fn wit_text(path: &std::path::Path) -> Result<String> {
    let bytes = read_component(path)?;
    let decoded = wit_parser::decoding::decode(&bytes)
        .with_context(|| format!("cannot read the WIT world of `{}`", path.display()))?;
    let resolve = decoded.resolve();
    let main = decoded.package();
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != main)
        .collect();
    let mut printer = wit_component::WitPrinter::default();
    printer
        .print(resolve, main, &nested)
        .context("cannot print the WIT world")?;
    Ok(printer.output.to_string())
}
