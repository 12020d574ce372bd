//! A guest's store data ([`Host`]) and the interfaces every handler's guests get from the
//! settings: WASI 0.2's packages, and with `-S http`, `-S config`, `-S keyvalue` theirs.

use crate::outgoing::OutgoingPolicy;
use crate::settings::Settings;
use crate::store::{Limited, MemoryLimiter};
use anyhow::Result;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmtime_wasi_keyvalue::{WasiKeyValue, WasiKeyValueCtx};

/// The `wasi:` packages every handler's guests get from the shared settings.
pub const WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// A guest's store data: its WASI context and resources, its memory limiter, wasi:http's,
/// wasi:config's and wasi:keyvalue's state when the settings link them, and the state of the
/// handler's own host interfaces.
pub struct Host<T = ()> {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: MemoryLimiter,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outgoing: OutgoingPolicy,
    pub(crate) config: Arc<WasiConfigVariables>,
    pub(crate) keyvalue: Arc<WasiKeyValueCtx>,
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
pub(crate) fn link_extras<T: Send + 'static>(
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
pub(crate) fn link_http<T: Send + 'static>(
    linker: &mut Linker<Host<T>>,
    sync: bool,
    p3: bool,
) -> Result<()> {
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
