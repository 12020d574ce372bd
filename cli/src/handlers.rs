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
        for arg in flags.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let value = arg
                .get_value_names()
                .map(|names| format!(" <{}>", names.join(" ")))
                .unwrap_or_default();
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            writeln!(out, "    --{long}{value}    {help}")?;
        }
    }
    crate::print_stdout(&out)
}
