//! `--invoke NAME` on a core module, as wasmtime runs it: one call of a bare export, its
//! arguments the words after the module (integers in decimal or `0x` hexadecimal, floats in
//! decimal), its results printed one per line. The flags are the invoke handler's, read as
//! core's [`Calls`].

use anyhow::{Result, bail};
use std::process::ExitCode;
use wasmtime::{Val, ValType};
use worldhost_core::{Calls, RunContext};

pub(crate) fn run(cx: RunContext<'_>, args: &Calls) -> Result<ExitCode> {
    let [name] = args.calls.as_slice() else {
        bail!("a core module takes one `--invoke NAME` per run, as in wasmtime");
    };
    for (given, flag) in [(args.json, "--json"), (args.fail_on_err, "--fail-on-err")] {
        if given {
            bail!(
                "`{flag}` is for a component's calls; a core module's `--invoke` prints its \
                 results one per line, as wasmtime does"
            );
        }
    }
    // The words after the module are the call's arguments, not the guest's argv.
    let (loaded, words) = (cx.component, cx.args);
    let mut guest = crate::run::instantiate(&RunContext { args: &[], ..cx })?;
    let Some(func) = guest.instance.get_func(&mut guest.store, name) else {
        bail!(
            "`--invoke {name}`: `{}` exports no function `{name}`; it exports {}",
            loaded.path.display(),
            loaded.world.export_list()
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
        .map(|(ty, word)| parse_value(name, ty, word))
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
