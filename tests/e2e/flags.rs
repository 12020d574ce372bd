//! wasmtime's flags through worldhost: the option groups of wasmtime-cli-flags (`-O`, `-C`,
//! `-D`, `-W`, `-S`, `--config`), outgoing HTTP from a command (`-S http`), wasi:config and
//! wasi:keyvalue, `--profile perfmap`, `-D coredump`, `-` as the component, the preview1
//! handler's `--preload` and `--invoke`, and serve's `-H`, `INSTANCE_ID`, output prefixes and
//! `--shutdown-addr`.

use crate::server::{Server, get};
use crate::worldhost;
use std::io::Write as _;
use worldhost_test_artifacts as guest;

#[test]
pub(crate) fn fetch() {
    let port = crate::serve::upstream("from upstream");
    let url = format!("http://127.0.0.1:{port}/x");
    // Without `--allow-outgoing`, the request is denied and the log says which flag allows it.
    worldhost()
        .args(["run", "-S", "http", guest::FETCH, &url])
        .run()
        .code(1)
        .stderr_has("HttpRequestDenied")
        .stderr_has("--allow-outgoing HOST[:PORT]");
    let allowed = format!("127.0.0.1:{port}");
    worldhost()
        .args([
            "run",
            "-S",
            "http",
            "--allow-outgoing",
            &allowed,
            guest::FETCH,
            &url,
        ])
        .run()
        .success()
        .stdout("200 from upstream\n");
    // Without `-S http`, wasi:http is not linked, and the error says what to do.
    worldhost()
        .args(["run", guest::FETCH, &url])
        .run()
        .code(1)
        .stderr_has("wasi:http/outgoing-handler")
        .one_paragraph_error();
}

#[test]
pub(crate) fn read_config() {
    worldhost()
        .args([
            "run",
            "-S",
            "config,config-var=greeting=hello",
            "-S",
            "keyvalue,keyvalue-in-memory-data=colour=green",
            guest::READ_CONFIG,
            "greeting",
            "colour",
        ])
        .run()
        .success()
        .stdout("config greeting=hello\nkeyvalue colour=green\n");
    worldhost()
        .args(["run", "-S", "config,keyvalue", guest::READ_CONFIG, "a", "b"])
        .run()
        .success()
        .stdout("config a=<none>\nkeyvalue b=<none>\n");
    // The same keys for a call, through the invoke handler: `run()` of the command's export.
    worldhost()
        .args([
            "run",
            "-S",
            "config,config-var=greeting=hi",
            "-S",
            "keyvalue,keyvalue-in-memory-data=colour=red",
            "--invoke",
            "run()",
            guest::READ_CONFIG,
        ])
        .run()
        .success()
        .stdout("config greeting=hi\nkeyvalue colour=red\nok\n");
    // Data for an interface that is not linked is refused, not dropped.
    worldhost()
        .args(["run", "-S", "config-var=a=b", guest::READ_CONFIG, "a", "b"])
        .run()
        .code(1)
        .stderr_has("add `-S config`");
}

