//! Types in WIT syntax, as signatures and errors show them: structurally from wasmtime's types
//! (which carry no names), or by the component's own names, decoded from its binary.

use std::collections::HashMap;
use wasmtime::component::types::Type;
use wit_parser::decoding::DecodedWasm;
use wit_parser::{Handle, Resolve, TypeDefKind, WorldItem};

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

/// Exported functions' signatures in the component's own WIT names (`borrow<counter>`,
/// `point`), decoded from its binary by wit-parser; wasmtime's types carry no names. Keyed by
/// the instance an export lives in (`None` at the top level) and the function's name.
pub struct WitNames {
    signatures: HashMap<(Option<String>, String), Signature>,
}

/// Parameter names with their types, and the result types.
type Signature = (Vec<(String, String)>, Vec<String>);

impl WitNames {
    /// The names in `binary`, a component; `None` if its WIT cannot be decoded.
    pub fn decode(binary: &[u8]) -> Option<Self> {
        let DecodedWasm::Component(resolve, world) = wit_parser::decoding::decode(binary).ok()?
        else {
            return None;
        };
        let mut signatures = HashMap::new();
        let signature = |f: &wit_parser::Function| -> Signature {
            let params = f.params.iter();
            let params = params.map(|p| (p.name.clone(), named(&resolve, &p.ty)));
            let results = f.result.iter().map(|ty| named(&resolve, ty));
            (params.collect(), results.collect())
        };
        for (key, item) in &resolve.worlds[world].exports {
            match item {
                WorldItem::Function(f) => {
                    signatures.insert((None, f.name.clone()), signature(f));
                }
                WorldItem::Interface { id, .. } => {
                    let instance = resolve.name_world_key(key);
                    for (name, f) in &resolve.interfaces[*id].functions {
                        signatures.insert((Some(instance.clone()), name.clone()), signature(f));
                    }
                }
                WorldItem::Type { .. } => {}
            }
        }
        Some(Self { signatures })
    }

    /// The signature of the function `name` in `instance`, if the component has it.
    pub fn signature(&self, instance: Option<&str>, name: &str) -> Option<&Signature> {
        let key = (instance.map(String::from), name.to_string());
        self.signatures.get(&key)
    }
}

/// `ty` as WIT writes it, by its name where it has one.
fn named(resolve: &Resolve, ty: &wit_parser::Type) -> String {
    use wit_parser::Type as T;
    let id = match ty {
        T::Id(id) => *id,
        T::Bool => return "bool".into(),
        T::U8 => return "u8".into(),
        T::U16 => return "u16".into(),
        T::U32 => return "u32".into(),
        T::U64 => return "u64".into(),
        T::S8 => return "s8".into(),
        T::S16 => return "s16".into(),
        T::S32 => return "s32".into(),
        T::S64 => return "s64".into(),
        T::F32 => return "f32".into(),
        T::F64 => return "f64".into(),
        T::Char => return "char".into(),
        T::String => return "string".into(),
        T::ErrorContext => return "error-context".into(),
    };
    let def = &resolve.types[id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    let of = |ty: &wit_parser::Type| named(resolve, ty);
    let or_none = |ty: &Option<wit_parser::Type>| ty.as_ref().map(of);
    match &def.kind {
        // An owned handle is written as its resource's name.
        TypeDefKind::Handle(Handle::Own(r)) => of(&T::Id(*r)),
        TypeDefKind::Handle(Handle::Borrow(r)) => format!("borrow<{}>", of(&T::Id(*r))),
        TypeDefKind::List(t) => format!("list<{}>", of(t)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", of(t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", of(k), of(v)),
        TypeDefKind::Option(t) => format!("option<{}>", of(t)),
        TypeDefKind::Tuple(t) => {
            let types: Vec<String> = t.types.iter().map(of).collect();
            format!("tuple<{}>", types.join(", "))
        }
        TypeDefKind::Result(r) => match (or_none(&r.ok), or_none(&r.err)) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{ok}>"),
            (None, Some(err)) => format!("result<_, {err}>"),
            (Some(ok), Some(err)) => format!("result<{ok}, {err}>"),
        },
        TypeDefKind::Future(t) => or_none(t).map_or("future".into(), |t| format!("future<{t}>")),
        TypeDefKind::Stream(t) => or_none(t).map_or("stream".into(), |t| format!("stream<{t}>")),
        TypeDefKind::Type(t) => of(t),
        // Records, variants, enums, flags and resources always have names in WIT.
        other => other.as_str().into(),
    }
}
