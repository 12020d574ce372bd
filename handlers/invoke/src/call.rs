//! Parsing, typing and running the calls. Every call is parsed and typed before the component
//! is instantiated, so a typo in the third `--invoke` costs nothing; then they run in order on
//! one instance and each result is printed in WAVE as soon as it is known.

use crate::cli;
use crate::example::{passable, suggestion};
use crate::json::results_to_json;
use crate::lookup::{Found, find};
use anyhow::{Result, bail};
use std::ops::Range;
use std::process::ExitCode;
use wasmtime::component::Val;
use wasmtime::component::wasm_wave::parser::ParserError;
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::wasm_wave::wasm::DisplayFuncResults;
use worldhost_core::output::write_stdout;
use worldhost_core::{Calls, GuestLinker, Loaded, RunContext, block_on};

/// A call ready to run: the function and its typed arguments.
pub(crate) struct Prepared<'a> {
    found: Found<'a>,
    params: Vec<Val>,
}

pub(crate) fn run(cx: RunContext<'_>, args: &Calls) -> Result<ExitCode> {
    let loaded = cx.component;
    let prepared = if !args.calls.is_empty() {
        args.calls
            .iter()
            .map(|call| {
                prepare(loaded, call).map_err(|e| with_names(loaded, e, |l| prepare(l, call)))
            })
            .collect::<Result<Vec<_>>>()?
    } else if cli::wants_help(cx.args) {
        write_stdout(&cli::help(loaded))?;
        return Ok(ExitCode::SUCCESS);
    } else if !cx.args.is_empty() {
        // `worldhost run calc.wasm add 1 2`.
        let shown = format!("`{}`", cx.args.join(" "));
        let prepared = cli::call_from_args(loaded, cx.args)
            .and_then(|call| prepare_as(loaded, &call, &shown))
            .map_err(|e| {
                with_names(loaded, e, |l| {
                    prepare_as(l, &cli::call_from_args(l, cx.args)?, &shown)
                })
            })?;
        vec![prepared]
    } else {
        // Only reachable with `--handler invoke`: a claim without a call is never made.
        match suggestion(&loaded.world) {
            Some(s) => bail!("`--handler invoke` needs `--invoke 'CALL'`; {s}"),
            None => bail!(
                "`--handler invoke` cannot run `{}`: it exports no function",
                loaded.path.display()
            ),
        }
    };

    if concurrent(loaded) {
        return run_concurrent(&cx, prepared, args);
    }
    let mut guest = GuestLinker::new(&cx)?.instantiate(())?;
    for call in prepared {
        let func = (guest.instance)
            .get_func(&mut guest.store, call.found.index)
            .expect("the export index comes from this component");
        let mut results = vec![Val::Bool(false); call.found.ty.results().len()];
        if let Err(e) = func.call(&mut guest.store, &call.params, &mut results) {
            return Err(guest.ended(e));
        }
        if let Some(exit) = report(&call, &results, args)? {
            return Ok(exit);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether calls into the component go through the store's event loop: it exports an
/// `async func`, or uses WASI 0.3 (whose host functions are concurrent). Decided once for
/// every call of a run or a REPL session.
pub(crate) fn concurrent(loaded: &Loaded) -> bool {
    loaded.world.exported_functions().any(|f| f.ty.async_()) || loaded.world.uses_wasi_p3()
}

/// The calls, each in the store's event loop (as `wasmtime run --invoke` calls them), on a
/// runtime of one thread.
fn run_concurrent(
    cx: &RunContext<'_>,
    prepared: Vec<Prepared<'_>>,
    args: &Calls,
) -> Result<ExitCode> {
    block_on(async {
        let mut guest = GuestLinker::new_async(cx)?.instantiate_async(()).await?;
        for call in prepared {
            let func = (guest.instance)
                .get_func(&mut guest.store, call.found.index)
                .expect("the export index comes from this component");
            let mut results = vec![Val::Bool(false); call.found.ty.results().len()];
            let params = &call.params;
            guest
                .run_concurrent(async |store| {
                    func.call_concurrent(store, params, &mut results).await
                })
                .await?;
            if let Some(exit) = report(&call, &results, args)? {
                return Ok(exit);
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints a call's results, one line per call (a function without results included: `()` as
/// wasmtime prints it, `null` in JSON); returns the exit status if the run ends here (stdout
/// closed, or `--fail-on-err` and an `err(…)`).
fn report(call: &Prepared<'_>, results: &[Val], args: &Calls) -> Result<Option<ExitCode>> {
    let line = if args.json {
        results_to_json(results).to_string()
    } else {
        DisplayFuncResults(results).to_string()
    };
    if !write_stdout(&format!("{line}\n"))? {
        return Ok(Some(ExitCode::SUCCESS));
    }
    if args.fail_on_err && matches!(results, [Val::Result(Err(_))]) {
        tracing::info!(call = %call.found.function.qualified_name(), "returned err; exiting 1");
        return Ok(Some(ExitCode::FAILURE));
    }
    Ok(None)
}

/// The error `again` gives on `loaded` with its signatures in the component's own WIT names
/// (decoded only now: an error is worth the cost), or `error` as it was.
fn with_names(
    loaded: &Loaded,
    error: anyhow::Error,
    again: impl FnOnce(&Loaded) -> Result<Prepared<'_>>,
) -> anyhow::Error {
    let named = loaded.with_wit_names();
    match again(&named) {
        Err(named_error) => named_error,
        Ok(_) => error,
    }
}

/// Parses `call`, finds its function and types its arguments.
pub(crate) fn prepare<'a>(loaded: &'a Loaded, call: &str) -> Result<Prepared<'a>> {
    prepare_as(loaded, call, &format!("`--invoke {call}`"))
}

/// [`prepare`], with errors that name the call as `shown` (what the user typed).
fn prepare_as<'a>(loaded: &'a Loaded, call: &str, shown: &str) -> Result<Prepared<'a>> {
    let untyped = UntypedFuncCall::parse(call).map_err(|e| {
        anyhow::anyhow!(
            "{shown} is not a WAVE function call: {}\n{}\nwrite it as `name(arg, …)`, \
             e.g. `--invoke 'add(1, 2)'`, with parentheses even for no arguments",
            describe(&e),
            caret(call, e.span())
        )
    })?;
    let found = find(loaded, untyped.name())?;
    let function = found.function;
    // Each parameter and result with its WIT type as written, and what it is.
    let params = (found.ty.params().map(|(_, t)| t)).zip(
        function
            .params
            .iter()
            .map(|(n, t)| ("takes", format!("{n}: {t}"))),
    );
    let results = (found.ty.results()).zip(function.results.iter().map(|t| ("returns", t.clone())));
    if let Some((_, (verb, written))) = params.chain(results).find(|(t, _)| !passable(t)) {
        bail!(
            "`{}` {verb} `{written}`, which holds a resource, stream or future: a handle the \
             command line cannot pass or print (`{function}`); {}",
            function.qualified_name(),
            if written.contains("stream<") || written.contains("future<") {
                "call it from a component instead"
            } else {
                "`worldhost repl` keeps resource handles by name"
            }
        );
    }
    let types: Vec<_> = found.ty.params().map(|(_, t)| t).collect();
    let params = untyped.to_wasm_params::<Val>(types.iter()).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: the arguments do not fit `{function}`: {}\n{}",
            describe(&e),
            caret(call, e.span())
        )
    })?;
    Ok(Prepared { found, params })
}

/// A WAVE error's kind and detail, without the span wasm-wave appends.
pub(crate) fn describe(error: &ParserError) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}

/// The call, and a caret under the span an error points at.
pub(crate) fn caret(call: &str, span: Range<usize>) -> String {
    let start = call.get(..span.start).map_or(0, |s| s.chars().count());
    let width = call
        .get(span.clone())
        .map_or(1, |s| s.chars().count())
        .max(1);
    format!("    {call}\n    {}{}", " ".repeat(start), "^".repeat(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_points_under_the_span() {
        assert_eq!(caret("add(1, x)", 7..8), "    add(1, x)\n           ^");
        assert_eq!(caret("f()", 3..3), "    f()\n       ^");
    }
}
