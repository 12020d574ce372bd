//! The server's shared state: the runner new requests go to (swapped by a reload or the
//! tiered start), the places under `--max-concurrent-requests` and
//! `--max-concurrent-connections`, how pressed they are, and what a new runner is made of. No
//! entry point and no protocol: `serve` makes it, `request` and `connection` read it.

use crate::args::HttpProxyArgs;
use crate::output::Instances;
use crate::runner::{Recipe, Runner};
use crate::wait::pressed;
use anyhow::Result;
use hyper::header::{HeaderName, HeaderValue};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Semaphore;
use worldhost_core::code::kind::is_in_memory;
use worldhost_core::{Loaded, Settings};

/// What every request needs, shared.
pub(crate) struct Server {
    /// The code requests are served from; replaced once when provisional code is completed.
    pub(crate) runner: RwLock<Arc<Runner>>,
    pub settings: Settings,
    /// The component's file name: the guest's argv[0] and the name in logs.
    pub name: String,
    pub args: HttpProxyArgs,
    pub permits: Arc<Semaphore>,
    /// How many permits `permits` was given: what the instance pool holds of the component,
    /// at most `--max-concurrent-requests`.
    pub(crate) capacity: AtomicUsize,
    /// One permit per open connection (`--max-concurrent-connections`, within the open-file limit).
    pub connections: Arc<Semaphore>,
    /// How many permits `connections` was given.
    pub(crate) connection_places: usize,
    /// How many connections are open.
    pub open: AtomicUsize,
    /// `--tls-cert` and `--tls-key`'s acceptor.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The headers of `-H`, added to every request.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Numbers the instances and prefixes their output.
    pub instances: Arc<Instances>,
    /// What reloading the component needs.
    pub reloads: Reloads,
    /// The words after the component: with `args` and `settings`, what a runner for new code
    /// (Cranelift's, or a reload's) is made with.
    pub guest_args: Vec<String>,
}

impl Server {
    /// A runner for `loaded` (the full code of the start's, or a reload's), made as the first
    /// was, named `version`.
    pub(crate) fn runner_for(
        &self,
        loaded: &Loaded,
        version: Arc<OnceLock<String>>,
    ) -> Result<(Runner, usize)> {
        Runner::new(loaded, &self.recipe(), version)
    }

    /// What a runner is made of.
    pub(crate) fn recipe(&self) -> Recipe<'_> {
        Recipe {
            args: &self.args,
            settings: &self.settings,
            guest_args: &self.guest_args,
            instances: &self.instances,
        }
    }

    /// How many connections are open.
    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// How long a new connection may be idle until its first request (see
    /// `--header-read-timeout`): the flag's duration, or under pressure (more than half the
    /// connection places taken) [`pressed`]. A client that opens connections and sends nothing
    /// (or trickles) then holds each for seconds, not the full bound, while healthy clients,
    /// which send their request at once, wait in the backlog for seconds at most. Behind a load
    /// balancer every connection comes from one address: a bound per peer would cut it off,
    /// this does not.
    pub(crate) fn first_idle_bound(&self) -> Duration {
        let full = self.args.header_read_timeout;
        let free = self.connections.available_permits();
        match free < self.connection_places / 2 {
            true => pressed(full),
            false => full,
        }
    }

    /// Whether more than half the request places (`--max-concurrent-requests`, or what the
    /// pool holds) are taken: then a new request's body gets [`pressed`]
    /// `--body-read-timeout`, and an HTTP/2 connection past its share has its stream refused.
    pub(crate) fn requests_pressed(&self) -> bool {
        let places = self.capacity.load(Ordering::Relaxed);
        self.permits.available_permits() < places / 2
    }

    /// Gives `permits` `holds` permits in all (the pool of new code may hold another number).
    fn resize_permits(&self, holds: usize) {
        let before = self.capacity.load(Ordering::Relaxed);
        if holds > before {
            self.permits.add_permits(holds - before);
            self.capacity.store(holds, Ordering::Relaxed);
        } else {
            // Only free permits can be forgotten: with requests in flight, fewer may be. The
            // count kept is what was really left, so the next resize starts from the truth
            // (meanwhile a request past the new pool gets its 503 from the pool).
            let forgotten = self.permits.forget_permits(before - holds);
            self.capacity.store(before - forgotten, Ordering::Relaxed);
        }
    }

    /// The code a new request is served from.
    pub(crate) fn runner(&self) -> Arc<Runner> {
        self.runner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// New requests are served from `runner`, whose pool holds `holds`; those in flight finish
    /// on the old one. With `if_from`, only if the runner serving is still of that version (a
    /// reload may have come first); returns whether it was replaced.
    pub(crate) fn replace_runner(
        &self,
        runner: Runner,
        holds: usize,
        if_from: Option<&Arc<OnceLock<String>>>,
    ) -> bool {
        let mut serving = self.runner.write().unwrap_or_else(PoisonError::into_inner);
        if if_from.is_some_and(|from| !Arc::ptr_eq(from, &serving.version)) {
            return false;
        }
        self.resize_permits(holds);
        *serving = Arc::new(runner);
        true
    }
}

/// The file reloads read, and whether one is running.
pub(crate) struct Reloads {
    pub(crate) path: PathBuf,
    /// Whether a reload is running, and whether another was asked for meanwhile (it runs when
    /// the first is done, on the same thread).
    state: Mutex<ReloadState>,
}

#[derive(Default)]
pub(crate) struct ReloadState {
    pub running: bool,
    pub pending: bool,
}

impl Reloads {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            state: Mutex::default(),
        }
    }

    /// Why the file cannot be loaded again, if it cannot: it was read from stdin.
    pub(crate) fn cannot(&self) -> Option<String> {
        is_in_memory(&self.path).then(|| {
            "the component was read from stdin (`-`): there is no file to load again; give its \
             path instead"
                .to_string()
        })
    }

    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, ReloadState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
