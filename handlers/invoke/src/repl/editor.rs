//! The terminal's side of the REPL: tab completion of names (rustyline) and the history kept
//! between sessions, in a directory only the user can write.

use std::sync::{Arc, Mutex};
use worldhost_core::code::private_dir::PrivateDir;

/// Tab completion of function names, bound names and commands.
pub(crate) struct Completion(pub(crate) Arc<Mutex<Vec<String>>>);

impl rustyline::completion::Completer for Completion {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let start = line[..pos]
            .rfind(|c: char| c.is_whitespace() || "(,=".contains(c))
            .map_or(0, |at| at + 1);
        let word = &line[start..pos];
        let names = self.0.lock().expect("not poisoned");
        Ok((
            start,
            names
                .iter()
                .filter(|n| n.starts_with(word))
                .cloned()
                .collect(),
        ))
    }
}

impl rustyline::hint::Hinter for Completion {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completion {}
impl rustyline::validate::Validator for Completion {}
impl rustyline::Helper for Completion {}

/// The REPL's history, `$XDG_DATA_HOME/worldhost/repl-history`, in a directory of the user's
/// own (created 0700; see [`PrivateDir`]): a directory or file that is a link, another user's, or
/// writable by others is not used (a warning says why), so that a session's lines are neither
/// written through a link nor read from someone else's file.
pub(crate) struct History(PrivateDir);

impl History {
    const FILE: &str = "repl-history";

    pub(crate) fn open() -> Option<History> {
        let dir = dirs::data_dir()?.join("worldhost");
        let opened = PrivateDir::open(&dir, true).and_then(|dir| {
            let dir = dir.expect("a created directory is there");
            dir.check_file(Self::FILE)
                .map_err(|e| e.context(format!("`{}`", dir.path().join(Self::FILE).display())))?;
            Ok(History(dir))
        });
        opened
            .inspect_err(|e| tracing::warn!("the REPL keeps no history: {e:#}"))
            .ok()
    }

    /// Whether the file may still be written: nothing put a link in its place meanwhile.
    pub(crate) fn still_sound(&self) -> bool {
        self.0
            .check_file(Self::FILE)
            .inspect_err(|e| tracing::warn!("the REPL's history is not saved: {e:#}"))
            .is_ok()
    }

    pub(crate) fn path(&self) -> std::path::PathBuf {
        self.0.path_to(Self::FILE)
    }
}
