//! What stops a request from outside its guest: its bodies (too large, too slow, the client
//! gone) set it, the guest's task waits on it.

use std::sync::Arc;
use tokio::sync::watch;

/// Why a request was stopped from outside its guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Its body ran past `--max-request-body-size`.
    BodyTooLarge,
    /// Its client sent no body bytes for `--body-read-timeout`.
    BodyTimeout,
    /// Its client sent its body slower than `--body-min-rate`.
    BodyTooSlow,
    /// Its client went away, or did not read the response (`--response-write-timeout`).
    ClientGone,
}

/// Stops one request: set by its bodies, awaited by its guest's task.
#[derive(Clone)]
pub(crate) struct Stopper(Arc<watch::Sender<Option<Stop>>>);

impl Stopper {
    pub(crate) fn new() -> Self {
        Self(Arc::new(watch::Sender::new(None)))
    }

    /// Stops the request, for the first reason given.
    pub(crate) fn stop(&self, why: Stop) {
        self.0.send_if_modified(|stop| {
            let first = stop.is_none();
            if first {
                *stop = Some(why);
            }
            first
        });
    }

    /// Why the request was stopped, if it was.
    pub(crate) fn stopped(&self) -> Option<Stop> {
        *self.0.borrow()
    }

    /// Resolves once the request is stopped.
    pub(crate) fn wait(&self) -> impl Future<Output = Stop> + Send + 'static {
        let mut receiver = self.0.subscribe();
        async move {
            let stop = receiver.wait_for(Option::is_some).await.map(|stop| *stop);
            match stop {
                Ok(stop) => stop.expect("waited for"),
                // Every sender is gone: nothing can stop the request any more.
                Err(_) => std::future::pending().await,
            }
        }
    }
}
