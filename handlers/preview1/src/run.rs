//! Instantiates the module with wasi_snapshot_preview1 linked (and the `--preload` modules)
//! and calls `_start`, or the export `--invoke` names.

use crate::module::ModuleGuest;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;
use wasmtime::{Val, ValType};
use worldhost_core::RunContext;

/// Flags of the `preview1` handler.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Core module options")]
pub(crate) struct Preview1Args {
    /// Instantiate a core module first, as NAME, for the module's imports from NAME
    /// (`--preload env=lib.wasm`); may be repeated (as in wasmtime)
    #[arg(long = "preload", value_name = "NAME=PATH", value_parser = parse_preload)]
    pub preloads: Vec<(String, PathBuf)>,
}

fn parse_preload(value: &str) -> Result<(String, PathBuf), String> {
    match value.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.into(), path.into()))
        }
        _ => Err(format!(
            "`{value}` is not `NAME=PATH`; write e.g. `--preload env=lib.wasm`"
        )),
    }
}

/// The function `--invoke` names, if it names one (the invoke handler's flag: for a core
/// module, as in wasmtime, it is a bare export name and the words after the module are its
/// arguments).
pub(crate) fn invoked(matches: &clap::ArgMatches) -> Option<String> {
    let mut calls = matches.try_get_many::<String>("calls").ok().flatten()?;
    calls.next().cloned()
}

pub(crate) fn run(cx: RunContext<'_>, args: &Preview1Args) -> Result<ExitCode> {
    let invoke = invoked(cx.matches);
    if invoke.is_some() {
        refuse_component_call_flags(cx.matches)?;
    }
    let words = cx.args;
    // `--invoke` takes the words after the module as its arguments, not the guest's argv.
    let cx = RunContext {
        args: if invoke.is_some() { &[] } else { words },
        ..cx
    };
    let mut guest = ModuleGuest::instantiate(&cx, &args.preloads)?;
    // A reactor (`_initialize`) is initialized first, as wasmtime does.
    if let Some(initialize) = guest.instance.get_func(&mut guest.store, "_initialize") {
        let initialize = initialize
            .typed::<(), ()>(&guest.store)
            .map_err(|e| guest.ended(e))?;
        initialize
            .call(&mut guest.store, ())
            .map_err(|e| guest.ended(e))?;
    }
    let Some(name) = invoke else {
        let start = guest
            .instance
            .get_typed_func::<(), ()>(&mut guest.store, "_start")
            .map_err(|e| guest.ended(e))?;
        return match start.call(&mut guest.store, ()) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => Err(guest.ended(e)),
        };
    };
    let Some(func) = guest.instance.get_func(&mut guest.store, &name) else {
        bail!(
            "`--invoke {name}`: `{}` exports no function `{name}`",
            cx.component.path.display()
        );
    };
    let ty = func.ty(&guest.store);
    let params: Vec<ValType> = ty.params().collect();
    if params.len() != words.len() {
        bail!(
            "`--invoke {name}` takes {} argument(s), written after the module; {} given",
            params.len(),
            words.len()
        );
    }
    let values = (params.iter().zip(words))
        .map(|(ty, word)| parse_value(&name, ty, word))
        .collect::<Result<Vec<Val>>>()?;
    let mut results = vec![Val::I32(0); ty.results().len()];
    if let Err(e) = func.call(&mut guest.store, &values, &mut results) {
        return Err(guest.ended(e));
    }
    let mut out = String::new();
    for result in &results {
        out.push_str(&match result {
            Val::I32(n) => n.to_string(),
            Val::I64(n) => n.to_string(),
            Val::F32(bits) => f32::from_bits(*bits).to_string(),
            Val::F64(bits) => f64::from_bits(*bits).to_string(),
            Val::V128(v) => v.as_u128().to_string(),
            other => format!("<{:?}>", other.ty(&guest.store)),
        });
        out.push('\n');
    }
    worldhost_core::output::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// What the invoke handler's call flags ask cannot be done for a core module's export: one
/// call per process (as wasmtime), results printed as wasmtime prints them.
fn refuse_component_call_flags(matches: &clap::ArgMatches) -> Result<()> {
    let calls = matches.try_get_many::<String>("calls").ok().flatten();
    if calls.is_some_and(|calls| calls.count() > 1) {
        bail!("a core module takes one `--invoke NAME` per run, as in wasmtime");
    }
    for (id, flag) in [("json", "--json"), ("fail_on_err", "--fail-on-err")] {
        if matches.try_get_one::<bool>(id).ok().flatten() == Some(&true) {
            bail!(
                "`{flag}` is for a component's calls; a core module's `--invoke` prints its \
                 results one per line, as wasmtime does"
            );
        }
    }
    Ok(())
}

/// A word as a value of a core type: integers in decimal or `0x` hexadecimal, floats in
/// decimal, as wasmtime reads them.
fn parse_value(name: &str, ty: &ValType, word: &str) -> Result<Val> {
    let hex = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X"));
    let bad = || anyhow::anyhow!("`--invoke {name}`: `{word}` is not a {ty}");
    Ok(match ty {
        ValType::I32 => Val::I32(
            match hex {
                Some(h) => u32::from_str_radix(h, 16).map(|n| n as i32),
                None => word.parse::<i32>(),
            }
            .map_err(|_| bad())?,
        ),
        ValType::I64 => Val::I64(
            match hex {
                Some(h) => u64::from_str_radix(h, 16).map(|n| n as i64),
                None => word.parse::<i64>(),
            }
            .map_err(|_| bad())?,
        ),
        ValType::F32 => Val::F32(word.parse::<f32>().map_err(|_| bad())?.to_bits()),
        ValType::F64 => Val::F64(word.parse::<f64>().map_err(|_| bad())?.to_bits()),
        other => bail!(
            "`--invoke {name}`: a parameter of type {other} cannot be written on the command line"
        ),
    })
}
