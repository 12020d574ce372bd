//! The world description: what a compiled component imports and exports, read once from its own
//! type (`Component::component_type()`), and used by selection, by `inspect` and in every error
//! message. Knows no particular world: a handler asks it questions such as "is `wasi:cli/run`
//! exported?".

use serde::Serialize;
use std::fmt;
use wasmtime::Engine;
use wasmtime::component::types::{self, ComponentItem, Type};

/// Everything a component (or a core module) imports and exports, with the signatures of a
/// component's exported functions.
#[derive(Debug, Clone, Serialize)]
pub struct World {
    /// What the file is.
    pub kind: WorldKind,
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

/// What was loaded: a component, or a core module (whose imports are named
/// `module::name`, and whose items carry no WIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorldKind {
    /// A component.
    Component,
    /// A core WebAssembly module.
    CoreModule,
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
    pub version: Option<String>,
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
    pub ty: Option<types::ComponentFunc>,
}

impl InterfaceName {
    /// Parses `ns:pkg/iface[@version]`; anything else (a plain `add`) is not an interface name.
    pub fn parse(name: &str) -> Option<Self> {
        let (path, version) = match name.split_once('@') {
            Some((path, version)) => (path, Some(version.to_string())),
            None => (name, None),
        };
        let (package_path, interface) = path.split_once('/')?;
        let (namespace, package) = package_path.split_once(':')?;
        if namespace.is_empty() || package.is_empty() || interface.is_empty() {
            return None;
        }
        Some(Self {
            namespace: namespace.into(),
            package: package.into(),
            interface: interface.into(),
            version,
        })
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
            kind: WorldKind::Component,
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
        use wasmparser::{Chunk, ComponentExternalKind, Parser, Payload};
        let kind_of = |kind: ComponentExternalKind| match kind {
            ComponentExternalKind::Instance => ItemKind::Instance,
            ComponentExternalKind::Func => ItemKind::Function,
            ComponentExternalKind::Type => ItemKind::Type,
            ComponentExternalKind::Module => ItemKind::Module,
            ComponentExternalKind::Component => ItemKind::Component,
            ComponentExternalKind::Value => ItemKind::Type,
        };
        let item = |name: &str, kind: ItemKind| Item {
            name: name.to_string(),
            interface: InterfaceName::parse(name),
            kind,
            functions: Vec::new(),
        };
        let mut world = World {
            kind: WorldKind::Component,
            imports: Vec::new(),
            exports: Vec::new(),
        };
        let mut parser = Parser::new(0);
        let mut offset = 0;
        loop {
            let Chunk::Parsed { consumed, payload } =
                parser.parse(binary.get(offset..)?, true).ok()?
            else {
                return None;
            };
            offset += consumed;
            match payload {
                Payload::Version { encoding, .. }
                    if encoding != wasmparser::Encoding::Component =>
                {
                    return None;
                }
                // Nested modules and components are skipped whole: only the outer names count.
                Payload::ModuleSection {
                    unchecked_range, ..
                }
                | Payload::ComponentSection {
                    unchecked_range, ..
                } => {
                    // The outer parser resumes after the nested one's bytes, which are not
                    // fed to it.
                    offset += unchecked_range.len();
                }
                Payload::ComponentImportSection(reader) => {
                    for import in reader {
                        let import = import.ok()?;
                        let kind = match import.ty {
                            wasmparser::ComponentTypeRef::Instance(_) => ItemKind::Instance,
                            wasmparser::ComponentTypeRef::Func(_) => ItemKind::Function,
                            wasmparser::ComponentTypeRef::Module(_) => ItemKind::Module,
                            wasmparser::ComponentTypeRef::Component(_) => ItemKind::Component,
                            _ => ItemKind::Type,
                        };
                        world.imports.push(item(import.name.name, kind));
                    }
                }
                Payload::ComponentExportSection(reader) => {
                    for export in reader {
                        let export = export.ok()?;
                        world
                            .exports
                            .push(item(export.name.name, kind_of(export.kind)));
                    }
                }
                Payload::End(_) => return Some(world),
                _ => {}
            }
        }
    }

    /// Reads the imports and exports of a core module; imports are named `module::name`.
    pub fn of_module(module: &wasmtime::Module) -> Self {
        Self {
            kind: WorldKind::CoreModule,
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

    /// Whether a core module imports anything from `module` (`wasi_snapshot_preview1`).
    pub fn imports_from_module(&self, module: &str) -> bool {
        let prefix = format!("{module}::");
        self.kind == WorldKind::CoreModule
            && self.imports.iter().any(|i| i.name.starts_with(&prefix))
    }

    /// The export named exactly `name`, if any.
    pub fn export_named(&self, name: &str) -> Option<&Item> {
        self.exports.iter().find(|i| i.name == name)
    }

    /// The export of interface `ns:pkg/iface` (any version), if the component has one.
    pub fn export_of(&self, interface: &str) -> Option<&Item> {
        find_interface(&self.exports, interface)
    }

    /// The import of interface `ns:pkg/iface` (any version), if the component has one.
    pub fn import_of(&self, interface: &str) -> Option<&Item> {
        find_interface(&self.imports, interface)
    }

    /// Every exported function, top level first, then those inside exported instances.
    pub fn exported_functions(&self) -> impl Iterator<Item = &Function> {
        self.exports.iter().flat_map(|item| item.functions.iter())
    }

    /// The export names, in backticks and joined, for error messages: "`a`, `b`" or "nothing".
    pub fn export_list(&self) -> String {
        name_list(&self.exports)
    }

    /// The import names, as `export_list` does.
    pub fn import_list(&self) -> String {
        name_list(&self.imports)
    }
}

fn find_interface<'a>(items: &'a [Item], interface: &str) -> Option<&'a Item> {
    items.iter().find(|item| {
        item.interface
            .as_ref()
            .is_some_and(|i| i.unversioned() == interface)
    })
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
            ty: Some(func.clone()),
        }
    }
}