#[test]
fn every_option_group_is_wasmtimes() {
    for args in [
        &["-O", "opt-level=0"][..],
        &["-O", "memory-reservation=1048576,memory-guard-size=65536"],
        &["-C", "compiler=cranelift,parallel-compilation=n"],
        &["-C", "cache=n"],
        &["-D", "debug-info=y"],
        &["-D", "address-map=n,max-backtrace=5"],
        &[
            "-W",
            "max-wasm-stack=1048576,simd=y,relaxed-simd-deterministic=y",
        ],
        &[
            "-W",
            "max-table-elements=100000,max-instances=100,max-memories=10",
        ],
        &["-W", "nan-canonicalization=y"],
        &[
            "-S",
            "inherit-stdin=n,max-resources=1000,hostcall-fuel=100000",
        ],
        &["-S", "max-random-size=1024,cli-exit-with-code=y"],
    ] {
        worldhost()
            .args(["run"])
            .args(args)
            .args([guest::HELLO])
            .run()
            .success()
            .stdout_has("Hello");
    }
    // wasmtime 48's DWARF transform panics without an address map (simulate.rs, an index
    // out of bounds): the panic is reported as wasmtime's bug, in one paragraph.
    worldhost()
        .args(["run", "-D", "debug-info=y,address-map=n", guest::HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("this is a bug in wasmtime");
    // `-S inherit-stdout=n`: the guest's output goes nowhere.
    worldhost()
        .args(["run", "-S", "inherit-stdout=n", guest::HELLO])
        .run()
        .success()
        .stdout("");
    // A key given to the wrong kind of code is refused, naming the key and the handler.
    worldhost()
        .args(["run", "-W", "unknown-imports-default=y", guest::HELLO])
        .run()
        .code(1)
        .stderr_has("`-W unknown-imports-default` applies to core modules only, and the command handler runs a component");
    // A key worldhost cannot apply says why.
    worldhost()
        .args(["run", "-S", "nn", guest::HELLO])
        .run()
        .code(1)
        .stderr_has("`-S nn` cannot apply: worldhost does not include wasi-nn");
    worldhost()
        .args(["run", "-C", "cache-config=cache.toml", guest::HELLO])
        .run()
        .code(1)
        .stderr_has("worldhost keeps its own");
    // An unknown key is a usage error, from wasmtime's own parser.
    worldhost()
        .args(["run", "-W", "no-such-key=1", guest::HELLO])
        .run()
        .code(2)
        .stderr_has("unknown -W / --wasm option: no-such-key");
}

#[test]
fn group_help_lists_the_keys() {
    worldhost()
        .args(["run", "-W", "help"])
        .run()
        .success()
        .stdout_has("max-table-elements")
        .stdout_has("trap-on-grow-failure");
    worldhost()
        .args(["run", "-S", "help"])
        .run()
        .success()
        .stdout_has("keyvalue-in-memory-data");
}

#[test]
fn config_file_values_are_overridden_by_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worldhost.toml");
    std::fs::write(
        &config,
        "[wasm]\nmax-memory-size = 1000000000\n[wasi]\ninherit-stdout = false\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    // From the file: the guest's stdout is not inherited.
    worldhost()
        .args(["run", "--config", config, guest::HELLO])
        .run()
        .success()
        .stdout("");
    // The command line wins over the file.
    worldhost()
        .args([
            "run",
            "--config",
            config,
            "-S",
            "inherit-stdout=y",
            guest::HELLO,
        ])
        .run()
        .success()
        .stdout_has("Hello");
    std::fs::write(dir.path().join("bad.toml"), "[wasm]\nno-such-key = 1\n").unwrap();
    worldhost()
        .args([
            "run",
            "--config",
            dir.path().join("bad.toml").to_str().unwrap(),
            guest::HELLO,
        ])
        .run()
        .code(1)
        .stderr_has("no-such-key");
}

#[test]
fn limits_from_w_apply_to_the_store() {
    // A memory that may not grow past 4 MiB: the allocating guest cannot get 64 MiB, and with
    // trap-on-grow-failure the growth itself fails the run (an error, not a wasm trap, as in
    // wasmtime).
    worldhost()
        .args([
            "run",
            "-W",
            "max-memory-size=4194304,trap-on-grow-failure=y",
            guest::ALLOC,
            "64",
        ])
        .run()
        .code(1)
        .stderr_has("forcing trap when growing memory");
    // One instance is fewer than a Rust component needs.
    worldhost()
        .args(["run", "-W", "max-instances=1", guest::HELLO])
        .run()
        .code(1)
        .stderr_has("instance count too high");
}

#[test]
fn a_component_from_stdin() {
    let bytes = std::fs::read(guest::PRINT_ARGS).unwrap();
    // argv[0] is `-`, as with `wasmtime run -`.
    worldhost()
        .args(["run", "-", "a", "b"])
        .stdin(bytes)
        .run()
        .success()
        .stdout("-\na\nb\n");
    worldhost()
        .args(["run", "-"])
        .stdin(Vec::new())
        .run()
        .code(1)
        .one_paragraph_error();
}

#[test]
fn coredump_on_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("trap.core");
    let flag = format!("coredump={}", dump.display());
    worldhost()
        .args(["run", "-D", &flag, guest::TRAP])
        .run()
        .code(134)
        .stderr_has("core dumped at");
    let bytes = std::fs::read(&dump).unwrap();
    // A core dump is a wasm module whose first section is the custom section `core`: id 0, a
    // size, then the name's length (4) and `core`.
    assert_eq!(&bytes[..4], b"\0asm", "not a wasm core dump");
    assert_eq!(bytes[8], 0, "the first section is not a custom one");
    let name_at = 9 + bytes[9..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    assert_eq!(
        &bytes[name_at..name_at + 5],
        b"\x04core",
        "not a `core` section"
    );
}

#[test]
fn perfmap_profile_writes_the_map() {
    let maps = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/tmp")
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("perf-") && n.ends_with(".map"))
            })
            .collect()
    };
    let before = maps();
    worldhost()
        .args(["run", "--no-cache", "--profile", "perfmap", guest::HELLO])
        .run()
        .success();
    let new: Vec<_> = maps().into_iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "one new perf map: {new:?}");
    let map = std::fs::read_to_string(&new[0]).unwrap();
    std::fs::remove_file(&new[0]).unwrap();
    assert!(map.lines().count() > 10, "{map}");
    worldhost()
        .args(["run", "--profile", "jitdump", guest::HELLO])
        .run()
        .code(2)
        .stderr_has("`--profile perfmap` works");
}

