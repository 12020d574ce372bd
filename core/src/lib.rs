//! worldhost-core: the prepared run (a file loaded for the engine of the handler that runs it,
//! [`prepare`]), the world description, the registry of handlers and the selection among them,
//! the shared settings, and the one way a handler builds its guests ([`guest`]). Knows no
//! particular world and names no handler: handlers register themselves through `inventory`
//! and are found at run time. The file's kind, its code and the cache are worldhost-code's.

pub mod engine;
pub mod guest;
pub mod handler;
pub mod host;
pub mod linker;
pub mod outcome;
pub mod outgoing;
pub mod output;
pub mod preopen;
pub mod prepare;
pub mod select;
pub mod settings;
pub mod store;
pub mod telemetry;

pub use engine::EnginePlan;
pub use guest::{Guest, GuestPre, block_on, runtime, within_timeout};
pub use handler::{
    Asked, Calls, Claim, Flags, Handler, HandlerFlags, Registration, RunContext, UsageError,
    claim_export, flags_of, handlers, strength,
};
pub use host::Host;
pub use linker::GuestLinker;
pub use load::Loaded;
pub use outcome::{Cause, GuestExit};
pub use prepare::{Prepared, RunRequest, prepare, with_concurrency};
pub use settings::{Limits, Settings};
pub use world::{Function, InterfaceName, Item, WasmKind, World, export_at, export_version};
pub use worldhost_code as code;
pub use worldhost_code::{load, wit, world};

/// When this run began: the front end asks first thing, before any file is read, so that a
/// file changed after it may have changed while it was being loaded (a server's reload names
/// versions by it).
pub fn run_began() -> std::time::SystemTime {
    static BEGAN: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();
    *BEGAN.get_or_init(std::time::SystemTime::now)
}
