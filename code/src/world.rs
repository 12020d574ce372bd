//! The world description: what a compiled component imports and exports, read once from its own
//! type (`Component::component_type()`), and used by selection, by `inspect` and in every error
//! message. Knows no particular world: a handler asks it questions such as "is `wasi:cli/run`
//! exported?".

pub use crate::WasmKind;
use crate::wit::wit_type;
use serde::Serialize;
use std::fmt;
use wasmparser::names::{ComponentName, ComponentNameKind};
use wasmtime::Engine;
use wasmtime::component::types::{self, ComponentItem};

/// Everything a component (or a core module) imports and exports, with the signatures of a
/// component's exported functions.
#[derive(Debug, Clone, Serialize)]
pub struct World {
    /// What the file is (a core module's imports are named `module::name`, and its items
    /// carry no WIT).
    pub kind: WasmKind,
    /// Imports, in the component's order.
    pub imports: Vec<Item>,
    /// Exports, in the component's order.
    pub exports: Vec<Item>,
}

/// One import or export.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The name as the component spells it: `wasi:cli/run@0.2.6`, or a plain `add`.
    pub name: String,
    /// The interface name split into parts, when `name` is one (`pkg:ns/iface@version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<InterfaceName>,
    /// What kind of item this is.
    pub kind: ItemKind,
    /// For a function: its own signature; for an instance: its functions, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<Function>,
}

/// The kind of an import or export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    /// An instance: an interface in WIT.
    Instance,
    /// A function.
    Function,
    /// A type (a resource type or an interface type).
    Type,
    /// A core module.
    Module,
    /// A nested component.
    Component,
    /// A core function: a core module's, or (rarely) a component's.
    CoreFunction,
    /// A core module's memory.
    Memory,
    /// A core module's table.
    Table,
    /// A core module's global.
    Global,
    /// A core module's exception tag.
    Tag,
}

/// A parsed interface name: `wasi:http/incoming-handler@0.2.6`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceName {
    /// `wasi`
    pub namespace: String,
    /// `http`
    pub package: String,
    /// `incoming-handler`
    pub interface: String,
    /// `0.2.6`, when the name carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<semver::Version>,
}

/// An exported (or imported) function and its WIT signature.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// The function's own name: `add`, `[method]counter.get`.
    pub name: String,
    /// The instance it lives in, if any: `my:calc/ops@1.0.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Parameter names and their WIT types.
    pub params: Vec<(String, String)>,
    /// WIT types of the results (at most one in WIT today).
    pub results: Vec<String>,
    /// The function's type, for handlers that call it.
    #[serde(skip)]
    pub ty: types::ComponentFunc,
}

impl InterfaceName {
    /// Parses `ns:pkg/iface[@version]` (wasmparser's reading of component names); anything
    /// else (a plain `add`, a `[method]r.f`) is not an interface name.
    pub fn parse(name: &str) -> Option<Self> {
        let parsed = ComponentName::new(name, 0).ok()?;
        let ComponentNameKind::Interface(interface) = parsed.kind() else {
            return None;
        };
        Some(Self {
            namespace: interface.namespace().to_string(),
            package: interface.package().to_string(),
            interface: interface.interface().to_string(),
            version: interface.version(None).ok()?,
        })
    }

    /// Whether it is an interface of WASI 0.3 (`wasi:…@0.3.x`, a prerelease of it included).
    pub fn is_wasi_p3(&self) -> bool {
        self.namespace == "wasi"
            && (self.version.as_ref()).is_some_and(|v| (v.major, v.minor) == (0, 3))
    }

    /// `ns:pkg/iface`, without the version: what handlers match on.
    pub fn unversioned(&self) -> String {
        format!("{}:{}/{}", self.namespace, self.package, self.interface)
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.unversioned())?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

impl Function {
    /// The name a user types after `--invoke`: `add`, or `my:calc/ops.mul@1.0.0` inside an
    /// interface (wasmtime's spelling: the version after the function name).
    pub fn qualified_name(&self) -> String {
        match self
            .instance
            .as_deref()
            .map(|i| (i, InterfaceName::parse(i)))
        {
            None => self.name.clone(),
            Some((_, Some(iface))) => match &iface.version {
                Some(v) => format!("{}.{}@{v}", iface.unversioned(), self.name),
                None => format!("{}.{}", iface.unversioned(), self.name),
            },
            Some((instance, None)) => format!("{instance}.{}", self.name),
        }
    }

