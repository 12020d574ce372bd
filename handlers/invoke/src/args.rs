//! The invoke handler's own flags.

/// Flags of the `invoke` handler.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Invoke options")]
pub(crate) struct InvokeArgs {
    /// Call an exported function: `--invoke 'add(1, 2)'` (WAVE syntax)
    ///
    /// The arguments are WAVE values typed against the function's parameters; trailing
    /// `option` arguments may be left out. The name is the function's (`add`), or qualified by
    /// its interface (`my:calc/ops.mul@1.0.0`, `ops.mul`). May be repeated: the calls run in
    /// order on one instance, each result on its own line. Quote it for the shell.
    #[arg(long = "invoke", value_name = "CALL")]
    pub calls: Vec<String>,

    /// Print each call's result as JSON instead of WAVE, for tools (with `--invoke`, or a call
    /// written as `FUNCTION ARG…` after the component)
    ///
    /// Records are objects, lists and tuples arrays, variants `{"tag": …, "value": …}`,
    /// results `{"ok": …}` or `{"err": …}`, options `null` or their value, enums strings,
    /// flags arrays of names; nan and ±inf are the strings "nan", "inf", "-inf".
    #[arg(long)]
    pub json: bool,

    /// Exit with status 1 when a call returns `err(…)`, after printing it; later calls do not
    /// run (wasmtime always exits 0)
    #[arg(long)]
    pub fail_on_err: bool,
}

/// Whether `--invoke` was given (never under `inspect`, which has no handler flags).
pub(crate) fn calls_given(asked: &worldhost_core::Asked<'_>) -> bool {
    (asked.flags.get::<worldhost_core::Calls>()).is_some_and(|args| !args.calls.is_empty())
}
