//! The one way a handler builds its guests. A [`GuestLinker`] links WASI 0.2 (sync or async;
//! async adds WASI 0.3)
//! from the shared settings, takes the handler's own host interfaces ([`GuestLinker::provide`]),
//! then judges every import nothing provides (an error that names them, or with
//! `-W unknown-imports-trap` functions that trap) and pre-instantiates the component. The
//! [`GuestPre`] it gives makes a store per run, granted exactly what the settings grant under
//! their limits, and instantiates into it; a failure is classified as a [`GuestExit`] (trap,
//! timeout, fuel, memory, exit) or left a host error. [`ModuleGuest`] does the same for a core
//! module and WASI preview 1.

use crate::handler::RunContext;
use crate::load::Loaded;
use crate::outcome::GuestExit;
use crate::outgoing::OutgoingPolicy;
use crate::settings::{Limits, Settings};
use crate::store::{EpochTicker, Limited, MemoryLimiter, limited_store};
use crate::world::{Item, WasmKind};
use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Accessor, Instance, InstancePre, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_keyvalue::{WasiKeyValue, WasiKeyValueCtx, WasiKeyValueCtxBuilder};

/// The `wasi:` packages every handler's guests get from the shared settings.
pub const WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// A guest's store data: its WASI context and resources, its memory limiter, wasi:http's,
/// wasi:config's and wasi:keyvalue's state when the settings link them, and the state of the
/// handler's own host interfaces.
pub struct Host<T = ()> {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: MemoryLimiter,
    http: WasiHttpCtx,
    outgoing: OutgoingPolicy,
    config: Arc<WasiConfigVariables>,
    keyvalue: Arc<WasiKeyValueCtx>,
    /// The handler's own state.
    pub state: T,
}

impl<T: Send + 'static> WasiView for Host<T> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl<T: Send + 'static> WasiHttpView for Host<T> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outgoing,
        }
    }
}

impl<T: Send + 'static> Limited for Host<T> {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limits
    }
}

impl<T> Host<T> {
    /// The resource table and the handler's state at once.
    pub fn table_and_state(&mut self) -> (&mut ResourceTable, &mut T) {
        (&mut self.table, &mut self.state)
    }
}

fn config_view<T>(host: &mut Host<T>) -> WasiConfig<'_> {
    WasiConfig::from(&*host.config)
}

fn keyvalue_view<T>(host: &mut Host<T>) -> WasiKeyValue<'_> {
    WasiKeyValue::new(&host.keyvalue, &mut host.table)
}

/// Links what the settings add to WASI 0.2 for every component (`-S http`, `-S config`,
/// `-S keyvalue`), and returns the packages they provide. `sync`: the synchronous bindings
/// of wasi:http (a guest called outside an async runtime).
fn link_extras<T: Send + 'static>(
    linker: &mut Linker<Host<T>>,
    settings: &Settings,
    sync: bool,
    p3: bool,
) -> Result<Vec<String>> {
    let mut provided = Vec::new();
    if settings.http.enabled {
        link_http(linker, sync, p3)?;
        provided.push("wasi:http".to_string());
    }
    if settings.config_vars.is_some() {
        wasmtime_wasi_config::add_to_linker(linker, config_view::<T>)?;
        provided.push("wasi:config".to_string());
    }
    if settings.keyvalue.is_some() {
        wasmtime_wasi_keyvalue::add_to_linker(linker, keyvalue_view::<T>)?;
        provided.push("wasi:keyvalue".to_string());
    }
    Ok(provided)
}

