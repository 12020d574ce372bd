//! Reloading the component under a running server (`--watch`, SIGHUP): the file is loaded
//! again on a thread of its own (compiled, or taken from the cache) while the old version
//! serves; once it has loaded and is still a component this handler serves, new requests go to
//! it and those in flight finish on the old one. A version that fails to load leaves the old
//! one serving, and the log says why. Each version is named by the start of its file's BLAKE3
//! hash, in the reload's line and in each request's log line.
//!
//! `--watch` polls the file's size, modification time and inode: that sees a file written in
//! place as well as one renamed over it (the atomic way to deploy), also across a directory
//! swapped under a symlink, where inotify would watch the old inode.

use crate::server::{Runner, Server};
use anyhow::{Context as _, Result, anyhow};
use clap::ArgMatches;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use worldhost_core::engine::cache_for;
use worldhost_core::load::Quiet;
use worldhost_core::{Asked, Handler as _, RunContext, RunRequest, Settings};

/// How often `--watch` looks at the file.
const POLL: Duration = Duration::from_millis(200);

/// What a reload needs of the command line.
pub(crate) struct Reloads {
    path: PathBuf,
    matches: ArgMatches,
    args: Vec<String>,
    /// A reload is running.
    busy: AtomicBool,
    /// Another was asked for meanwhile: it runs when the first is done.
    again: AtomicBool,
    /// One reload at a time replaces the runner.
    lock: Mutex<()>,
}

impl Reloads {
    pub(crate) fn new(cx: &RunContext<'_>) -> Self {
        Self {
            path: cx.component.path.clone(),
            matches: cx.matches.clone(),
            args: cx.args.to_vec(),
            busy: AtomicBool::new(false),
            again: AtomicBool::new(false),
            lock: Mutex::new(()),
        }
    }

    /// Why the file cannot be loaded again, if it cannot: it was read from stdin.
    pub(crate) fn cannot(&self) -> Option<String> {
        self.path.starts_with("/proc/self/fd").then(|| {
            "the component was read from stdin (`-`): there is no file to load again; give its \
             path instead"
                .to_string()
        })
    }
}

/// The start of the BLAKE3 hash of `bytes`: a version's name.
fn version_of(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..12].to_string()
}

/// Sets `version` to the hash of the file at `path`, on a thread of its own.
pub(crate) fn hash_in_background(path: &Path, version: &Arc<OnceLock<String>>) {
    let (path, version) = (path.to_path_buf(), version.clone());
    let spawned = std::thread::Builder::new()
        .name("worldhost-hash".into())
        .spawn(move || match std::fs::read(&path) {
            Ok(bytes) => {
                let _ = version.set(version_of(&bytes));
            }
            Err(e) => tracing::debug!("cannot hash `{}`: {e}", path.display()),
        });
    if let Err(e) = spawned {
        tracing::debug!("cannot start hashing the component: {e}");
    }
}

/// Loads the component again in the background (SIGHUP, or a change `--watch` saw), unless a
/// reload is running already, in which case another follows it.
pub(crate) fn reload(server: &Arc<Server>, why: &'static str) {
    let reloads = &server.reloads;
    if let Some(cannot) = reloads.cannot() {
        tracing::error!("{why}: cannot reload: {cannot}");
        return;
    }
    if reloads.busy.swap(true, Ordering::AcqRel) {
        reloads.again.store(true, Ordering::Release);
        return;
    }
    let reloading = server.clone();
    let spawned = std::thread::Builder::new()
        .name("worldhost-reload".into())
        .spawn(move || {
            let server = reloading;
            let reloads = &server.reloads;
            loop {
                reload_now(&server, why);
                if reloads.again.swap(false, Ordering::AcqRel) {
                    continue;
                }
                reloads.busy.store(false, Ordering::Release);
                // One asked for between the swap and the store found the reload busy: it is
                // this thread's to run, unless another thread has taken it.
                if !reloads.again.load(Ordering::Acquire)
                    || reloads.busy.swap(true, Ordering::AcqRel)
                {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("{why}: cannot start the reload ({e}); serving on");
        server.reloads.busy.store(false, Ordering::Release);
    }
}

/// One reload, logged: its outcome is a line on stderr either way.
fn reload_now(server: &Arc<Server>, why: &str) {
    let started = Instant::now();
    let _one = server
        .reloads
        .lock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let current = server.runner().version.clone();
    let old = current.get().cloned().unwrap_or_else(|| "?".into());
    match load(server) {
        Ok(None) => tracing::info!("{why}: `{}` is unchanged ({old})", server.name),
        Ok(Some((runner, holds))) => {
            let new = runner.version.get().cloned().unwrap_or_default();
            server.replace_runner(runner, holds, None);
            eprintln!(
                "{why}: reloaded `{}`: version {new} serves new requests (was {old}; {} ms)",
                server.name,
                started.elapsed().as_millis()
            );
        }
        Err(e) => tracing::error!(
            "{why}: cannot reload `{}`: {e:#}; version {old} serves on",
            server.name
        ),
    }
}

/// The runner for the file as it is now, or `None` if it is the version already serving.
fn load(server: &Server) -> Result<Option<(Runner, usize)>> {
    let reloads = &server.reloads;
    let path = &reloads.path;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let version = version_of(&bytes);
    if server.runner().version.get() == Some(&version) {
        return Ok(None);
    }
    drop(bytes);
    let settings: &Settings = &server.settings;
    let cache = cache_for(settings);
    let prepared = worldhost_core::prepare(&RunRequest {
        path,
        settings,
        asked: Asked {
            handler: Some(crate::HttpProxyHandler.name()),
            guest_args: false,
            matches: &reloads.matches,
        },
        cache: cache.as_ref(),
        progress: &Quiet,
        // The old version serves meanwhile: the new one is compiled whole.
        provisional: false,
    })?;
    let choice = prepared.choice.map_err(|e| anyhow!("{e:#}"))?;
    settings.check_for(choice.handler.name(), prepared.loaded.world.kind)?;
    let cx = RunContext {
        component: &prepared.loaded,
        matches: &reloads.matches,
        settings,
        args: &reloads.args,
    };
    let (runner, holds) = Runner::new(
        &cx,
        &server.args,
        &server.instances,
        Arc::new(OnceLock::from(version)),
    )?;
    Ok(Some((runner, holds)))
}

/// What `--watch` compares: the file's size, modification time and inode.
fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?, meta.ino()))
}

/// `--watch`: a thread that reloads the component once its file has changed and then held
/// still for one poll (a file being written is not loaded half-written).
pub(crate) fn watch(server: &Arc<Server>) -> Result<()> {
    if let Some(cannot) = server.reloads.cannot() {
        anyhow::bail!("`--watch`: {cannot}");
    }
    let server = Arc::downgrade(server);
    let path = match server.upgrade() {
        Some(server) => server.reloads.path.clone(),
        None => return Ok(()),
    };
    std::thread::Builder::new()
        .name("worldhost-watch".into())
        .spawn(move || {
            let mut last = stamp(&path);
            let mut changed = None;
            loop {
                std::thread::sleep(POLL);
                let Some(server) = server.upgrade() else {
                    return;
                };
                let now = stamp(&path);
                if now != last {
                    // Changed: wait until it holds still.
                    last = now;
                    changed = Some(());
                } else if changed.take().is_some() && now.is_some() {
                    reload(&server, "--watch");
                }
            }
        })
        .context("cannot start watching the component's file")?;
    Ok(())
}
