//! A ready-to-paste `--invoke` line for a component run without one: the first function it
//! exports, called with a placeholder WAVE value of each parameter's type.

use wasmtime::component::types::Type;
use worldhost_core::{Function, World};

/// "call one with `--invoke 'add(0, 0)'`; exported functions: …", or `None` when the component
/// exports no function.
pub(crate) fn suggestion(world: &World) -> Option<String> {
    let functions: Vec<&Function> = world.exported_functions().collect();
    let callable = functions.iter().find(|f| {
        f.ty.params().all(|(_, t)| passable(&t)) && f.ty.results().all(|t| passable(&t))
    })?;
    let unique = functions.iter().filter(|f| f.name == callable.name).count() == 1;
    let name = if unique {
        callable.name.clone()
    } else {
        callable.qualified_name()
    };
    let args: Vec<String> = callable.ty.params().map(|(_, t)| placeholder(&t)).collect();
    let shell: Vec<String> = args.iter().map(|a| shell_word(a)).collect();
    Some(format!(
        "call one with `--invoke '{name}({})'`, or as `{name}{}{}` after the component; \
         exported functions: {}",
        args.join(", "),
        if shell.is_empty() { "" } else { " " },
        shell.join(" "),
        crate::lookup::signatures(&functions)
    ))
}

/// `word` as one shell word: as is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+:/@%".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Whether a value of this type can be written on the command line (no handle of any kind).
pub(crate) fn passable(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) => false,
        Type::ErrorContext => false,
        Type::List(l) => passable(&l.ty()),
        Type::FixedLengthList(l) => passable(&l.ty()),
        Type::Map(m) => passable(&m.key()) && passable(&m.value()),
        Type::Record(r) => r.fields().all(|f| passable(&f.ty)),
        Type::Tuple(t) => t.types().all(|t| passable(&t)),
        Type::Variant(v) => v.cases().all(|c| c.ty.as_ref().is_none_or(passable)),
        Type::Option(o) => passable(&o.ty()),
        Type::Result(r) => {
            r.ok().is_none_or(|t| passable(&t)) && r.err().is_none_or(|t| passable(&t))
        }
        _ => true,
    }
}

/// A WAVE value of type `ty`, as simple as the type allows.
fn placeholder(ty: &Type) -> String {
    match ty {
        Type::Bool => "false".into(),
        Type::S8 | Type::U8 | Type::S16 | Type::U16 | Type::S32 | Type::U32 | Type::S64 => {
            "0".into()
        }
        Type::U64 => "0".into(),
        Type::Float32 | Type::Float64 => "0.0".into(),
        Type::Char => "'a'".into(),
        Type::String => "\"text\"".into(),
        Type::List(_) | Type::Map(_) => "[]".into(),
        Type::FixedLengthList(l) => {
            let items: Vec<String> = (0..l.len()).map(|_| placeholder(&l.ty())).collect();
            format!("[{}]", items.join(", "))
        }
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, placeholder(&f.ty)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let items: Vec<String> = t.types().map(|t| placeholder(&t)).collect();
            format!("({})", items.join(", "))
        }
        Type::Variant(v) => match v.cases().next() {
            Some(case) => match &case.ty {
                Some(t) => format!("{}({})", case.name, placeholder(t)),
                None => case.name.to_string(),
            },
            None => "?".into(),
        },
        Type::Enum(e) => e.names().next().unwrap_or("?").to_string(),
        Type::Flags(_) => "{}".into(),
        Type::Option(_) => "none".into(),
        Type::Result(r) => match r.ok() {
            Some(t) => format!("ok({})", placeholder(&t)),
            None => "ok".into(),
        },
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            "?".into()
        }
    }
}
