//! A component linked and pre-instantiated ([`GuestPre`]): it makes a store per run, granted
//! exactly what the settings grant under their limits, and instantiates into it; a failure is
//! classified as a [`GuestExit`] (trap, timeout, fuel, memory, exit) or left a host error. A
//! [`Guest`] is one run of it, its calls bounded by [`within_timeout`], the one per-call
//! deadline of `-W timeout` for every handler.

use crate::host::Host;
use crate::outcome::GuestExit;
use crate::settings::{Limits, Settings};
use crate::store::{EpochTicker, MemoryLimiter, limited_store};
use anyhow::{Context as _, Result};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Accessor, Instance, InstancePre, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::WasiHttpCtx;
use wasmtime_wasi_keyvalue::WasiKeyValueCtx;

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

/// A component linked and pre-instantiated: stores and instances for it, as many as wanted.
pub struct GuestPre<T: 'static = ()> {
    pub(crate) pre: InstancePre<Host<T>>,
    pub(crate) settings: Settings,
    pub(crate) name: String,
    pub(crate) argv: Vec<String>,
    pub(crate) yield_after: Option<Duration>,
    /// wasi:config's variables and wasi:keyvalue's data, made once for every store (a store
    /// only reads them; a keyvalue bucket copies the data when opened).
    pub(crate) config: Arc<WasiConfigVariables>,
    pub(crate) keyvalue: Arc<WasiKeyValueCtx>,
    pub(crate) _ticker: Option<Arc<EpochTicker>>,
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
pub async fn within_timeout<R>(
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
pub fn write_coredump(
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
