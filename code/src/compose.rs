//! Composition at load time, with wac-graph (the library behind `wac` and Spin's middleware):
//! middleware in front of a component (`--middleware`), and imports filled by other components
//! (`--plug`, as `wac plug`). The result is one standard component, compiled and run like any
//! other; `worldhost compose` writes it.

use crate::WasmKind;
use crate::cache::Cache;
use crate::kind::{read_wasm, shown};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use wac_graph::types::{Package, are_semver_compatible};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId, NodeKind, PackageId, Processor};

/// The components to put around the one the user runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pieces {
    /// `--middleware`: the first given is the outermost.
    pub middleware: Vec<PathBuf>,
    /// `--plug`: components whose exports fill the composed component's imports.
    pub plugs: Vec<PathBuf>,
}

impl Pieces {
    /// Whether there is nothing to compose.
    pub fn is_empty(&self) -> bool {
        self.middleware.is_empty() && self.plugs.is_empty()
    }

    /// Every file of the composition besides the component itself, in the order given.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.middleware.iter().chain(&self.plugs)
    }
}

/// A piece read from its file.
struct Piece {
    shown: String,
    id: PackageId,
}

/// A piece's file, read: how it is named and its bytes.
struct Read {
    shown: String,
    binary: Vec<u8>,
}

/// The component of `path` (whose bytes are `binary`) with `pieces` composed around it: each
/// middleware's imports that it also exports filled by the next component's exports (the
/// component itself last), then the imports the plugs export filled by them. Every import no
/// piece fills stays an import of the result (one import when several pieces import the same
/// interface, at the highest compatible version). With a `cache`, a composition of the same
/// inputs in the same order is taken from it instead of composed again.
pub fn compose(
    path: &Path,
    kind: WasmKind,
    binary: Vec<u8>,
    pieces: &Pieces,
    cache: Option<&Cache>,
) -> Result<Vec<u8>> {
    if kind == WasmKind::CoreModule {
        bail!(
            "`{}` is a core module; only components compose with `--middleware` and `--plug`",
            shown(path)
        );
    }
    let started = std::time::Instant::now();
    let read_all = |paths: &[PathBuf], flag| -> Result<Vec<Read>> {
        paths.iter().map(|path| read(path, flag)).collect()
    };
    let middleware = read_all(&pieces.middleware, "--middleware")?;
    let plugs = read_all(&pieces.plugs, "--plug")?;
    let key = key(&binary, &middleware, &plugs);
    if let Some(bytes) = cache.and_then(|cache| cache.get_composed(&key)) {
        tracing::info!(bytes = bytes.len(), "composition taken from the cache");
        return Ok(bytes);
    }
    let mut graph = CompositionGraph::new();
    let app = register(&mut graph, &shown(path), binary)?;
    let mut instance = graph.instantiate(app.id);
    let mut next = app;
    for read in middleware.into_iter().rev() {
        let middleware = register(&mut graph, &read.shown, read.binary)?;
        instance = forward(&mut graph, &middleware, &next, instance)?;
        next = middleware;
    }
    for name in exports(&graph, next.id) {
        let export = graph.alias_instance_export(instance, &name)?;
        graph.export(export, name)?;
    }
    let mut bytes = encode(&graph)?;
    if !plugs.is_empty() {
        let mut graph = CompositionGraph::new();
        let socket = register(&mut graph, &shown(path), bytes)?;
        let plugs = (plugs.into_iter())
            .map(|read| register(&mut graph, &read.shown, read.binary))
            .collect::<Result<Vec<_>>>()?;
        plug(&mut graph, &socket, &plugs)?;
        bytes = encode(&graph)?;
    }
    tracing::info!(
        middleware = pieces.middleware.len(),
        plugs = pieces.plugs.len(),
        bytes = bytes.len(),
        ms = format!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
        "composed"
    );
    if let Some(cache) = cache {
        cache.put_composed(&key, &bytes);
    }
    Ok(bytes)
}

/// The key of a composition: every input's bytes, in their roles and order, and worldhost's
/// version (whose composer made it).
fn key(binary: &[u8], middleware: &[Read], plugs: &[Read]) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"worldhost-composition1");
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    let pieces = (middleware.iter().map(|r| (b'm', &r.binary[..])))
        .chain(plugs.iter().map(|r| (b'p', &r.binary[..])));
    for (role, bytes) in std::iter::once((b'c', binary)).chain(pieces) {
        hasher.update(&[role]);
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    format!("composed-{}", hasher.finalize().to_hex())
}

