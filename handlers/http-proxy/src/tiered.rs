//! The tiered start: a server whose code was compiled by Winch (the cache did not hold
//! Cranelift's) serves from it at once, while Cranelift's code compiles in the background.

use crate::state::Server;
use std::sync::Arc;
use worldhost_core::Loaded;
use worldhost_core::engine::cache_for;

/// Compiles the full code of provisional `loaded` (Cranelift's) on a thread in the
/// background, on one core, so that requests are served meanwhile; then new requests are
/// served from it (those in flight finish on the provisional code). It goes into the cache, so
/// the next start begins with it. (Not at a lower priority: under full load a niced compile
/// would get almost no CPU, and the server would stay on the provisional code for minutes.)
/// Should it fail, the server goes on with the provisional code, which is as safe, only
/// slower.
pub(crate) fn complete_in_background(server: &Arc<Server>, loaded: &Loaded) {
    let server = server.clone();
    let loaded = loaded.clone();
    let version = server.runner().version.clone();
    let from = version.clone();
    let spawned = std::thread::Builder::new()
        .name("worldhost-compile".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let completed = loaded
                .completed(cache_for(&server.settings).as_ref())
                .and_then(|full| server.runner_for(&full, version));
            match completed {
                Ok((runner, holds)) => {
                    if !server.replace_runner(runner, holds, Some(&from)) {
                        tracing::info!("a reload came first: its version serves on");
                        return;
                    }
                    tracing::info!(
                        elapsed = ?started.elapsed(),
                        "serving from the code compiled by Cranelift"
                    );
                }
                Err(e) => tracing::warn!(
                    "cannot compile `{}` with Cranelift ({e:#}); serving on from Winch's code",
                    server.name
                ),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the background compile ({e}); serving from Winch's code");
    }
}
