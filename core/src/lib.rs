//! worldhost-core: loads a component (or a core module), describes its world, keeps the registry of handlers and
//! selects one, and owns the engine, store and WASI settings every handler shares.
//! Knows no particular world and names no handler: handlers register themselves through
//! `inventory` and are found at run time.

pub mod cache;
pub mod engine;
pub mod guest;
pub mod handler;
pub mod link;
pub mod load;
pub mod outcome;
pub mod output;
pub mod private_dir;
pub mod progress;
pub mod select;
pub mod settings;
pub mod store;
pub mod world;

pub use handler::{
    Claim, Handler, Registration, RunContext, UsageError, claim_export, handlers, strength,
};
pub use load::{Code, Loaded, load_component};
pub use settings::{Limits, Settings, SharedArgs};
pub use store::Host;
pub use world::{Function, InterfaceName, Item, World, WorldKind};