/// wasi:http 0.2 (`sync`: its synchronous bindings), and 0.3 for async guests when `p3`.
fn link_http<T: Send + 'static>(linker: &mut Linker<Host<T>>, sync: bool, p3: bool) -> Result<()> {
    if sync {
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)?;
    } else {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
        if p3 {
            wasmtime_wasi_http::p3::add_to_linker(linker)?;
        }
    }
    Ok(())
}

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
        let mut guest = Self::empty(cx, true)?;
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
        let mut guest = Self::empty(cx, false)?;
        let mut options = wasmtime_wasi::p2::bindings::LinkOptions::default();
        options.network_error_code(cx.settings.network_error_code);
        wasmtime_wasi::p2::add_to_linker_with_options_async(&mut guest.linker, &options)?;
        if guest.p3 {
            wasmtime_wasi::p3::add_to_linker(&mut guest.linker)?;
        }
        let extras = link_extras(&mut guest.linker, cx.settings, false, guest.p3)?;
        guest.provided.extend(extras);
        Ok(guest)
    }

    fn empty(cx: &RunContext<'a>, sync: bool) -> Result<Self> {
        let loaded = cx.component;
        loaded.component()?;
        Ok(Self {
            loaded,
            settings: cx.settings,
            argv: cx.settings.argv(&loaded.name, cx.args),
            linker: Linker::new(&loaded.engine),
            provided: WASI_PACKAGES.iter().map(|p| format!("wasi:{p}")).collect(),
            yield_after: None,
            sync,
            p3: !sync
                && cx.settings.p3
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

/// Runs `run` to its end on a tokio runtime of one thread: how a handler that runs one guest
/// at a time (a command, a call) drives a guest called asynchronously (WASI 0.3).
pub fn block_on<R>(run: impl Future<Output = Result<R>>) -> Result<R> {
    runtime()?.block_on(run)
}

/// A tokio runtime of one thread, for a handler that drives one guest called asynchronously
/// over many steps (a REPL session): the tasks WASI 0.3 spawns for a guest's streams live
/// as long as it.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Whether `provided` (packages, interfaces, plain names) covers the import `item`.
fn is_provided(item: &Item, provided: &[String]) -> bool {
    let names = match &item.interface {
        Some(i) => vec![format!("{}:{}", i.namespace, i.package), i.unversioned()],
        None => vec![item.name.clone()],
    };
    provided.iter().any(|p| names.contains(p))
}

/// The error for imports nothing provides.
fn unprovided(loaded: &Loaded, missing: &[&Item], provided: &str) -> String {
    let names: Vec<String> = missing.iter().map(|i| format!("`{}`", i.name)).collect();
    format!(
        "`{}` imports {}, which worldhost does not provide (it provides {provided}); \
         `-W unknown-imports-trap=y` links them as functions that trap when called",
        worldhost_code::kind::shown(&loaded.path),
        names.join(", "),
    )
}

/// A component linked and pre-instantiated: stores and instances for it, as many as wanted.
pub struct GuestPre<T: 'static = ()> {
    pre: InstancePre<Host<T>>,
    settings: Settings,
    name: String,
    argv: Vec<String>,
    yield_after: Option<Duration>,
    /// wasi:config's variables and wasi:keyvalue's data, made once for every store (a store
    /// only reads them; a keyvalue bucket copies the data when opened).
    config: Arc<WasiConfigVariables>,
    keyvalue: Arc<WasiKeyValueCtx>,
    _ticker: Option<Arc<EpochTicker>>,
}

impl<T: Send + 'static> GuestPre<T> {
    /// A fresh store with `state`, granted what the settings grant, under their limits; the
    /// clock of `-W timeout` starts now.
    pub fn store(&self, state: T) -> Result<Store<Host<T>>> {
        self.store_with(state, |_| {})
    }

    /// [`GuestPre::store`], with this store's WASI context adjusted by `adjust` after the
    /// settings granted theirs (a server closes stdin, names each instance and prefixes its
    /// output).
    pub fn store_with(
        &self,
        state: T,
        adjust: impl FnOnce(&mut WasiCtxBuilder),
    ) -> Result<Store<Host<T>>> {
        self.make_store(state, adjust, &self.settings.limits)
    }

    /// [`GuestPre::store_with`], for a store that serves many calls (a reused server
    /// instance): `-W timeout` is not counted from its making, since the handler bounds each
    /// call itself; every other limit is the same.
    pub fn reusable_store_with(
        &self,
        state: T,
        adjust: impl FnOnce(&mut WasiCtxBuilder),
    ) -> Result<Store<Host<T>>> {
        let limits = Limits {
            timeout: None,
            ..self.settings.limits
        };
        self.make_store(state, adjust, &limits)
    }

    fn make_store(
        &self,
        state: T,
        adjust: impl FnOnce(&mut WasiCtxBuilder),
        limits: &Limits,
    ) -> Result<Store<Host<T>>> {
        let mut wasi = self.settings.wasi_builder(&self.argv)?;
        adjust(&mut wasi);
        let settings = &self.settings;
        let mut table = ResourceTable::new();
        if let Some(max) = settings.limits.max_resources {
            table.set_max_capacity(max);
        }
        let mut http = WasiHttpCtx::new();
        if let Some(max) = settings.http.max_fields_size {
            http.set_field_size_limit(max);
        }
        let host = Host {
            wasi: wasi.build(),
            table,
            limits: MemoryLimiter::new(&settings.limits),
            http,
            outgoing: settings.http.outgoing.clone(),
            config: self.config.clone(),
            keyvalue: self.keyvalue.clone(),
            state,
        };
        limited_store(self.engine(), limits, host, self.yield_after)
    }

    /// The settings its stores are made with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The component's file name, as logs name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Instantiates the component into `store`; a trap in a start function is the guest's
    /// ([`GuestExit`]), anything else an error of worldhost's.
    pub fn instantiate(&self, store: &mut Store<Host<T>>) -> Result<Instance> {
        let instance = self.pre.instantiate(&mut *store);
        instance.map_err(|e| self.instantiation_failed(store, e))
    }

    /// [`GuestPre::instantiate`], for an async store.
    pub async fn instantiate_async(&self, store: &mut Store<Host<T>>) -> Result<Instance> {
        let instance = self.pre.instantiate_async(&mut *store).await;
        instance.map_err(|e| self.instantiation_failed(store, e))
    }

    fn instantiation_failed(&self, store: &Store<Host<T>>, e: wasmtime::Error) -> anyhow::Error {
        self.error(store, e, || format!("cannot instantiate `{}`", self.name))
    }

    fn error(
        &self,
        store: &Store<Host<T>>,
        error: wasmtime::Error,
        doing: impl FnOnce() -> String,
    ) -> anyhow::Error {
        let refused = store.data().limits.refused();
        GuestExit::error(&self.name, error, &self.settings.limits, refused, doing)
    }

    /// What the failure of a call into a guest of `store` means: a [`GuestExit`], or the host
    /// error as it was.
    pub fn classify(
        &self,
        store: &Store<Host<T>>,
        error: wasmtime::Error,
    ) -> Result<GuestExit, wasmtime::Error> {
        let refused = store.data().limits.refused();
        GuestExit::classify(&self.name, error, &self.settings.limits, refused)
    }

    /// The error a handler returns for a failed call: the [`GuestExit`], or the host error
    /// with what was being run.
    pub fn ended(&self, store: &Store<Host<T>>, error: wasmtime::Error) -> anyhow::Error {
        self.error(store, error, || format!("running `{}` failed", self.name))
    }

    /// The pre-instantiated component, for typed bindings (`ProxyPre::new`, `CommandPre::new`).
    pub fn instance_pre(&self) -> &InstancePre<Host<T>> {
        &self.pre
    }

    /// The engine its code is in.
    pub fn engine(&self) -> &Engine {
        self.pre.engine()
    }
}

/// A guest run once: its store, its instance, and what made them.
pub struct Guest<T: 'static> {
    /// The store.
    pub store: Store<Host<T>>,
    /// The instance.
    pub instance: Instance,
    /// What made them: for a fresh store ([`GuestPre::store`]) and for [`Guest::ended`].
    pub pre: GuestPre<T>,
}