    /// The WIT signature: `func(a: u32, b: u32) -> u32`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(name, ty)| format!("{name}: {ty}"))
            .collect();
        let mut sig = format!("func({})", params.join(", "));
        match self.results.as_slice() {
            [] => {}
            [one] => sig.push_str(&format!(" -> {one}")),
            many => sig.push_str(&format!(" -> ({})", many.join(", "))),
        }
        sig
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.qualified_name(), self.signature())
    }
}

impl World {
    /// Reads the world of a compiled component from its type.
    pub fn of(component: &wasmtime::component::Component, engine: &Engine) -> Self {
        let ty = component.component_type();
        Self {
            kind: WasmKind::Component,
            imports: ty
                .imports(engine)
                .map(|(name, ext)| Item::new(name, &ext.ty, engine))
                .collect(),
            exports: ty
                .exports(engine)
                .map(|(name, ext)| Item::new(name, &ext.ty, engine))
                .collect(),
        }
    }

    /// A sketch of a component's world from its binary, before it is compiled: the names of its
    /// top-level imports and exports, with their kinds but without signatures. Enough to guess
    /// which handler will run it (and so which engine to compile it for); selection proper runs
    /// on [`World::of`] once it is compiled. `None` for a core module or a binary that does not
    /// parse (compiling it will say what is wrong).
    pub fn sketch(binary: &[u8]) -> Option<Self> {
        use wasmparser::{ComponentExternalKind as Kind, ComponentTypeRef as Ref, Payload};
        let item = |name: &str, kind: ItemKind| Item {
            name: name.to_string(),
            interface: InterfaceName::parse(name),
            kind,
            functions: Vec::new(),
        };
        let mut world = World {
            kind: WasmKind::Component,
            imports: Vec::new(),
            exports: Vec::new(),
        };
        let truncated = crate::kind::outer_payloads(binary, |payload| {
            match payload {
                Payload::Version { encoding, .. }
                    if encoding != wasmparser::Encoding::Component =>
                {
                    return None;
                }
                Payload::ComponentImportSection(reader) => {
                    for import in reader {
                        let import = import.ok()?;
                        let kind = match import.ty {
                            Ref::Instance(_) => ItemKind::Instance,
                            Ref::Func(_) => ItemKind::Function,
                            Ref::Module(_) => ItemKind::Module,
                            Ref::Component(_) => ItemKind::Component,
                            _ => ItemKind::Type,
                        };
                        world.imports.push(item(import.name.name, kind));
                    }
                }
                Payload::ComponentExportSection(reader) => {
                    for export in reader {
                        let export = export.ok()?;
                        let kind = match export.kind {
                            Kind::Instance => ItemKind::Instance,
                            Kind::Func => ItemKind::Function,
                            Kind::Module => ItemKind::Module,
                            Kind::Component => ItemKind::Component,
                            Kind::Type | Kind::Value => ItemKind::Type,
                        };
                        world.exports.push(item(export.name.name, kind));
                    }
                }
                _ => {}
            }
            Some(())
        })?;
        (!truncated).then_some(world)
    }

