//! Finding the function a call names, with every spelling wasmtime 48 accepts: a top-level
//! name (`add`); a name inside an exported interface, when only one has it (`mul`); a
//! qualified name (`my:calc/ops.mul@1.0.0`). worldhost also takes the interface's short name
//! (`ops.mul`), which wasmtime does not.

use anyhow::{Result, bail};
use wasmtime::component::ComponentExportIndex;
use wasmtime::component::types::ComponentFunc;
use worldhost_core::{Function, Loaded};

/// A function found in the component.
pub(crate) struct Found<'a> {
    /// Its description in the world (name, signature).
    pub function: &'a Function,
    /// Its type.
    pub ty: ComponentFunc,
    /// Its export index, to fetch it from an instance.
    pub index: ComponentExportIndex,
}

/// Finds the function `name` (as written in a WAVE call) in `loaded`.
pub(crate) fn find<'a>(loaded: &'a Loaded, name: &str) -> Result<Found<'a>> {
    // A core module has no component functions: say so, rather than "no function named".
    loaded.component()?;
    let functions: Vec<&Function> = loaded.world.exported_functions().collect();
    // The version, if any, follows the function: `ns:pkg/iface.func@1.0.0`. Resource functions
    // (`[method]counter.get`) have a dot of their own.
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    let qualified = path.rsplit_once('.').filter(|_| !path.starts_with('['));
    let candidates: Vec<&Function> = match qualified {
        Some((instance, func)) => functions
            .iter()
            .copied()
            .filter(|f| f.name == func && instance_matches(f, instance, version))
            .collect(),
        None => {
            let top: Vec<&Function> = functions
                .iter()
                .copied()
                .filter(|f| f.instance.is_none() && f.name == name)
                .collect();
            if top.is_empty() {
                functions
                    .iter()
                    .copied()
                    .filter(|f| f.name == name)
                    .collect()
            } else {
                top
            }
        }
    };
    match candidates.as_slice() {
        [function] => found(loaded, function),
        [] => {
            // The names that look like the one asked for first.
            let mut functions = functions.clone();
            functions.sort_by_key(|f| !looks_like(&f.name, name));
            bail!(
                "no exported function named `{name}` in `{}`; exported functions: {}",
                loaded.path.display(),
                signatures(&functions)
            )
        }
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|f| format!("`{}`", f.qualified_name()))
                .collect();
            bail!(
                "`{name}` is exported by more than one interface of `{}`; name one: {}",
                loaded.path.display(),
                names.join(", ")
            )
        }
    }
}

/// `function`, one of `loaded`'s exported functions, ready to be called.
pub(crate) fn found<'a>(loaded: &'a Loaded, function: &'a Function) -> Result<Found<'a>> {
    let component = loaded.component()?;
    let ty = function.ty.clone();
    let parent = function
        .instance
        .as_deref()
        .map(|i| component.get_export_index(None, i))
        .map(|i| i.expect("the world lists only real exports"));
    let index = component
        .get_export_index(parent.as_ref(), &function.name)
        .expect("the world lists only real exports");
    Ok(Found {
        function,
        ty,
        index,
    })
}

/// Whether `function` lives in the instance a call names: by its full name (`ns:pkg/iface`,
/// version given after the function or not at all), or by the interface's short name.
fn instance_matches(function: &Function, instance: &str, version: Option<&str>) -> bool {
    let Some(exported) = function.instance.as_deref() else {
        return false;
    };
    let Some(iface) = worldhost_core::InterfaceName::parse(exported) else {
        // A plain instance name (`(export "ops" (instance …))`).
        return exported == instance && version.is_none();
    };
    let name_matches = instance == iface.unversioned() || instance == iface.interface;
    let version_matches = match version {
        None => true,
        Some(v) => iface
            .version
            .as_ref()
            .is_some_and(|own| own.to_string() == v),
    };
    name_matches && version_matches
}

/// "`add: func(a: u32, b: u32) -> u32`, …", or "none".
pub(crate) fn signatures(functions: &[&Function]) -> String {
    if functions.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = (functions.iter().take(SIGNATURES_SHOWN))
        .map(|f| format!("`{f}`"))
        .collect();
    match functions.len().checked_sub(SIGNATURES_SHOWN) {
        Some(more) if more > 0 => format!(
            "{} and {more} more (`worldhost inspect` lists them)",
            shown.join(", ")
        ),
        _ => shown.join(", "),
    }
}

/// Whether `candidate` looks like `asked` (a typo, a prefix): they begin alike.
fn looks_like(candidate: &str, asked: &str) -> bool {
    let prefix = |s: &str| s.chars().take(2).collect::<String>();
    candidate.starts_with(asked)
        || asked.starts_with(candidate)
        || prefix(candidate) == prefix(asked)
}

/// How many signatures a message shows.
const SIGNATURES_SHOWN: usize = 3;
