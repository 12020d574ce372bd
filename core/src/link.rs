//! Linking: the WASI 0.2 interfaces the shared settings provide, and what to do with every
//! other import: an error that lists them, or (`-W unknown-imports-trap`) functions that trap
//! when called. Handlers that provide more (wasi:http) name the extra packages.

use crate::load::Loaded;
use crate::settings::Settings;
use crate::store::Host;
use crate::world::Item;
use anyhow::{Result, bail};
use wasmtime::component::Linker;

/// The `wasi:` packages every handler links from the shared settings.
pub const WASI_PACKAGES: &[&str] = &["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// A linker with WASI 0.2 (synchronous) for `loaded`, and its other imports dealt with as the
/// settings say.
pub fn wasi_linker(loaded: &Loaded, settings: &Settings) -> Result<Linker<Host>> {
    let mut linker = Linker::new(&loaded.engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    link_unprovided(&mut linker, loaded, settings, &[])?;
    Ok(linker)
}

/// The imports of `loaded` that neither the shared WASI packages nor `extra_packages`
/// (`wasi:` package names such as "http") provide.
pub fn unprovided_imports<'a>(loaded: &'a Loaded, extra_packages: &[&str]) -> Vec<&'a Item> {
    loaded
        .world
        .imports
        .iter()
        .filter(|item| match &item.interface {
            Some(i) if i.namespace == "wasi" => {
                let package = i.package.as_str();
                !WASI_PACKAGES.contains(&package) && !extra_packages.contains(&package)
            }
            _ => true,
        })
        .collect()
}

/// With `-W unknown-imports-trap`, links every import nothing provides as functions that trap
/// when called; without it, refuses the component, naming those imports.
pub fn link_unprovided<T: 'static>(
    linker: &mut Linker<T>,
    loaded: &Loaded,
    settings: &Settings,
    extra_packages: &[&str],
) -> Result<()> {
    let missing = unprovided_imports(loaded, extra_packages);
    if missing.is_empty() {
        return Ok(());
    }
    if settings.unknown_imports_trap {
        linker.define_unknown_imports_as_traps(loaded.component()?)?;
        return Ok(());
    }
    let names: Vec<String> = missing.iter().map(|i| format!("`{}`", i.name)).collect();
    let mut provided: Vec<String> = WASI_PACKAGES
        .iter()
        .chain(extra_packages)
        .map(|p| format!("wasi:{p}"))
        .collect();
    provided.sort();
    bail!(
        "`{}` imports {}, which worldhost does not provide (it provides {}); \
         `-W unknown-imports-trap=y` links them as functions that trap when called",
        loaded.path.display(),
        names.join(", "),
        provided.join(", ")
    )
}