    /// Whether a component's binary uses the component model's concurrency (WASI 0.3's async
    /// functions, streams, futures, tasks), read before it is compiled: its engine must then
    /// have wasmtime's concurrency support, which costs every store some set-up and every call
    /// some checks, and which an engine for a WASI 0.2 component goes without. Looks at the
    /// outer component's types (an async function, a stream, a future, an error context, in an
    /// import's instance type too), its canonical functions (an async lift or lower, a task or
    /// stream built-in) and its WASI imports and exports at 0.3. A binary that does not parse
    /// is taken to use it (compiling it will say what is wrong).
    pub fn uses_concurrency(binary: &[u8]) -> bool {
        use wasmparser::{
            CanonicalFunction as Canon, CanonicalOption as Opt, ComponentDefinedType as Def,
            ComponentType as Ty, InstanceTypeDeclaration as Decl, Payload,
        };
        fn concurrent_type(ty: &Ty<'_>) -> bool {
            match ty {
                Ty::Func(func) => func.async_,
                Ty::Defined(Def::Future(_) | Def::Stream(_)) => true,
                Ty::Instance(decls) => decls.iter().any(|decl| match decl {
                    Decl::Type(ty) => concurrent_type(ty),
                    _ => false,
                }),
                _ => false,
            }
        }
        let async_options =
            |options: &[Opt]| (options.iter()).any(|o| matches!(o, Opt::Async | Opt::Callback(_)));
        let wasi_p3 = |name: &str| InterfaceName::parse(name).is_some_and(|i| i.is_wasi_p3());
        let mut found = false;
        let parsed =
            crate::kind::outer_payloads(binary, |payload| {
                found =
                    found
                        || match payload {
                            Payload::ComponentTypeSection(reader) => (reader.into_iter())
                                .any(|ty| ty.map_or(true, |ty| concurrent_type(&ty))),
                            Payload::ComponentCanonicalSection(reader) => {
                                reader.into_iter().any(|canon| match canon {
                                    Ok(
                                        Canon::Lift { options, .. } | Canon::Lower { options, .. },
                                    ) => async_options(&options),
                                    Ok(Canon::ResourceNew { .. })
                                    | Ok(Canon::ResourceDrop { .. })
                                    | Ok(Canon::ResourceRep { .. }) => false,
                                    // A task, stream, future, waitable or thread built-in, or one
                                    // that does not parse.
                                    _ => true,
                                })
                            }
                            Payload::ComponentImportSection(reader) => (reader.into_iter())
                                .any(|i| i.map_or(true, |i| wasi_p3(i.name.name))),
                            Payload::ComponentExportSection(reader) => (reader.into_iter())
                                .any(|e| e.map_or(true, |e| wasi_p3(e.name.name))),
                            _ => false,
                        };
                Some(())
            });
        found || parsed != Some(false)
    }

    /// Reads the imports and exports of a core module; imports are named `module::name`.
    pub fn of_module(module: &wasmtime::Module) -> Self {
        Self {
            kind: WasmKind::CoreModule,
            imports: module
                .imports()
                .map(|i| Item::core(format!("{}::{}", i.module(), i.name()), i.ty()))
                .collect(),
            exports: module
                .exports()
                .map(|e| Item::core(e.name().to_string(), e.ty()))
                .collect(),
        }
    }

    /// The export named exactly `name`, if any.
    pub fn export_named(&self, name: &str) -> Option<&Item> {
        self.exports.iter().find(|i| i.name == name)
    }

    /// The export of interface `ns:pkg/iface` (any version), if the component has one.
    pub fn export_of(&self, interface: &str) -> Option<&Item> {
        self.exports_of(interface).next()
    }

    /// Its exports of `interface` (`ns:pkg/iface`), at any version: a component may export
    /// one interface at two versions (a WASI 0.2 and a 0.3 world).
    pub fn exports_of(&self, interface: &str) -> impl Iterator<Item = &Item> {
        let interface = interface.to_string();
        self.exports.iter().filter(move |item| {
            item.interface
                .as_ref()
                .is_some_and(|i| i.unversioned() == interface)
        })
    }

    /// Whether it imports or exports a WASI 0.3 interface (`wasi:…@0.3.x`).
    pub fn uses_wasi_p3(&self) -> bool {
        (self.imports.iter().chain(&self.exports))
            .filter_map(|item| item.interface.as_ref())
            .any(InterfaceName::is_wasi_p3)
    }

    /// Every exported function, top level first, then those inside exported instances.
    pub fn exported_functions(&self) -> impl Iterator<Item = &Function> {
        self.exports.iter().flat_map(|item| item.functions.iter())
    }

