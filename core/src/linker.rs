//! The one way a handler builds its guests. A [`GuestLinker`] links WASI 0.2 (sync or async;
//! async adds WASI 0.3 for a component that uses it) from the shared settings, takes the
//! handler's own host interfaces ([`GuestLinker::provide`]), then judges every import nothing
//! provides (an error that names them, or with `-W unknown-imports-trap` functions that trap)
//! and pre-instantiates the component into a [`GuestPre`].

use crate::guest::{Guest, GuestPre};
use crate::handler::RunContext;
use crate::host::{Host, WASI_PACKAGES, link_extras, link_http};
use crate::load::Loaded;
use crate::settings::Settings;
use crate::store::EpochTicker;
use crate::world::Item;
use anyhow::{Context as _, Result, bail};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime_wasi_keyvalue::WasiKeyValueCtxBuilder;

/// Builds the linker for one component: WASI, the handler's own interfaces, then the rest.
pub struct GuestLinker<'a, T: 'static> {
    loaded: &'a Loaded,
    settings: &'a Settings,
    argv: Vec<String>,
    linker: Linker<Host<T>>,
    provided: Vec<String>,
    yield_after: Option<Duration>,
    sync: bool,
    /// Whether WASI 0.3 is linked: for async guests that use it, unless `-S p3=n`, in an
    /// engine with concurrency support (one for a component that uses no concurrency goes
    /// without). A 0.2 guest's linker goes without its hundreds of functions.
    p3: bool,
}

impl<'a, T: Send + 'static> GuestLinker<'a, T> {
    /// For guests called synchronously: WASI 0.2's synchronous bindings are linked; the words
    /// after the component are the guest's arguments (see [`Settings::argv`]).
    pub fn new(cx: &RunContext<'a>) -> Result<Self> {
        let mut guest = Self::empty(cx.component, cx.settings, cx.args, true)?;
        let mut options = wasmtime_wasi::p2::bindings::sync::LinkOptions::default();
        options.network_error_code(cx.settings.network_error_code);
        wasmtime_wasi::p2::add_to_linker_with_options_sync(&mut guest.linker, &options)?;
        let extras = link_extras(&mut guest.linker, cx.settings, true, false)?;
        guest.provided.extend(extras);
        Ok(guest)
    }

    /// For guests called asynchronously (from a tokio runtime): WASI 0.2's async bindings,
    /// and WASI 0.3 if the component uses it, unless `-S p3=n` (real 0.3 guests import both:
    /// Rust's std on `wasm32-wasip2` brings 0.2's `wasi:cli/environment`, for one). A 0.3
    /// guest's calls go through [`Guest::run_concurrent`].
    pub fn new_async(cx: &RunContext<'a>) -> Result<Self> {
        Self::new_async_for(cx.component, cx.settings, cx.args)
    }

    /// [`GuestLinker::new_async`] for `component`, under `settings`, with `args` after it on
    /// the command line: for a handler that links a component again (a server's reload).
    pub fn new_async_for(
        component: &'a Loaded,
        settings: &'a Settings,
        args: &[String],
    ) -> Result<Self> {
        let mut guest = Self::empty(component, settings, args, false)?;
        let mut options = wasmtime_wasi::p2::bindings::LinkOptions::default();
        options.network_error_code(settings.network_error_code);
        wasmtime_wasi::p2::add_to_linker_with_options_async(&mut guest.linker, &options)?;
        if guest.p3 {
            wasmtime_wasi::p3::add_to_linker(&mut guest.linker)?;
        }
        let extras = link_extras(&mut guest.linker, settings, false, guest.p3)?;
        guest.provided.extend(extras);
        Ok(guest)
    }

    fn empty(
        loaded: &'a Loaded,
        settings: &'a Settings,
        args: &[String],
        sync: bool,
    ) -> Result<Self> {
        loaded.component()?;
        Ok(Self {
            loaded,
            settings,
            argv: settings.argv(&loaded.name, args),
            linker: Linker::new(&loaded.engine),
            provided: WASI_PACKAGES.iter().map(|p| format!("wasi:{p}")).collect(),
            yield_after: None,
            sync,
            p3: !sync
                && settings.p3
                && loaded.engine.get_concurrency_support()
                && loaded.world.uses_wasi_p3(),
        })
    }

    /// wasi:http, for a handler whose guests always have it (a server): the same state and
    /// allow-list (`--allow-outgoing`) as `-S http` gives any guest. [`Host`] is its view
    /// (`wasmtime_wasi_http::WasiHttpView`).
    pub fn http(mut self) -> Result<Self> {
        if !self.provided.iter().any(|p| p == "wasi:http") {
            link_http(&mut self.linker, self.sync, self.p3)?;
            self.provided.push("wasi:http".into());
        }
        Ok(self)
    }

    /// The handler's own host interfaces: `add` links them, and `names` says what they are
    /// (a package, `ns:pkg`; an interface, `ns:pkg/iface`, any version; or a plain import
    /// name), so that the component's other imports can be judged.
    pub fn provide(
        mut self,
        names: &[&str],
        add: impl FnOnce(&mut Linker<Host<T>>) -> wasmtime::Result<()>,
    ) -> Result<Self> {
        add(&mut self.linker)?;
        self.provided.extend(names.iter().map(|n| n.to_string()));
        Ok(self)
    }

    /// Guests that have run this long yield their thread at each epoch tick (async only).
    pub fn yield_after(mut self, after: Duration) -> Self {
        self.yield_after = Some(after);
        self
    }

    /// Judges the imports nothing provides, then pre-instantiates the component.
    pub fn prepare(mut self) -> Result<GuestPre<T>> {
        let loaded = self.loaded;
        let component = loaded.component()?;
        check_wasi_versions(loaded, self.settings, self.p3)?;
        let missing: Vec<&Item> = (loaded.world.imports.iter())
            .filter(|item| !is_provided(item, &self.provided))
            .collect();
        if !missing.is_empty() {
            if !self.settings.unknown_imports_trap {
                let mut provided = self.provided.clone();
                provided.sort();
                bail!(unprovided(loaded, &missing, &provided.join(", ")));
            }
            self.linker.define_unknown_imports_as_traps(component)?;
        }
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "cannot link `{}`",
                    worldhost_code::kind::shown(&loaded.path)
                )
            })?;
        let ticks = self.settings.limits.timeout.is_some() || self.yield_after.is_some();
        Ok(GuestPre {
            pre,
            settings: self.settings.clone(),
            name: loaded.name.clone(),
            argv: self.argv,
            yield_after: self.yield_after,
            config: Arc::new((self.settings.config_vars.iter().flatten().cloned()).collect()),
            keyvalue: Arc::new(
                WasiKeyValueCtxBuilder::new()
                    .in_memory_data(self.settings.keyvalue.iter().flatten().cloned())
                    .build(),
            ),
            _ticker: EpochTicker::when(ticks, &loaded.engine)?.map(Arc::new),
        })
    }

    /// [`GuestLinker::prepare`], a store with `state`, and the instance: everything a guest
    /// run once needs (synchronous).
    pub fn instantiate(self, state: T) -> Result<Guest<T>> {
        let pre = self.prepare()?;
        let mut store = pre.store(state)?;
        let instance = pre.instantiate(&mut store)?;
        Ok(Guest {
            store,
            instance,
            pre,
        })
    }

    /// [`GuestLinker::instantiate`], for a guest called asynchronously.
    pub async fn instantiate_async(self, state: T) -> Result<Guest<T>> {
        let pre = self.prepare()?;
        let mut store = pre.store(state)?;
        let instance = pre.instantiate_async(&mut store).await?;
        Ok(Guest {
            store,
            instance,
            pre,
        })
    }
}