/// Renders a type in WIT syntax. wasmtime's types carry no type names, so records, variants,
/// enums and flags are written out structurally (`record { x: u32 }`): exactly the shape a
/// WAVE value must take.
pub fn wit_type(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::List(l) => format!("list<{}>", wit_type(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", wit_type(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", wit_type(&m.key()), wit_type(&m.value())),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, wit_type(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let types: Vec<String> = t.types().map(|t| wit_type(&t)).collect();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(ty) => format!("{}({})", c.name, wit_type(ty)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", wit_type(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", wit_type(&ok)),
            (None, Some(err)) => format!("result<_, {}>", wit_type(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", wit_type(&ok), wit_type(&err)),
        },
        // Resource types carry no name in wasmtime's types either.
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(f) => match f.ty() {
            Some(t) => format!("future<{}>", wit_type(&t)),
            None => "future".into(),
        },
        Type::Stream(s) => match s.ty() {
            Some(t) => format!("stream<{}>", wit_type(&t)),
            None => "stream".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_name_with_version_is_split() {
        let name = InterfaceName::parse("wasi:http/incoming-handler@0.2.6").unwrap();
        assert_eq!(name.namespace, "wasi");
        assert_eq!(name.package, "http");
        assert_eq!(name.interface, "incoming-handler");
        assert_eq!(name.version.as_deref(), Some("0.2.6"));
        assert_eq!(name.unversioned(), "wasi:http/incoming-handler");
        assert_eq!(name.to_string(), "wasi:http/incoming-handler@0.2.6");
    }

    #[test]
    fn plain_names_are_not_interfaces() {
        assert_eq!(InterfaceName::parse("add"), None);
        assert_eq!(InterfaceName::parse("a:/b"), None);
        assert_eq!(InterfaceName::parse("nocolon/iface"), None);
    }

    #[test]
    fn qualified_name_puts_the_version_after_the_function() {
        let f = Function {
            name: "mul".into(),
            instance: Some("my:calc/ops@1.0.0".into()),
            params: vec![("a".into(), "u32".into()), ("b".into(), "u32".into())],
            results: vec!["u32".into()],
            ty: None,
        };
        assert_eq!(f.qualified_name(), "my:calc/ops.mul@1.0.0");
        assert_eq!(f.signature(), "func(a: u32, b: u32) -> u32");
    }

    #[test]
    fn a_sketch_names_the_outer_imports_and_exports_only() {
        let binary = wat::parse_str(
            r#"(component
                (import "wasi:cli/stdout@0.2.0" (instance))
                (core module $m (func (export "inner")))
                (component $c (import "nested:x/y" (instance)))
                (instance $i)
                (export "wasi:http/incoming-handler@0.2.6" (instance $i))
            )"#,
        )
        .unwrap();
        let sketch = World::sketch(&binary).unwrap();
        assert_eq!(sketch.import_list(), "`wasi:cli/stdout@0.2.0`");
        assert_eq!(sketch.export_list(), "`wasi:http/incoming-handler@0.2.6`");
        let export = sketch.export_of("wasi:http/incoming-handler").unwrap();
        assert_eq!(export.kind, ItemKind::Instance);
        assert!(World::sketch(&wat::parse_str("(module)").unwrap()).is_none());
        assert!(World::sketch(b"\0asm\x0d\0\x01\0\xff").is_none());
    }

    #[test]
    fn a_sketch_of_damaged_bytes_is_none_or_a_sketch_never_a_panic() {
        let binary = wat::parse_str(
            r#"(component
                (import "wasi:cli/stdout@0.2.0" (instance))
                (core module $m (func (export "inner")) (memory 1))
                (component $c (import "nested:x/y" (instance)))
                (instance $i)
                (export "wasi:http/incoming-handler@0.2.6" (instance $i))
            )"#,
        )
        .unwrap();
        for len in 0..binary.len() {
            let _ = World::sketch(&binary[..len]);
        }
        for at in 0..binary.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = binary.clone();
                damaged[at] ^= flip;
                let _ = World::sketch(&damaged);
            }
        }
    }

    #[test]
    fn world_of_a_wat_component_lists_functions_and_instances() {
        let engine = Engine::default();
        let component = wasmtime::component::Component::new(
            &engine,
            r#"(component
                (import "wasi:cli/environment@0.2.0" (instance))
                (core module $m (func (export "f") (param i32 i32) (result i32) local.get 0))
                (core instance $i (instantiate $m))
                (func $add (param "a" u32) (param "b" u32) (result u32)
                    (canon lift (core func $i "f")))
                (export "add" (func $add))
                (instance $ops (export "mul" (func $add)))
                (export "my:calc/ops@1.0.0" (instance $ops))
            )"#,
        )
        .unwrap();
        let world = World::of(&component, &engine);
        assert!(world.import_of("wasi:cli/environment").is_some());
        assert!(world.export_of("my:calc/ops").is_some());
        let names: Vec<String> = world
            .exported_functions()
            .map(|f| f.qualified_name())
            .collect();
        assert_eq!(names, ["add", "my:calc/ops.mul@1.0.0"]);
        assert_eq!(world.export_list(), "`add`, `my:calc/ops@1.0.0`");
    }
}
