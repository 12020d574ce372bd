//! The composition flags, shared by every subcommand that loads a component.

use std::path::PathBuf;
use worldhost_core::code::compose::Pieces;

/// `--middleware` and `--plug`: components composed with the one given, before it is compiled.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Composition")]
pub struct ComposeArgs {
    /// Put the middleware PATH in front of the component: its imports that it also exports
    /// (`wasi:http/incoming-handler`, `wasi:http/handler`) are filled by the component's
    ///
    /// May be repeated: the first given is the outermost, each forwarding to the next, the
    /// component last. The pieces are composed into one component before it is compiled, as
    /// `wac` composes them; `worldhost compose` writes it.
    #[arg(long = "middleware", value_name = "PATH")]
    pub middleware: Vec<PathBuf>,

    /// Fill the component's imports that the component PATH exports with its exports, as
    /// `wac plug` does
    ///
    /// An import is filled by an export of the same interface at a compatible version whose
    /// types fit; a plug that fills nothing is an error. May be repeated.
    #[arg(long = "plug", value_name = "PATH")]
    pub plugs: Vec<PathBuf>,
}

impl ComposeArgs {
    /// The pieces to compose.
    pub fn pieces(&self) -> Pieces {
        Pieces {
            middleware: self.middleware.clone(),
            plugs: self.plugs.clone(),
        }
    }
}