impl<T: Send + 'static> Guest<T> {
    /// The error to return for a call into this guest that failed (see [`GuestPre::ended`]);
    /// with `-D coredump=PATH`, a trap's core dump is written there first.
    pub fn ended(&mut self, error: wasmtime::Error) -> anyhow::Error {
        write_coredump(&self.pre.settings, &mut self.store, &self.pre.name, &error);
        self.pre.ended(&self.store, error)
    }

    /// Runs `call` in the store's event loop, as WASI 0.3's async functions are called; a
    /// failure is judged as [`Guest::ended`] judges it. `-W timeout` bounds the whole run,
    /// waits included: epoch interruption stops a guest only while it computes, and a 0.3
    /// guest may wait on a stream or a timer for ever (wasmtime#11869). A run past it ends as
    /// a timeout, as a computing guest's does.
    pub async fn run_concurrent<R: Send + 'static>(
        &mut self,
        call: impl AsyncFnOnce(&Accessor<Host<T>>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        match self.run_concurrent_unjudged(call).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.ended(e)),
        }
    }

    /// [`Guest::run_concurrent`], with the failure left as wasmtime gave it (a timeout as the
    /// interrupt trap), for a handler that judges it itself ([`GuestPre::classify`]).
    pub async fn run_concurrent_unjudged<R: Send + 'static>(
        &mut self,
        call: impl AsyncFnOnce(&Accessor<Host<T>>) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let ran = self.store.run_concurrent(call);
        within_timeout(self.pre.settings.limits.timeout, async { ran.await? }).await
    }

    /// Calls into a guest of WASI's async bindings (a 0.2 function, called asynchronously):
    /// `-W timeout` bounds the call, waits included, as [`Guest::run_concurrent`] has it; a
    /// failure is judged as [`Guest::ended`] judges it.
    pub async fn call<R>(
        &mut self,
        call: impl AsyncFnOnce(&mut Store<Host<T>>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let timeout = self.pre.settings.limits.timeout;
        match within_timeout(timeout, call(&mut self.store)).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.ended(e)),
        }
    }
}

