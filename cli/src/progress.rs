//! A spinner on stderr while a compilation takes longer than a moment: the file's name and the
//! time so far. Only when stderr is a terminal; a pipe or a file gets nothing.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use worldhost_core::load::Progress;

/// How long a compilation runs before the spinner appears: a small component compiles within
/// it, and a spinner that flashes for a frame is noise.
const MOMENT: Duration = Duration::from_millis(300);

/// Shows a spinner for each compilation core reports.
pub(crate) struct Spinner;

impl Progress for Spinner {
    fn compiling(&self, name: &str) -> Option<Box<dyn Send>> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{spinner} Compiling {msg} ({elapsed})")
                .expect("a valid template"),
        );
        bar.set_message(name.to_owned());
        let (done, finished) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if finished.recv_timeout(MOMENT) == Err(mpsc::RecvTimeoutError::Timeout) {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                bar.enable_steady_tick(Duration::from_millis(100));
                let _ = finished.recv();
            }
            bar.finish_and_clear();
        });
        Some(Box::new(Shown {
            done: Some(done),
            thread: Some(thread),
        }))
    }
}

/// A spinner shown (or waiting its moment); dropping it clears it.
struct Shown {
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Shown {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
