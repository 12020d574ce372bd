//! `worldhost handlers`: every registered handler, what it recognises, and its own flags.

use anyhow::Result;
use std::fmt::Write as _;
use std::process::ExitCode;
use worldhost_core::handlers;

pub(crate) fn list() -> Result<ExitCode> {
    let mut out = String::new();
    for handler in handlers() {
        writeln!(out, "{}", handler.name())?;
        writeln!(out, "    {}", handler.summary())?;
        writeln!(out, "    recognises: {}", handler.looks_for())?;
        let flags = handler.augment_args(clap::Command::new(handler.name()));
        // Each flag with its value and default, the help in one column.
        let rows: Vec<(String, String)> = (flags.get_arguments())
            .filter_map(|arg| {
                let long = arg.get_long()?;
                let takes_value = arg.get_action().takes_values();
                let value = (arg.get_value_names())
                    .filter(|_| takes_value)
                    .map(|names| format!(" <{}>", names.join(" ")))
                    .unwrap_or_default();
                let mut help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                let defaults: Vec<String> = (arg.get_default_values().iter())
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                if takes_value && !defaults.is_empty() {
                    write!(help, " [default: {}]", defaults.join(", ")).ok()?;
                }
                Some((format!("--{long}{value}"), help))
            })
            .collect();
        let width = rows.iter().map(|(flag, _)| flag.len()).max().unwrap_or(0);
        for (flag, help) in rows {
            writeln!(out, "    {flag:<width$}  {help}")?;
        }
    }
    crate::print_stdout(&out)
}
