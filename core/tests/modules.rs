//! core's, code's and http-proxy's modules form a DAG: no module reaches, through `crate::`
//! paths (code or doc links), a module that reaches it back; and http-proxy's modules import
//! only those its `lib.rs` lists before them (its layers). Read from the sources, so a new
//! cycle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module of the crate at `src` (`lib.rs` and `mod.rs` files aside) and the sibling
/// modules it names as `crate::NAME`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("the sources are there") {
        let path = entry.expect("a readable directory").path();
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        let text = if path.is_dir() {
            std::fs::read_to_string(path.join("mod.rs")).unwrap_or_default()
        } else if name != "lib" && path.extension().is_some_and(|e| e == "rs") {
            std::fs::read_to_string(&path).expect("a readable source")
        } else {
            continue;
        };
        let deps: BTreeSet<String> = text
            .match_indices("crate::")
            .map(|(at, _)| {
                text[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect::<String>()
            })
            .filter(|dep| !dep.is_empty() && dep != name)
            .collect();
        graph.insert(name.to_string(), deps);
    }
    graph
}

/// A cycle in `graph`, if it has one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for dep in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(dep, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn core_code_and_http_proxy_modules_each_form_a_dag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        root.join("src"),
        root.join("../code/src"),
        root.join("../handlers/http-proxy/src"),
    ];
    for src in sources {
        let graph = graph(&src);
        assert!(graph.len() >= 3, "{}: {graph:?}", src.display());
        if let Some(cycle) = cycle(&graph) {
            panic!("{}: a cycle: {}", src.display(), cycle.join(" -> "));
        }
    }
}

/// The modules `lib.rs` declares, in its order.
fn declared(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|line| {
            let line = line
                .trim()
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.to_string())
        })
        .collect()
}

#[test]
fn http_proxy_modules_import_only_those_listed_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../handlers/http-proxy/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs is there");
    let order = declared(&lib);
    assert!(order.len() >= 10, "{order:?}");
    let graph = graph(&src);
    for (at, module) in order.iter().enumerate() {
        let deps = graph
            .get(module)
            .unwrap_or_else(|| panic!("no file for `{module}`"));
        for dep in deps.iter().filter(|dep| order.contains(dep)) {
            let dep_at = order.iter().position(|m| m == dep).expect("contained");
            assert!(
                dep_at < at,
                "http-proxy: `{module}` imports `{dep}`, which lib.rs lists after it: move \
                 one of them to the layer it belongs to"
            );
        }
    }
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(n, deps)| (n.into(), deps.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