    /// The same world with its exported functions' signatures in the WIT names of `names`
    /// (where it has the function, with as many parameters).
    pub fn named(&self, names: &crate::wit::WitNames) -> World {
        let mut world = self.clone();
        for function in world
            .exports
            .iter_mut()
            .flat_map(|i| i.functions.iter_mut())
        {
            let found = names.signature(function.instance.as_deref(), &function.name);
            if let Some((params, results)) = found.filter(|(p, _)| p.len() == function.params.len())
            {
                function.params = params.clone();
                function.results = results.clone();
            }
        }
        world
    }

    /// The export names, in backticks and joined, for error messages: "`a`, `b`" or "nothing".
    pub fn export_list(&self) -> String {
        name_list(&self.exports)
    }

    /// [`World::export_list`], at most `max` names, then how many more: for a message.
    pub fn export_list_short(&self, max: usize) -> String {
        if self.exports.len() <= max {
            return self.export_list();
        }
        let shown = name_list(&self.exports[..max]);
        format!("{shown} and {} more", self.exports.len() - max)
    }
}

fn name_list(items: &[Item]) -> String {
    if items.is_empty() {
        return "nothing".into();
    }
    items
        .iter()
        .map(|i| format!("`{}`", i.name))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Item {
    fn core(name: String, ty: wasmtime::ExternType) -> Self {
        let kind = match ty {
            wasmtime::ExternType::Func(_) => ItemKind::CoreFunction,
            wasmtime::ExternType::Memory(_) => ItemKind::Memory,
            wasmtime::ExternType::Table(_) => ItemKind::Table,
            wasmtime::ExternType::Global(_) => ItemKind::Global,
            wasmtime::ExternType::Tag(_) => ItemKind::Tag,
        };
        Self {
            name,
            interface: None,
            kind,
            functions: vec![],
        }
    }

    fn new(name: &str, ty: &ComponentItem, engine: &Engine) -> Self {
        let (kind, functions) = match ty {
            ComponentItem::ComponentFunc(func) => {
                (ItemKind::Function, vec![Function::new(name, None, func)])
            }
            ComponentItem::ComponentInstance(instance) => {
                let functions = instance
                    .exports(engine)
                    .filter_map(|(fname, ext)| match &ext.ty {
                        ComponentItem::ComponentFunc(func) => {
                            Some(Function::new(fname, Some(name), func))
                        }
                        _ => None,
                    })
                    .collect();
                (ItemKind::Instance, functions)
            }
            ComponentItem::Type(_) | ComponentItem::Resource(_) => (ItemKind::Type, vec![]),
            ComponentItem::Module(_) => (ItemKind::Module, vec![]),
            ComponentItem::Component(_) => (ItemKind::Component, vec![]),
            ComponentItem::CoreFunc(_) => (ItemKind::CoreFunction, vec![]),
        };
        Self {
            name: name.into(),
            interface: InterfaceName::parse(name),
            kind,
            functions,
        }
    }
}

impl Function {
    fn new(name: &str, instance: Option<&str>, func: &types::ComponentFunc) -> Self {
        Self {
            name: name.into(),
            instance: instance.map(Into::into),
            params: func
                .params()
                .map(|(name, ty)| (name.to_string(), wit_type(&ty)))
                .collect(),
            results: func.results().map(|ty| wit_type(&ty)).collect(),
            ty: func.clone(),
        }
    }
}

/// The version at which the component exports `interface`, the first of `versions` (semver
/// requirements, most wanted first) that one of its exports meets: a component that exports a
/// world at two versions runs as the one its handler prefers.
pub fn export_version<'w>(
    world: &'w World,
    interface: &str,
    versions: &[&str],
) -> Option<&'w semver::Version> {
    export_at(world, interface, versions)?
        .interface
        .as_ref()?
        .version
        .as_ref()
}

/// The export of `interface` at that version ([`export_version`]): its functions, for a
/// handler that checks what it will call.
pub fn export_at<'w>(world: &'w World, interface: &str, versions: &[&str]) -> Option<&'w Item> {
    versions.iter().find_map(|wanted| {
        let wanted = semver::VersionReq::parse(&format!("~{wanted}")).ok()?;
        world.exports_of(interface).find(|item| {
            let version = item.interface.as_ref().and_then(|i| i.version.as_ref());
            version.is_some_and(|v| wanted.matches(v))
        })
    })
}
