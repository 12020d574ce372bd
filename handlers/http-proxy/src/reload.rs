//! Reloading the component under a running server (`--watch`, SIGHUP): the file is loaded
//! again on a thread of its own (compiled, or taken from the cache) while the old version
//! serves; once it has loaded and is still a component this handler serves, new requests go to
//! it and those in flight finish on the old one. A version that fails to load leaves the old
//! one serving, and the log says why. Each version is named by the start of its file's BLAKE3
//! hash, in the reload's line and in each request's log line.
//!
//! A reload compiles exactly the bytes it hashed: they are read once, into an anonymous file in
//! memory (a memfd) that the load reads, so a file replaced meanwhile cannot be served under
//! the other's name, and a precompiled artifact is mapped from that copy, never from the
//! user's file, which may be rewritten under it.
//!
//! With `--middleware` or `--plug`, every file of the composition is watched and hashed into
//! the version (the pieces are read again when the copy is composed).
//!
//! `--watch` polls the file's size, modification and change times and inode: that sees a file
//! written in place as well as one renamed over it (the atomic way to deploy), also across a
//! directory swapped under a symlink, where inotify would watch the old inode.

use crate::runner::Runner;
use crate::state::Server;
use anyhow::{Context as _, Result};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use worldhost_core::code::kind::{Reading, in_memory, read_file};
use worldhost_core::engine::cache_for;
use worldhost_core::load::Quiet;
use worldhost_core::{Asked, Handler as _, HandlerFlags, RunRequest, Settings};

/// How often `--watch` looks at the file.
const POLL: Duration = Duration::from_millis(200);

/// The start of the BLAKE3 hash of `bytes` and of the composition's other files (`pieces`,
/// see [`files`]): a version's name.
fn version_of(bytes: &[u8], pieces: &[PathBuf]) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(bytes);
    for piece in pieces {
        hasher.update(&read_file(piece, Reading::RegularOnly)?);
    }
    Ok(hasher.finalize().to_hex()[..12].to_string())
}

/// The files the server's component is made of: its own, then those composed with it.
fn files(server: &Server) -> Vec<PathBuf> {
    let pieces = server.settings.pieces.paths().cloned();
    std::iter::once(server.reloads.path.clone())
        .chain(pieces)
        .collect()
}

/// Loads the component again in the background (SIGHUP, or a change `--watch` saw), unless a
/// reload is running already, in which case another follows it.
pub(crate) fn reload(server: &Arc<Server>, why: &'static str) {
    let reloads = &server.reloads;
    if let Some(cannot) = reloads.cannot() {
        tracing::error!("{why}: cannot reload: {cannot}");
        return;
    }
    {
        let mut state = reloads.state();
        if state.running {
            state.pending = true;
            return;
        }
        state.running = true;
    }
    let reloading = server.clone();
    let spawned = std::thread::Builder::new()
        .name("worldhost-reload".into())
        .spawn(move || {
            let server = reloading;
            loop {
                reload_now(&server, why);
                let mut state = server.reloads.state();
                if !std::mem::take(&mut state.pending) {
                    state.running = false;
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("{why}: cannot start the reload ({e}); serving on");
        server.reloads.state().running = false;
    }
}

/// One reload, logged: its outcome is a line on stderr either way.
fn reload_now(server: &Arc<Server>, why: &str) {
    let started = Instant::now();
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
    let bytes = read_file(&reloads.path, Reading::RegularOnly)?;
    let version = version_of(&bytes, &files(server)[1..])?;
    if server.runner().version.get() == Some(&version) {
        return Ok(None);
    }
    let shown = reloads.path.display().to_string();
    let copy =
        in_memory(&shown, &bytes).context("cannot make a copy of the component in memory")?;
    let path = copy.path().to_path_buf();
    drop(bytes);
    let settings: &Settings = &server.settings;
    let cache = cache_for(settings);
    let prepared = worldhost_core::prepare(&RunRequest {
        path: &path,
        settings,
        asked: Asked {
            handler: Some(crate::HttpProxyHandler.name()),
            guest_args: false,
            // The handler is named: no other handler's flags are asked about.
            flags: &HandlerFlags::default(),
        },
        cache: cache.as_ref(),
        progress: &Quiet,
        // The old version serves meanwhile: the new one is compiled whole.
        provisional: false,
    })?;
    let (mut loaded, _) = prepared.runnable(settings)?;
    // Loaded again with concurrency support, if reuse needs it, from the copy that was hashed
    // (while it is still named as the copy): never from the user's file, which may have
    // changed since.
    if crate::runner::needs_concurrency(&loaded, &server.args, settings) {
        loaded = crate::runner::concurrent_code(&loaded, settings)?;
    }
    // Named as the file is (the guest's argv[0], the messages), not as its copy.
    loaded.path.clone_from(&reloads.path);
    loaded.name.clone_from(&server.name);
    server
        .runner_for(&loaded, Arc::new(OnceLock::from(version)))
        .map(Some)
}

/// What `--watch` compares: the file's size, modification and change times, and inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    inode: (u64, u64),
}

/// The stamps of `paths`, or `None` if one of them is missing.
fn stamp(paths: &[PathBuf]) -> Option<Vec<Stamp>> {
    use std::os::unix::fs::MetadataExt as _;
    (paths.iter())
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some(Stamp {
                len: meta.len(),
                modified: (meta.mtime(), meta.mtime_nsec()),
                changed: (meta.ctime(), meta.ctime_nsec()),
                inode: (meta.dev(), meta.ino()),
            })
        })
        .collect()
}

