//! The one way to a run: load the file for the engine of the handler that will run it (the one
//! named, or the one its sketched world calls for, so that it is compiled once, in the right
//! engine), select the handler on the compiled world, and move the code if the guess was
//! wrong. `run`, `inspect` and `compile` go through [`prepare`].

use crate::engine::{EnginePlan, base_config};
use crate::handler::{Asked, Handler, handler_named, handlers};
use crate::load::{Loaded, Loader, Progress, Quiet, Target};
use crate::select::{Choice, select};
use crate::settings::Settings;
use crate::world::World;
use anyhow::{Result, bail};
use std::path::Path;
use worldhost_code::cache::Cache;
use worldhost_code::compose::compose;
use worldhost_code::kind::{precompiled_kind, read_wasm};

/// What a run is asked for.
pub struct RunRequest<'a> {
    /// The file.
    pub path: &'a Path,
    /// The shared settings.
    pub settings: &'a Settings,
    /// What the command line asks for: the handler it names, and the rest.
    pub asked: Asked<'a>,
    /// The compilation cache, if one is used.
    pub cache: Option<&'a Cache>,
    /// Told of compilations (the command line's spinner).
    pub progress: &'a dyn Progress,
    /// Whether the code may be compiled for a start engine (see [`EnginePlan::Tiered`]);
    /// `compile` wants the full code.
    pub provisional: bool,
}

/// A loaded file and the handler chosen for it.
pub struct Prepared {
    /// The code, in the engine of the chosen handler (or of the guessed one, when none was
    /// chosen).
    pub loaded: Loaded,
    /// The handler and why; or why none can run it (`inspect` shows it; `run` fails with it).
    pub choice: Result<Choice>,
}

impl Prepared {
    /// The code and its handler, checked against the settings (components-only keys): a run's.
    pub fn runnable(self, settings: &Settings) -> Result<(Loaded, Choice)> {
        let choice = self.choice?;
        settings.check_for(choice.handler.name(), self.loaded.world.kind)?;
        Ok((self.loaded, choice))
    }
}

/// Loads the file of `request` for the handler that will run it, and chooses that handler.
pub fn prepare(request: &RunRequest<'_>) -> Result<Prepared> {
    let settings = request.settings;
    let loader = Loader {
        cache: request.cache,
        allow_precompiled: settings.allow_precompiled,
        progress: request.progress,
    };
    let forced = request.asked.handler.and_then(handler_named);
    let path = request.path;
    let loaded = match precompiled_kind(path) {
        // An artifact decides its engine itself: each handler's engine is tried, the shared
        // one first, without concurrency support and then with it (the artifact records
        // which it was compiled with; the command line may have fixed it).
        Some(_) if !settings.pieces.is_empty() => bail!(
            "`{}` is a precompiled artifact, which cannot be composed; compose the .wasm files \
             (`worldhost compile --middleware …` compiles the composition)",
            worldhost_code::kind::shown(path)
        ),
        Some(kind) => {
            let concurrency: &[bool] = match settings.concurrency_auto {
                true => &[false, true],
                false => &[false],
            };
            let targets: Vec<Target> = (concurrency.iter().copied())
                .flat_map(|concurrent| match forced {
                    Some(handler) => vec![target(settings, Some(handler), false, concurrent)],
                    None => std::iter::once(target(settings, None, false, concurrent))
                        .chain(handlers().into_iter().filter_map(|handler| {
                            let target = target(settings, Some(handler), false, concurrent);
                            target.handler.is_some().then_some(target)
                        }))
                        .collect(),
                })
                .collect();
            loader.load_precompiled(path, kind, &targets)?
        }
        None => {
            let (mut binary, kind) = read_wasm(path)?;
            if !settings.pieces.is_empty() {
                binary = compose(path, kind, binary, &settings.pieces, request.cache)?;
            }
            let guessed = || {
                let sketch = World::sketch(&binary)?;
                select("", &sketch, &request.asked).ok().map(|c| c.handler)
            };
            let handler = forced.or_else(guessed);
            let concurrent = World::uses_concurrency(&binary);
            let target = target(settings, handler, request.provisional, concurrent);
            loader.load_binary(path, binary, kind, &target)?
        }
    };
    let choice = select(
        &worldhost_code::kind::shown(path),
        &loaded.world,
        &request.asked,
    );
    let has_concurrency = loaded.engine.get_concurrency_support();
    let loaded = match &choice {
        Ok(choice) => {
            let wanted = target(settings, Some(choice.handler), false, has_concurrency);
            if wanted.handler == loaded.engine_handler {
                loaded
            } else {
                tracing::debug!(
                    handler = choice.handler.name(),
                    "moving the code to the chosen handler's engine"
                );
                loaded.moved(&wanted, &loader)?
            }
        }
        Err(_) => loaded,
    };
    Ok(Prepared { loaded, choice })
}

/// `loaded` with wasmtime's concurrency support, for `handler`, which calls its guests in the
/// store's event loop though the component uses no concurrency (a server that reuses a WASI
/// 0.2 proxy's instances): the code itself if it has it, otherwise loaded again (from the
/// cache, or compiled) in the handler's engine with it. A precompiled artifact made without
/// it cannot be.
pub fn with_concurrency(
    loaded: &Loaded,
    handler: &'static dyn Handler,
    settings: &Settings,
    cache: Option<&Cache>,
) -> Result<Loaded> {
    if loaded.engine.get_concurrency_support() {
        return Ok(loaded.clone());
    }
    let shown = worldhost_code::kind::shown(&loaded.path);
    if !settings.concurrency_auto {
        bail!(
            "reusing the instances of `{shown}` needs wasmtime's concurrency support, which \
             `-W concurrency-support=n` turns off; leave that out, or give each request an \
             instance of its own (no `--max-instance-reuse-count`)"
        );
    }
    if loaded.precompiled {
        bail!(
            "`{shown}` was compiled without wasmtime's concurrency support, which reusing its \
             instances needs; compile it again with this worldhost (`worldhost compile` adds it \
             for a server), or give each request an instance of its own (no \
             `--max-instance-reuse-count`)"
        );
    }
    let loader = Loader {
        cache,
        allow_precompiled: settings.allow_precompiled,
        progress: &Quiet,
    };
    loaded.moved(&target(settings, Some(handler), false, true), &loader)
}

/// The engine `handler`'s components run in (the shared one for `None`), with its start engine
/// when `provisional` code is allowed; with wasmtime's concurrency support if the component
/// uses it (`concurrent`: see [`World::uses_concurrency`]), unless the command line said.
fn target(
    settings: &Settings,
    handler: Option<&'static dyn Handler>,
    provisional: bool,
    concurrent: bool,
) -> Target {
    let mut base = base_config(settings);
    if settings.concurrency_auto {
        base.concurrency_support(concurrent);
    }
    let plan = match handler {
        Some(handler) => handler.engine(&base, settings),
        None => EnginePlan::Shared,
    };
    match (plan.full(), handler) {
        (Some(full), Some(handler)) => Target {
            handler: Some(handler.name()),
            config: full.clone(),
            start: plan.start().filter(|_| provisional).cloned(),
        },
        _ => Target {
            handler: None,
            config: base,
            start: None,
        },
    }
}