/// `call`, ended as a timeout (the interrupt trap, as the epoch ends a computing guest) once
/// `timeout` has passed: epoch interruption stops a guest only while it computes, and one
/// may wait on a timer or a stream for ever.
async fn within_timeout<R>(
    timeout: Option<Duration>,
    call: impl Future<Output = wasmtime::Result<R>>,
) -> wasmtime::Result<R> {
    match timeout {
        Some(timeout) => (tokio::time::timeout(timeout, call).await)
            .unwrap_or_else(|_| Err(wasmtime::Trap::Interrupt.into())),
        None => call.await,
    }
}

/// With `-D coredump=PATH`, writes the core dump that a trap carries to PATH (the format of
/// wasmtime's, which `wasmgdb` and `wasm-tools` read), as wasmtime run does.
fn write_coredump(
    settings: &Settings,
    store: impl wasmtime::AsContextMut,
    name: &str,
    error: &wasmtime::Error,
) {
    let Some(path) = &settings.coredump else {
        return;
    };
    let Some(dump) = error.downcast_ref::<wasmtime::WasmCoreDump>() else {
        return;
    };
    // A new file of the user's alone (it holds the guest's memory), renamed over a regular
    // file only: never written through a link, into a FIFO or over a device.
    let written = worldhost_code::private_dir::write_file_atomically(
        path,
        &dump.serialize(store, name),
        "the core dump",
        "`-D coredump`",
    );
    match written {
        Ok(()) => tracing::warn!("core dumped at {}", path.display()),
        Err(e) => tracing::warn!("cannot write the core dump to `{}`: {e:#}", path.display()),
    }
}

/// The module every WASI preview 1 import comes from.
pub const PREVIEW1: &str = "wasi_snapshot_preview1";
/// The module of WASI's preview 0, which wasmtime still links for old modules.
pub const PREVIEW0: &str = "wasi_unstable";

/// A core module that targets WASI preview 1, instantiated with the shared settings: the
/// same grants and limits as a component's guest.
pub struct ModuleGuest {
    /// The store.
    pub store: Store<ModuleHost>,
    /// The instance.
    pub instance: wasmtime::Instance,
    name: String,
    settings: Settings,
    _ticker: Option<EpochTicker>,
}

/// A preview-1 guest's store data.
pub struct ModuleHost {
    wasi: WasiP1Ctx,
    limits: MemoryLimiter,
}

impl Limited for ModuleHost {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limits
    }
}