/// Refuses, with what to do, the WASI interfaces a component uses that no linker here has:
/// a prerelease of WASI 0.3 (wasmtime 48 implements the release, 0.3.0, and its linker takes
/// no prerelease name for it: the guests built against the release candidates fail), and
/// WASI 0.3 where it is not linked (`-S p3=n`, or a handler that calls its guests
/// synchronously). (wasi:config and wasi:keyvalue are linked at their prereleases.)
fn check_wasi_versions(loaded: &Loaded, settings: &Settings, linked_p3: bool) -> Result<()> {
    let path = worldhost_code::kind::shown(&loaded.path);
    let p3: Vec<(&Item, &semver::Version)> = (loaded.world.imports.iter())
        .chain(&loaded.world.exports)
        .filter_map(|item| {
            let interface = item.interface.as_ref().filter(|i| i.is_wasi_p3())?;
            Some((item, interface.version.as_ref()?))
        })
        .collect();
    if let Some((item, _)) = p3.iter().find(|(_, v)| !v.pre.is_empty()) {
        bail!(
            "`{path}` uses `{}`, a prerelease of WASI 0.3, which worldhost (as wasmtime 48) \
             does not implement: it implements the release, 0.3.0; rebuild the component \
             against it (the wasip3 crate 0.9 or later, for Rust)",
            item.name
        );
    }
    if let Some((item, _)) = p3.first()
        && !linked_p3
    {
        let why = if !settings.p3 {
            "`-S p3=n` (or `-W concurrency-support=n`) turns it off; leave the key out"
        } else if !loaded.engine.get_concurrency_support() {
            "the engine was made without concurrency support (`-W concurrency-support`)"
        } else {
            "this handler calls its guests as WASI 0.2 guests are called"
        };
        bail!(
            "`{path}` uses `{}`, of WASI 0.3, which is not linked here: {why}",
            item.name
        );
    }
    Ok(())
}

/// Whether `provided` (packages, interfaces with or without their version, plain names)
/// covers the import `item`.
fn is_provided(item: &Item, provided: &[String]) -> bool {
    // The name as the component writes it (`ns:pkg/iface@1.0.0`, or a plain name), its
    // interface without the version, or its package: a handler may give any of them.
    let mut names = vec![item.name.clone()];
    if let Some(i) = &item.interface {
        names.extend([format!("{}:{}", i.namespace, i.package), i.unversioned()]);
    }
    provided.iter().any(|p| names.contains(p))
}

/// The error for imports nothing provides (`provided`: what is, listed), with the way to fill
/// them: the component a middleware forwards to, or a plug.
pub fn unprovided(loaded: &Loaded, missing: &[&Item], provided: &str) -> String {
    let shown = worldhost_code::kind::shown(&loaded.path);
    let names = (missing.iter().map(|i| format!("`{}`", i.name))).collect::<Vec<_>>();
    let forwards = missing.iter().find(|i| {
        (i.interface.as_ref()).is_some_and(|n| loaded.world.export_of(&n.unversioned()).is_some())
    });
    let how = match forwards {
        Some(item) => format!(
            "it exports `{}` too: it is a middleware, which forwards to another component's; \
             put it in front of one with `--middleware {shown} COMPONENT`",
            item.name
        ),
        None => "`--plug PATH` fills them from a component that exports them; \
                 `-W unknown-imports-trap=y` links them as functions that trap when called"
            .into(),
    };
    let names = names.join(", ");
    format!(
        "`{shown}` imports {names}, which worldhost does not provide (it provides {provided}); {how}"
    )
}