/// Reads the piece at `path`, given with `flag`: a component, not a module or an artifact.
fn read(path: &Path, flag: &str) -> Result<Read> {
    let (binary, kind) = read_wasm(path).with_context(|| format!("`{flag} {}`", path.display()))?;
    if kind == WasmKind::CoreModule {
        bail!(
            "`{flag} {}` is a core module; only components compose (make it one with \
             `wasm-tools component new`)",
            path.display()
        );
    }
    Ok(Read {
        shown: shown(path),
        binary,
    })
}

fn register(graph: &mut CompositionGraph, shown: &str, binary: Vec<u8>) -> Result<Piece> {
    let name = format!("worldhost:piece{}", graph.packages().count());
    let package = Package::from_bytes(&name, None, binary, graph.types_mut())
        .with_context(|| format!("cannot read `{shown}` as a component"))?;
    let id = graph.register_package(package)?;
    Ok(Piece {
        shown: shown.to_string(),
        id,
    })
}

fn exports(graph: &CompositionGraph, id: PackageId) -> Vec<String> {
    graph.types()[graph[id].ty()]
        .exports
        .keys()
        .cloned()
        .collect()
}

fn imports(graph: &CompositionGraph, id: PackageId) -> Vec<String> {
    graph.types()[graph[id].ty()]
        .imports
        .keys()
        .cloned()
        .collect()
}

/// Instantiates `middleware` with each import it also exports filled by `next`'s export of
/// it (`next_instance`), and returns the middleware's instance.
fn forward(
    graph: &mut CompositionGraph,
    middleware: &Piece,
    next: &Piece,
    next_instance: NodeId,
) -> Result<NodeId> {
    let own = exports(graph, middleware.id);
    let forwarded: Vec<String> = (imports(graph, middleware.id).into_iter())
        .filter(|import| own.iter().any(|e| are_semver_compatible(e, import)))
        .collect();
    if forwarded.is_empty() {
        bail!(
            "`--middleware {}` is not a middleware: it imports none of the interfaces it exports \
             ({}); a middleware imports and exports the same interface (as \
             `wasi:http/incoming-handler` or `wasi:http/handler`) and forwards to the next \
             component's",
            middleware.shown,
            list(&own)
        );
    }
    let offered = exports(graph, next.id);
    let instance = graph.instantiate(middleware.id);
    for import in &forwarded {
        let Some(export) = offered.iter().find(|e| are_semver_compatible(e, import)) else {
            bail!(
                "`{}` exports no `{import}`, which the middleware `{}` forwards to; it exports {}",
                next.shown,
                middleware.shown,
                list(&offered)
            );
        };
        let alias = graph.alias_instance_export(next_instance, export)?;
        graph
            .set_instantiation_argument(instance, import, alias)
            .with_context(|| {
                format!(
                    "the middleware `{}` cannot take `{}`'s `{export}` as its `{import}`",
                    middleware.shown, next.shown
                )
            })?;
    }
    Ok(instance)
}

/// Fills `socket`'s imports with the plugs' exports, as `wac plug` does (a name, or one at a
/// compatible version, whose type fits); a plug that fills nothing is an error that names it.
fn plug(graph: &mut CompositionGraph, socket: &Piece, plugs: &[Piece]) -> Result<()> {
    let ids = plugs.iter().map(|p| p.id).collect();
    let wanted = imports(graph, socket.id);
    let unused = |graph: &CompositionGraph| {
        plugs.iter().find(|p| {
            !graph.nodes().any(|node| {
                matches!(node.kind(), NodeKind::Instantiation(_)) && node.package() == Some(p.id)
            })
        })
    };
    let result = wac_graph::plug(graph, ids, socket.id);
    if let Some(unused) = unused(graph) {
        let offered = exports(graph, unused.id);
        // An export of an imported interface that was not taken: its type does not fit.
        let misfit = offered.iter().find_map(|export| {
            let import = wanted.iter().find(|i| are_semver_compatible(export, i))?;
            Some(format!(
                "its `{export}` does not fit the `{import}` that `{}` imports (their types \
                 differ: rebuild one against the other's WIT)",
                socket.shown
            ))
        });
        match misfit {
            Some(misfit) => bail!("`--plug {}` fills no import: {misfit}", unused.shown),
            None => bail!(
                "`--plug {}` fills no import of `{}`: it exports {}, and `{}` imports {}",
                unused.shown,
                socket.shown,
                list(&offered),
                socket.shown,
                list(&wanted)
            ),
        }
    }
    result.context("cannot plug the components together")
}

fn encode(graph: &CompositionGraph) -> Result<Vec<u8>> {
    let options = EncodeOptions {
        processor: Some(Processor {
            name: "worldhost",
            version: env!("CARGO_PKG_VERSION"),
        }),
        ..EncodeOptions::default()
    };
    graph
        .encode(options)
        .context("cannot encode the composed component")
}

fn list(names: &[String]) -> String {
    match names {
        [] => "nothing".into(),
        names => names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
