//! A spinner on stderr while a compilation takes longer than a moment: the file's name and the
//! time so far. Only when stderr is a terminal; a pipe or a file gets nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::mpsc;
use std::time::Duration;

/// How long a compilation runs before the spinner appears: a small component compiles within
/// it, and a spinner that flashes for a frame is noise.
const MOMENT: Duration = Duration::from_millis(300);

/// Runs `compile`, showing a spinner for `name` if it takes longer than [`MOMENT`].
pub fn while_compiling<T>(name: &str, compile: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return compile();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{spinner} Compiling {msg} ({elapsed})")
            .expect("a valid template"),
    );
    bar.set_message(name.to_owned());
    let (done, finished) = mpsc::channel::<()>();
    let shown = bar.clone();
    let spinner = std::thread::spawn(move || {
        if finished.recv_timeout(MOMENT) == Err(mpsc::RecvTimeoutError::Timeout) {
            shown.set_draw_target(ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(100));
            let _ = finished.recv();
        }
        shown.finish_and_clear();
    });
    let result = compile();
    drop(done);
    let _ = spinner.join();
    result
}