#[test]
fn serve_adds_headers_names_instances_and_prefixes_their_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("headers");
    std::fs::write(&file, "x-from-file: 1\n\nx-other: 2\n").unwrap();
    let at_file = format!("@{}", file.display());
    let mut server = Server::start(&["-H", "x-added: yes", "-H", &at_file, guest::HTTP_ROUTES]);
    let (status, body) = get(&server.url("/echo"));
    assert_eq!(status, 200);
    assert!(
        body.contains("x-added: yes\nx-from-file: 1\nx-other: 2\n"),
        "{body}"
    );
    let (_, first) = get(&server.url("/env?name=INSTANCE_ID"));
    let (_, second) = get(&server.url("/env?name=INSTANCE_ID"));
    assert_eq!(
        (first.as_str(), second.as_str()),
        ("INSTANCE_ID=1\n", "INSTANCE_ID=2\n")
    );
    get(&server.url("/after"));
    server.wait_for("stderr [3] :: the work after the response is done");
    let mut plain = Server::start(&["--no-logging-prefix", guest::HTTP_ROUTES]);
    get(&plain.url("/after"));
    let line = plain.wait_for("the work after the response is done");
    assert_eq!(line, "the work after the response is done");
}

#[test]
fn serve_stops_on_a_connection_to_the_shutdown_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let shutdown = taken.local_addr().unwrap();
    drop(taken);
    let addr = shutdown.to_string();
    let mut server = Server::start(&["--shutdown-addr", &addr, guest::HTTP_HELLO]);
    assert!(
        server
            .stderr()
            .contains(&format!("Listening for shutdown on tcp://{addr}/"))
    );
    std::net::TcpStream::connect(shutdown)
        .unwrap()
        .flush()
        .unwrap();
    let status = server.wait();
    assert!(status.success(), "{status:?}");
}

