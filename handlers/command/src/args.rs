//! The command handler's own flags.

/// Flags of the `command` handler.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Command options")]
pub(crate) struct CommandArgs {
    /// The guest's argv[0] (default: the component's file name, without its directories)
    #[arg(long, value_name = "NAME")]
    pub argv0: Option<String>,
}