impl ModuleGuest {
    /// Links `wasi_snapshot_preview1` (and `wasi_unstable`, unless `-S preview0=n`, as
    /// wasmtime does), then the `preloads` (`--preload NAME=PATH`: core modules whose exports
    /// the module imports from NAME), judges the module's other imports as a component's are
    /// judged (or, with `-W unknown-imports-default`, gives them functions that return
    /// zeros), and instantiates the module.
    pub fn instantiate(cx: &RunContext<'_>, preloads: &[(String, PathBuf)]) -> Result<Self> {
        let loaded = cx.component;
        let module = loaded.module()?;
        let settings = cx.settings;
        let mut linker = wasmtime::Linker::new(&loaded.engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host: &mut ModuleHost| &mut host.wasi)?;
        let mut provided = vec![PREVIEW1.to_string()];
        if settings.preview0 {
            wasmtime_wasi::p0::add_to_linker_sync(&mut linker, |host: &mut ModuleHost| {
                &mut host.wasi
            })?;
            provided.push(PREVIEW0.to_string());
        }
        // `-W unknown-exports-allow` is for `Linker::module`, which the preloads go through.
        if let Some(allow) = settings.unknown_exports_allow {
            linker.allow_unknown_exports(allow);
        }
        // Compiled before the store's clock starts: `-W timeout` is the guest's time.
        let preloaded = (preloads.iter())
            .map(|(name, path)| {
                let (binary, kind) = worldhost_code::kind::read_wasm(path)?;
                if kind != WasmKind::CoreModule {
                    bail!(
                        "`--preload {name}={}` is a component; `--preload` takes core modules",
                        path.display()
                    );
                }
                let code = worldhost_code::compile(path, &loaded.engine, kind, &binary)?;
                let worldhost_code::Code::Module(module) = code else {
                    bail!("`--preload {name}` did not compile to a core module");
                };
                Ok((name, path, module))
            })
            .collect::<Result<Vec<_>>>()?;
        let host = ModuleHost {
            wasi: settings
                .wasi_builder(&settings.argv(&loaded.name, cx.args))?
                .build_p1(),
            limits: MemoryLimiter::new(&settings.limits),
        };
        let mut store = limited_store(&loaded.engine, &settings.limits, host, None)?;
        let ticker = EpochTicker::when(settings.limits.timeout.is_some(), &loaded.engine)?;
        let failed = |store: &Store<ModuleHost>, e: wasmtime::Error, doing: String| {
            let refused = store.data().limits.refused();
            GuestExit::error(&loaded.name, e, &settings.limits, refused, || doing)
        };
        for (name, path, preload) in &preloaded {
            if let Err(e) = linker.module(&mut store, name, preload) {
                let doing = format!("cannot instantiate `--preload {name}={}`", path.display());
                return Err(failed(&store, e, doing));
            }
            provided.push(name.to_string());
        }
        let missing: Vec<&Item> = (loaded.world.imports.iter())
            .filter(|i| {
                !provided
                    .iter()
                    .any(|p| i.name.starts_with(&format!("{p}::")))
            })
            .collect();
        if !missing.is_empty() {
            if settings.unknown_imports_trap {
                linker.define_unknown_imports_as_traps(module)?;
            } else if settings.unknown_imports_default {
                linker.define_unknown_imports_as_default_values(&mut store, module)?;
            } else {
                let provided: Vec<String> = provided.iter().map(|p| format!("`{p}`")).collect();
                bail!(unprovided(loaded, &missing, &provided.join(", ")));
            }
        }
        match linker.instantiate(&mut store, module) {
            Ok(instance) => Ok(ModuleGuest {
                store,
                instance,
                name: loaded.name.clone(),
                settings: settings.clone(),
                _ticker: ticker,
            }),
            Err(e) => {
                let doing = format!(
                    "cannot instantiate `{}`",
                    worldhost_code::kind::shown(&loaded.path)
                );
                Err(failed(&store, e, doing))
            }
        }
    }

    /// The error to return for a call into this module that failed; with
    /// `-D coredump=PATH`, a trap's core dump is written there first.
    pub fn ended(&mut self, error: wasmtime::Error) -> anyhow::Error {
        write_coredump(&self.settings, &mut self.store, &self.name, &error);
        let refused = self.store.data().limits.refused();
        GuestExit::error(&self.name, error, &self.settings.limits, refused, || {
            format!("cannot run `{}`", self.name)
        })
    }
}