#[test]
fn preview1_preloads_and_invokes_a_modules_export() {
    let wat = r#"(module
        (import "lib" "double" (func $double (param i32) (result i32)))
        (func (export "quadruple") (param i32) (result i32)
            (call $double (call $double (local.get 0)))))"#;
    let lib = r#"(module (func (export "double") (param i32) (result i32)
        (i32.mul (local.get 0) (i32.const 2))))"#;
    let dir = tempfile::tempdir().unwrap();
    let (main, libpath) = (dir.path().join("main.wat"), dir.path().join("lib.wat"));
    std::fs::write(&main, wat).unwrap();
    std::fs::write(&libpath, lib).unwrap();
    let preload = format!("lib={}", libpath.display());
    worldhost()
        .args(["run", "--preload", &preload, "--invoke", "quadruple"])
        .args([main.to_str().unwrap()])
        .args(["5"])
        .run()
        .success()
        .stdout("20\n");
    // Without the preload, the import is unknown; `-W unknown-imports-default` makes it
    // return 0.
    worldhost()
        .args(["run", "--invoke", "quadruple", main.to_str().unwrap(), "5"])
        .run()
        .code(1)
        .stderr_has("`lib::double`");
    worldhost()
        .args([
            "run",
            "-W",
            "unknown-imports-default",
            "--invoke",
            "quadruple",
        ])
        .args([main.to_str().unwrap()])
        .args(["5"])
        .run()
        .success()
        .stdout("0\n");
}

#[test]
fn completions_and_a_manual_page() {
    worldhost()
        .args(["completions", "bash"])
        .run()
        .success()
        .stdout_has("_worldhost()")
        .stdout_has("--allow-precompiled");
    worldhost()
        .args(["completions", "zsh"])
        .run()
        .success()
        .stdout_has("#compdef worldhost");
    worldhost()
        .args(["man"])
        .run()
        .success()
        .stdout_has(".TH worldhost");
    worldhost().args(["completions", "cmd.exe"]).run().code(2);
}

#[test]
fn settings_that_change_the_code_have_their_own_cache_entries() {
    let cache = tempfile::tempdir().unwrap();
    let entries = || {
        std::fs::read_dir(cache.path().join("worldhost"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".whc"))
            })
            .count()
    };
    let run = |flags: &[&str]| {
        worldhost()
            .env("XDG_CACHE_HOME", cache.path())
            .args(["run"])
            .args(flags)
            .args([guest::HELLO])
            .run()
            .success();
    };
    run(&[]);
    assert_eq!(entries(), 1);
    run(&["-O", "opt-level=0"]);
    assert_eq!(entries(), 2, "`-O opt-level=0` compiles other code");
    run(&["-D", "address-map=n"]);
    assert_eq!(entries(), 3, "`-D address-map=n` compiles other code");
    // A setting of the store, not of the code, finds the entry made without it.
    run(&["-W", "max-memory-size=100000000"]);
    assert_eq!(entries(), 3);
}

#[test]
pub(crate) fn http_config() {
    // The same -S keys for a server's guests as for a command's.
    let server = Server::start(&[
        "-S",
        "config,config-var=colour=green",
        "-S",
        "keyvalue,keyvalue-in-memory-data=colour=blue",
        guest::HTTP_CONFIG,
    ]);
    assert_eq!(
        get(&server.url("/?colour")),
        (200, "config=green keyvalue=blue\n".into())
    );
}

#[test]
fn a_reactor_module_is_initialized_before_its_invoked_export() {
    let dir = tempfile::tempdir().unwrap();
    let reactor = dir.path().join("reactor.wat");
    std::fs::write(
        &reactor,
        r#"(module
            (global $g (mut i32) (i32.const 0))
            (func (export "_initialize") (global.set $g (i32.const 7)))
            (func (export "get") (result i32) (global.get $g)))"#,
    )
    .unwrap();
    let reactor = reactor.to_str().unwrap();
    worldhost()
        .args(["run", "--invoke", "get", reactor])
        .run()
        .success()
        .stdout("7\n");
    // The component's call flags are refused for a module, not dropped.
    worldhost()
        .args(["run", "--json", "--invoke", "get", reactor])
        .run()
        .code(1)
        .stderr_has("`--json` is for a component's calls");
}
