//! The world description: interface names, the sketch of a binary, the world of a compiled
//! component; and the usual claim on it.

use wasmtime::Engine;
use worldhost_core::world::ItemKind;
use worldhost_core::{
    Claim, InterfaceName, Item, WasmKind, World, claim_export, export_version, strength,
};

#[test]
fn interface_name_with_version_is_split() {
    let name = InterfaceName::parse("wasi:http/incoming-handler@0.2.6").unwrap();
    assert_eq!(name.namespace, "wasi");
    assert_eq!(name.package, "http");
    assert_eq!(name.interface, "incoming-handler");
    assert_eq!(name.version, Some(semver::Version::new(0, 2, 6)));
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
    assert_eq!(sketch.imports[0].name, "wasi:cli/stdout@0.2.0");
    assert_eq!(sketch.imports.len(), 1);
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
    assert!(world.export_of("my:calc/ops").is_some());
    let names: Vec<String> = world
        .exported_functions()
        .map(|f| f.qualified_name())
        .collect();
    assert_eq!(names, ["add", "my:calc/ops.mul@1.0.0"]);
    let mul = world.exported_functions().nth(1).unwrap();
    assert_eq!(mul.signature(), "func(a: u32, b: u32) -> u32");
    assert_eq!(world.export_list(), "`add`, `my:calc/ops@1.0.0`");
}

fn exporting(name: &str) -> World {
    World {
        kind: WasmKind::Component,
        imports: vec![],
        exports: vec![Item {
            name: name.into(),
            interface: InterfaceName::parse(name),
            kind: ItemKind::Instance,
            functions: vec![],
        }],
    }
}

#[test]
fn a_claim_takes_versions_by_semver_not_by_prefix() {
    let claim = |name| claim_export(&exporting(name), "wasi:cli/run", &["0.2"]);
    assert_eq!(claim("wasi:cli/run@0.2.6"), Claim::Yes(strength::WORLD));
    assert_eq!(claim("wasi:cli/run@0.2.0"), Claim::Yes(strength::WORLD));
    assert!(matches!(claim("wasi:cli/run@0.20.1"), Claim::No(_)));
    assert!(matches!(claim("wasi:cli/run@0.3.0"), Claim::No(_)));
    assert!(matches!(claim("wasi:cli/run"), Claim::No(_)));
}

#[test]
fn a_world_exported_at_two_versions_runs_as_the_one_preferred() {
    let mut world = exporting("wasi:cli/run@0.2.6");
    world
        .exports
        .extend(exporting("wasi:cli/run@0.3.0").exports);
    let version =
        |versions: &[&str]| export_version(&world, "wasi:cli/run", versions).map(|v| v.to_string());
    assert_eq!(version(&["0.3", "0.2"]).as_deref(), Some("0.3.0"));
    assert_eq!(version(&["0.2", "0.3"]).as_deref(), Some("0.2.6"));
    assert_eq!(version(&["0.4"]), None);
    assert_eq!(
        claim_export(&world, "wasi:cli/run", &["0.3", "0.2"]),
        Claim::Yes(strength::WORLD)
    );
    let rc = exporting("wasi:cli/run@0.3.0-rc-2026-03-15");
    let claim = claim_export(&rc, "wasi:cli/run", &["0.3", "0.2"]);
    assert!(
        matches!(&claim, Claim::No(why) if why.contains("a prerelease") && why.contains("0.3.x or 0.2.x")),
        "{claim:?}"
    );
}

#[test]
fn concurrency_is_seen_in_the_binary_before_compiling() {
    let uses = |text: &str| World::uses_concurrency(&wat::parse_str(text).unwrap());
    // A WASI 0.2 command: no concurrency, so its engine goes without.
    assert!(!uses(
        r#"(component
            (import "wasi:cli/environment@0.2.6" (instance))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func $run (result (result)) (canon lift (core func $i "run")))
            (instance $r (export "run" (func $run)))
            (export "wasi:cli/run@0.2.6" (instance $r)))"#
    ));
    assert!(!uses("(module)"));
    // A WASI 0.3 import by name; an async function type; a stream type; an async lift.
    assert!(uses(
        r#"(component (import "wasi:cli/environment@0.3.0" (instance)))"#
    ));
    assert!(uses(r#"(component (type (func async (param "a" u32))))"#));
    assert!(uses(r#"(component (type (stream u8)))"#));
    assert!(uses(
        r#"(component
            (core module $m (func (export "f") (result i32) i32.const 0)
                            (func (export "cb") (param i32 i32 i32) (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func (export "f") (canon lift (core func $i "f") async (callback (core func $i "cb")))))"#
    ));
    // Bytes that do not parse: taken to use it.
    assert!(uses_bytes(b"\0asm\x0d\0\x01\0garbage"));
}

fn uses_bytes(binary: &[u8]) -> bool {
    World::uses_concurrency(binary)
}
