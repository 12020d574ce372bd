//! A command line made from a component's exports: `worldhost run calc.wasm add 1 2` calls
//! `add(1, 2)`. For a component that exports functions and is not a command (a command takes
//! the arguments itself), the first argument after the component names the function and each
//! further one is a WAVE value of the next parameter's type; a string or char parameter takes
//! the bare text as well (`greet Ada` = `greet("Ada")`). `worldhost run calc.wasm --help` lists
//! the functions.

use crate::lookup::find;
use anyhow::Result;
use std::fmt::Write as _;
use wasmtime::component::Val;
use wasmtime::component::types::Type;
use wasmtime::component::wasm_wave;
use worldhost_core::{Function, Loaded};

/// Whether the arguments ask for the list of functions.
pub(crate) fn wants_help(args: &[String]) -> bool {
    matches!(args, [one] if one == "--help" || one == "-h")
}

/// The functions, with their signatures, and how to call one.
pub(crate) fn help(loaded: &Loaded) -> String {
    let name = &loaded.name;
    let mut out = format!(
        "{name} exports these functions. Call one with `worldhost run {name} FUNCTION ARG…`: each \
         ARG is a WAVE value of the parameter's type (a string may be given bare), or with \
         `--invoke 'FUNCTION(ARG, …)'`.\n\n"
    );
    let functions: Vec<&Function> = loaded.world.exported_functions().collect();
    for function in functions {
        let _ = writeln!(
            out,
            "  {} {}",
            function.qualified_name(),
            function.signature()
        );
    }
    out
}

/// The WAVE call that `FUNCTION ARG…` stands for.
pub(crate) fn call_from_args(loaded: &Loaded, args: &[String]) -> Result<String> {
    let (name, values) = args.split_first().expect("called with arguments");
    let found = find(loaded, name)?;
    let types: Vec<Type> = found.ty.params().map(|(_, t)| t).collect();
    let values: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(at, value)| match types.get(at) {
            Some(ty @ (Type::String | Type::Char)) if !is_wave(ty, value) => {
                quote(value, matches!(ty, Type::Char))
            }
            _ => value.clone(),
        })
        .collect();
    Ok(format!("{name}({})", values.join(", ")))
}

fn is_wave(ty: &Type, value: &str) -> bool {
    wasm_wave::from_str::<Val>(ty, value).is_ok()
}

/// `text` as a WAVE string (or char) literal, quoted by wasm-wave itself.
fn quote(text: &str, char: bool) -> String {
    let mut chars = text.chars();
    let value = match (char, chars.next(), chars.next()) {
        (true, Some(c), None) => Val::Char(c),
        _ => Val::String(text.into()),
    };
    wasm_wave::to_string(&value).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_text_is_quoted_as_wave() {
        assert_eq!(quote(r#"a "b" \ c"#, false), r#""a \"b\" \\ c""#);
        assert_eq!(quote("'", true), r"'\''");
        assert_eq!(quote("x\ny", false), r#""x\ny""#);
    }
}
