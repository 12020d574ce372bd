//! A guest run to completion (a command, a set of calls): its linker, its store granted from
//! the shared settings, the clock of `-W timeout`, and how its end becomes an exit status.
//! Shared by every handler that runs a guest once and exits.

use crate::handler::RunContext;
use crate::link::wasi_linker;
use crate::load::Loaded;
use crate::outcome::exit_status_of;
use crate::settings::Limits;
use crate::store::{Host, TimeoutGuard};
use anyhow::{Context as _, Result};
use std::process::ExitCode;
use wasmtime::Store;
use wasmtime::component::Linker;

/// Everything needed to instantiate and call a guest once.
pub struct GuestRun<'a> {
    /// The guest's store.
    pub store: Store<Host>,
    /// WASI linked, other imports dealt with as the settings say.
    pub linker: Linker<Host>,
    loaded: &'a Loaded,
    limits: Limits,
    _timeout: Option<TimeoutGuard>,
}

impl<'a> GuestRun<'a> {
    /// Links and builds the store for `cx`'s component, with the arguments after the component
    /// as the guest's (see [`Settings::argv`](crate::Settings::argv)); the clock of
    /// `-W timeout` starts now.
    pub fn prepare(cx: &RunContext<'a>) -> Result<Self> {
        let loaded = cx.component;
        let argv = cx.settings.argv(&loaded.name, cx.args);
        let linker = wasi_linker(loaded, cx.settings)?;
        let store = Host::new_store(&loaded.engine, cx.settings, &argv)?;
        let limits = cx.settings.limits;
        Ok(Self {
            store,
            linker,
            loaded,
            limits,
            _timeout: limits.start_timeout(&loaded.engine),
        })
    }

    /// The exit status of a guest call that failed (see [`exit_status_of`]).
    pub fn exit_status(&self, error: wasmtime::Error) -> Result<ExitCode> {
        let refused = self.store.data().limits.refused();
        exit_status_of(&self.loaded.name, error, &self.limits, refused)
    }

    /// For an instantiation that failed: a trap (in a start function) is still the guest's
    /// fault and reported as one; anything else is an error of worldhost's.
    pub fn instantiation_failed(&self, error: wasmtime::Error) -> Result<ExitCode> {
        if error.downcast_ref::<wasmtime::Trap>().is_some() {
            return self.exit_status(error);
        }
        Err(anyhow::Error::from(error))
            .with_context(|| format!("cannot instantiate `{}`", self.loaded.path.display()))
    }
}