/// Whether the file was changed (written, renamed over, its metadata set) after `began`.
fn changed_since(stamp: &Stamp, began: SystemTime) -> bool {
    let (secs, nanos) = stamp.changed;
    let changed = u64::try_from(secs).ok().and_then(|s| {
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(s, u32::try_from(nanos).ok()?))
    });
    changed.is_none_or(|changed| changed >= began)
}

/// The first version's name, off the start's path: the file is read and hashed again, which
/// names what was loaded only if the file did not change since the run began (before it was
/// first read); otherwise the version is left unnamed, and `--watch` loads the file again.
/// Returns the stamps `--watch` starts from (`None`: reload at its first look).
fn first_version(paths: &[PathBuf], version: &OnceLock<String>) -> Option<Vec<Stamp>> {
    let before = stamp(paths)?;
    let bytes = read_file(&paths[0], Reading::RegularOnly).ok()?;
    let named = version_of(&bytes, &paths[1..]).ok()?;
    let after = stamp(paths)?;
    let began = worldhost_core::run_began();
    if before != after || before.iter().any(|stamp| changed_since(stamp, began)) {
        tracing::info!(
            "`{}` changed while it was loaded: its version is not named until it is reloaded",
            paths[0].display()
        );
        return None;
    }
    let _ = version.set(named);
    Some(before)
}

/// Names the first version and, with `--watch`, starts the thread that reloads the component
/// once its file has changed and then held still for one look (a file being written is not
/// loaded half-written).
pub(crate) fn start(server: &Arc<Server>) -> Result<()> {
    let watch = server.args.watch;
    if watch && let Some(cannot) = server.reloads.cannot() {
        anyhow::bail!("`--watch`: {cannot}");
    }
    let version = server.runner().version.clone();
    let paths = files(server);
    let server = Arc::downgrade(server);
    std::thread::Builder::new()
        .name("worldhost-watch".into())
        .spawn(move || {
            let mut last = first_version(&paths, &version);
            if !watch {
                return;
            }
            let mut changed = last.is_none();
            loop {
                std::thread::sleep(POLL);
                let Some(server) = server.upgrade() else {
                    return;
                };
                let now = stamp(&paths);
                if now != last {
                    // Changed: wait until it holds still.
                    last = now;
                    changed = true;
                } else if changed && now.is_some() {
                    changed = false;
                    reload(&server, "--watch");
                }
            }
        })
        .context("cannot start watching the component's file")?;
    Ok(())
}
