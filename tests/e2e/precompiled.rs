//! `worldhost compile` and the artifacts it writes, run by every handler; and the compilation
//! cache: hits, damaged entries, `--no-cache`, `worldhost cache`. Each test has a cache
//! directory of its own (XDG_CACHE_HOME).

use crate::server::{Server, get};
use crate::{Invocation, worldhost};
use std::path::{Path, PathBuf};
use tempfile::TempDir;
use worldhost_test_artifacts as guest;

/// worldhost with its cache in `dir` (XDG_CACHE_HOME).
pub(crate) fn cached_in(dir: &Path) -> Invocation {
    worldhost().env("XDG_CACHE_HOME", dir)
}

/// The entries in the cache under `dir`.
pub(crate) fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("worldhost")) {
        Ok(listing) => listing.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

/// `worldhost compile COMPONENT -o DIR/NAME` with FLAGS, and the artifact's path.
fn compile(dir: &TempDir, component: &str, name: &str, flags: &[&str]) -> String {
    let out = dir.path().join(name).display().to_string();
    cached_in(dir.path())
        .args(["compile"])
        .args(flags)
        .args([component, "-o", &out])
        .run()
        .success()
        .stdout("");
    out
}

#[test]
fn a_precompiled_command_runs_as_the_component_does() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::PRINT_ARGS, "args.cwasm", &[]);
    assert!(
        std::fs::read(&artifact).unwrap().starts_with(b"\x7fELF"),
        "an artifact is machine code"
    );
    // argv[0] is the artifact's file name, as for any file.
    worldhost()
        .args(["run", "--allow-precompiled", &artifact, "one", "two"])
        .run()
        .success()
        .stdout("args.cwasm\none\ntwo\n");
    worldhost()
        .args(["--allow-precompiled", &artifact, "x"])
        .run()
        .success()
        .stdout("args.cwasm\nx\n");
}

#[test]
fn an_artifact_is_refused_without_allow_precompiled_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    // Artifacts named like components: machine code is judged by the bytes, not the name.
    let hello = compile(&dir, guest::HELLO, "evil.wasm", &[]);
    let calc = compile(&dir, guest::INVOKE_CALC, "calc.wasm", &[]);
    let http = compile(&dir, guest::HTTP_HELLO, "http.wasm", &[]);
    let cases: [&[&str]; 8] = [
        &["run", &hello],
        &[&hello],
        &["run", "--handler", "command", &hello],
        &["inspect", &hello],
        &["run", "--invoke", "add(1, 2)", &calc],
        &["run", &calc, "add", "1", "2"],
        &["repl", &calc],
        &["serve", "--addr", "127.0.0.1:0", &http],
    ];
    for args in cases {
        let refused = worldhost().args(args).stdin("add(1, 2)\n").run();
        refused
            .code(1)
            .stdout("")
            .one_paragraph_error()
            .stderr_has("is a precompiled artifact: machine code")
            .stderr_has("pass `--allow-precompiled`");
    }
    worldhost()
        .args(["run", "--allow-precompiled", &hello])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

#[test]
fn the_default_output_is_the_component_path_with_cwasm() {
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("hello.wasm");
    std::fs::copy(guest::HELLO, &component).unwrap();
    cached_in(dir.path())
        .args(["compile", component.to_str().unwrap()])
        .run()
        .success();
    let artifact = dir.path().join("hello.cwasm");
    worldhost()
        .args(["run", "--allow-precompiled", artifact.to_str().unwrap()])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

#[test]
fn a_precompiled_proxy_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::HTTP_HELLO, "http.cwasm", &[]);
    // Chosen by its world (`run`, not `serve`), as the component would be: the artifact
    // keeps its types.
    let mut server = Server::start_with_env(&[], "run", &["-v", "--allow-precompiled", &artifact]);
    assert!(
        server
            .stderr()
            .contains("handler=\"http-proxy\" reason=it exports `wasi:http/incoming-handler@0.2."),
        "{}",
        server.stderr()
    );
    let (status, body) = get(&server.url("/"));
    assert_eq!((status, body.as_str()), (200, "Hello, world!\n"));
    server.stop("TERM");
    // It was compiled for the server's engine, and inspect loads it all the same.
    worldhost()
        .args(["inspect", "--allow-precompiled", &artifact])
        .run()
        .success()
        .stdout_has("handler    http-proxy: it exports `wasi:http/incoming-handler@0.2");
}

#[test]
fn an_artifact_of_compile_is_served_reusing_instances() {
    // `compile` sees no server flags: the artifact must serve whatever reuse is asked for (it
    // once failed to load: "compiled without concurrency support").
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::HTTP_HELLO, "http.cwasm", &[]);
    for reuse in ["1", "4"] {
        let mut server = Server::start(&[
            "--allow-precompiled",
            "--max-instance-reuse-count",
            reuse,
            &artifact,
        ]);
        for _ in 0..6 {
            assert_eq!(get(&server.url("/")), (200, "Hello, world!\n".into()));
        }
        server.stop("TERM");
    }
}

#[test]
fn a_precompiled_exporter_is_invoked_and_inspected() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::INVOKE_CALC, "calc.cwasm", &[]);
    worldhost()
        .args([
            "run",
            "--allow-precompiled",
            "--invoke",
            "add(1, 2)",
            &artifact,
        ])
        .run()
        .success()
        .stdout("3\n");
    worldhost()
        .args(["inspect", "--allow-precompiled", &artifact])
        .run()
        .success()
        .stdout_has("add: func(a: u32, b: u32) -> u32");
    worldhost()
        .args(["inspect", "--wit", &artifact])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is a precompiled artifact")
        .stderr_has("use the .wasm it was compiled from");
}

#[test]
fn a_precompiled_preview1_module_runs() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::EXIT_CODE_P1, "exit.cwasm", &[]);
    worldhost()
        .args(["run", "--allow-precompiled", &artifact, "7"])
        .run()
        .code(7);
}

#[test]
fn an_artifact_for_other_settings_says_to_recompile() {
    let dir = tempfile::tempdir().unwrap();
    let fueled = compile(&dir, guest::HELLO, "fuel.cwasm", &["-W", "fuel=1000000"]);
    worldhost()
        .args(["run", "--allow-precompiled", "-W", "fuel=1000000", &fueled])
        .run()
        .success()
        .stdout("Hello, world!\n");
    worldhost()
        .args(["run", "--allow-precompiled", &fueled])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is a precompiled component that this worldhost cannot load")
        .stderr_has("-W fuel")
        .stderr_has("worldhost compile app.wasm -o fuel.cwasm");
    // `inspect` takes the same `-W`.
    worldhost()
        .args([
            "inspect",
            "--allow-precompiled",
            "-W",
            "fuel=1000000",
            &fueled,
        ])
        .run()
        .success()
        .stdout_has("handler    command");
    worldhost()
        .args(["inspect", "--allow-precompiled", &fueled])
        .run()
        .code(1);
}

#[test]
fn compile_and_inspect_refuse_the_flags_of_a_running_guest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.cwasm").display().to_string();
    for (subcommand, flag, value) in [
        ("compile", "--dir", "."),
        ("compile", "--env", "A=1"),
        ("inspect", "--argv0", "x"),
    ] {
        let mut args = vec![subcommand, flag, value, guest::HELLO];
        if subcommand == "compile" {
            args.extend(["-o", &out]);
        }
        worldhost()
            .args(&args)
            .run()
            .code(1)
            .one_paragraph_error()
            .stderr_has(&format!("`{flag}` is for a guest that runs"))
            .stderr_has(&format!("give `{flag}` to `worldhost run`"));
    }
    assert!(!dir.path().join("x.cwasm").exists());
    // Their help shows `-W`, not the flags they refuse. `-S` is taken, as by `wasmtime compile`.
    let help = worldhost().args(["compile", "--help"]).run();
    let help = &help.success().stdout_has("--wasm <KEY[=VAL[,..]]>").stdout;
    assert!(!help.contains("--dir") && !help.contains("--env"), "{help}");
    compile(&dir, guest::HELLO, "s.cwasm", &["-S", "cli"]);
}

#[test]
fn an_artifact_of_another_wasmtime_version_says_to_recompile() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::HELLO, "old.cwasm", &[]);
    // The engine section names the wasmtime version that wrote the artifact, by its major
    // number: a format byte (0), a length byte, the version.
    let mut bytes = std::fs::read(&artifact).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"\0\x0248")
        .expect("the artifact names its wasmtime version");
    bytes[at + 2..at + 4].copy_from_slice(b"47");
    std::fs::write(&artifact, &bytes).unwrap();
    worldhost()
        .args(["run", "--allow-precompiled", &artifact])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("cannot load")
        .stderr_has("'47'")
        .stderr_has("compile it again");
}

#[test]
fn a_truncated_artifact_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::HELLO, "cut.cwasm", &[]);
    let bytes = std::fs::read(&artifact).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 100, 64] {
        std::fs::write(&artifact, &bytes[..cut]).unwrap();
        worldhost()
            .args(["run", "--allow-precompiled", &artifact])
            .run()
            .code(1)
            .one_paragraph_error()
            .stderr_has("precompiled")
            .stderr_has("compile it again");
    }
}

#[test]
fn compiling_an_artifact_again_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = compile(&dir, guest::HELLO, "a.cwasm", &[]);
    worldhost()
        .args(["compile", &artifact, "-o", "/dev/null"])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is already a precompiled artifact");
}

#[test]
fn compile_writes_only_to_a_regular_file_or_a_new_path() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.unwrap().success());
    let target = dir.path().join("target.cwasm");
    std::fs::write(&target, "kept").unwrap();
    let link = dir.path().join("link.cwasm");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for (out, kind) in [
        (&fifo, "a FIFO"),
        (&link, "a symbolic link"),
        (&dir.path().to_path_buf(), "a directory"),
    ] {
        worldhost()
            .args(["compile", guest::HELLO, "-o", out.to_str().unwrap()])
            .run()
            .code(1)
            .one_paragraph_error()
            .stderr_has(&format!("is {kind}"))
            .stderr_has("give another `-o`");
    }
    use std::os::unix::fs::FileTypeExt as _;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
    // A regular file is replaced whole.
    compile(&dir, guest::HELLO, "target.cwasm", &[]);
    assert!(std::fs::read(&target).unwrap().starts_with(b"\x7fELF"));
}

#[test]
fn compile_reports_bad_input_like_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.cwasm");
    worldhost()
        .args([
            "compile",
            &crate::data("random.bin"),
            "-o",
            out.to_str().unwrap(),
        ])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("is not WebAssembly");
    assert!(!out.exists());
    worldhost()
        .args(["compile", guest::HELLO, "-o", "/no/such/dir/x.cwasm"])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("cannot write `/no/such/dir/x.cwasm`");
}

#[test]
fn the_second_run_is_a_cache_hit() {
    let cache = tempfile::tempdir().unwrap();
    let first = cached_in(cache.path())
        .args(["run", "-vv", guest::HELLO])
        .run();
    first.success().stdout("Hello, world!\n");
    assert!(!first.stderr.contains("cache hit"), "{}", first.stderr);
    assert_eq!(entries(cache.path()).len(), 1);
    cached_in(cache.path())
        .args(["run", "-vv", guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n")
        .stderr_has("cache hit");
    // serve shares the entry: the same code, in a pooling engine.
    let mut server = Server::start_with_env(
        &[("XDG_CACHE_HOME", cache.path())],
        "serve",
        &["-vv", guest::HTTP_HELLO],
    );
    assert_eq!(get(&server.url("/")).0, 200);
    server.stop("TERM");
    let mut again = Server::start_with_env(
        &[("XDG_CACHE_HOME", cache.path())],
        "serve",
        &["-vv", guest::HTTP_HELLO],
    );
    assert_eq!(get(&again.url("/")).0, 200);
    again.stop("TERM");
    assert!(again.stderr().contains("cache hit"), "{}", again.stderr());
    assert_eq!(entries(cache.path()).len(), 2);
}

#[test]
fn a_damaged_cache_entry_is_recompiled_not_trusted() {
    let cache = tempfile::tempdir().unwrap();
    cached_in(cache.path()).args([guest::HELLO]).run().success();
    let [entry] = entries(cache.path()).try_into().unwrap();
    let sound = std::fs::read(&entry).unwrap();
    let mut flipped = sound.clone();
    let last = flipped.len() - 1000;
    flipped[last] ^= 0x40;
    for damaged in [&sound[..sound.len() - 4096], &flipped[..], &sound[..10]] {
        std::fs::write(&entry, damaged).unwrap();
        cached_in(cache.path())
            .args([guest::HELLO])
            .run()
            .success()
            .stdout("Hello, world!\n")
            .stderr_has("is not sound")
            .stderr_has("compiling again");
        assert_eq!(std::fs::read(&entry).unwrap(), sound, "rewritten sound");
    }
}

#[test]
fn no_cache_writes_nothing_and_cache_shows_and_clears() {
    let cache = tempfile::tempdir().unwrap();
    cached_in(cache.path())
        .args(["run", "--no-cache", guest::HELLO])
        .run()
        .success();
    assert!(entries(cache.path()).is_empty());
    let dir = cache.path().join("worldhost");
    cached_in(cache.path())
        .args(["cache", "dir"])
        .run()
        .success()
        .stdout(&format!("{}\n", dir.display()));
    cached_in(cache.path())
        .args(["cache"])
        .run()
        .success()
        .stdout_has("0 entries, 0.0 MiB");
    cached_in(cache.path()).args([guest::HELLO]).run().success();
    cached_in(cache.path())
        .args([guest::PRINT_ARGS])
        .run()
        .success();
    cached_in(cache.path())
        .args(["cache"])
        .run()
        .success()
        .stdout_has("2 entries");
    cached_in(cache.path())
        .args(["cache", "clear"])
        .run()
        .success()
        .stdout_has("removed 2 entries");
    assert!(entries(cache.path()).is_empty());
}

#[test]
fn the_cache_keeps_within_its_bound() {
    let cache = tempfile::tempdir().unwrap();
    cached_in(cache.path())
        .args(["cache"])
        .run()
        .success()
        .stdout_has("at most 5.0 GiB");
    // A bound of one byte: each new entry evicts every other one.
    for component in [guest::HELLO, guest::PRINT_ARGS] {
        cached_in(cache.path())
            .env("WORLDHOST_CACHE_MAX_SIZE", "1")
            .args([component])
            .run()
            .success();
        assert_eq!(entries(cache.path()).len(), 1);
    }
    // A bound that does not parse: the run goes on without the cache, and says why.
    cached_in(cache.path())
        .env("WORLDHOST_CACHE_MAX_SIZE", "lots")
        .args([guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n")
        .stderr_has("WORLDHOST_CACHE_MAX_SIZE is `lots`");
}

#[test]
fn an_unwritable_cache_costs_speed_not_the_run() {
    let cache = tempfile::tempdir().unwrap();
    // A file where the cache directory should be.
    std::fs::write(cache.path().join("worldhost"), "not a directory").unwrap();
    cached_in(cache.path())
        .args([guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n")
        .stderr_has("running without the compilation cache")
        .stderr_has("is not a directory");
}

/// Whether this test runs as root, and may give files to another user.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

#[test]
fn the_cache_directory_is_made_the_users_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let cache = tempfile::tempdir().unwrap();
    cached_in(cache.path()).args([guest::HELLO]).run().success();
    let dir = cache.path().join("worldhost");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
}

#[test]
fn a_cache_directory_others_can_change_is_not_used_and_ones_own_is_closed() {
    use std::os::unix::fs::PermissionsExt as _;
    // A link to a directory that holds a file, and (as root) a directory owned by another
    // user: each is warned of, once, and neither read, written nor cleared; the run goes on
    // without the cache.
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("worldhost");
    let target = tempfile::tempdir().unwrap();
    std::fs::write(target.path().join("keep.whc"), "not yours to remove").unwrap();
    std::os::unix::fs::symlink(target.path(), &dir).unwrap();
    let run = cached_in(cache.path()).args([guest::HELLO]).run();
    run.success()
        .stdout("Hello, world!\n")
        .stderr_has("running without the compilation cache")
        .stderr_has("is a symbolic link");
    assert_eq!(
        run.stderr.matches("running without").count(),
        1,
        "{}",
        run.stderr
    );
    cached_in(cache.path())
        .args(["cache", "clear"])
        .run()
        .code(1)
        .stderr_has("nothing was listed or removed")
        .stderr_has("is a symbolic link");
    let left: Vec<_> = std::fs::read_dir(target.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "only the file that was there");

    // The user's own directory, open to others (as one made under umask 002): closed first,
    // then used.
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    cached_in(cache.path())
        .args([guest::HELLO])
        .run()
        .success()
        .stderr_has("could be written by other users (mode 0777); it is now 0700");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert_eq!(entries(cache.path()).len(), 1);

    if is_root() {
        for entry in entries(cache.path()) {
            std::fs::remove_file(entry).unwrap();
        }
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        cached_in(cache.path())
            .args([guest::HELLO])
            .run()
            .success()
            .stderr_has("belongs to another user (uid 65534");
        assert!(entries(cache.path()).is_empty());
    }
}

#[test]
fn an_entry_that_is_a_fifo_or_another_users_is_recompiled_not_used() {
    let cache = tempfile::tempdir().unwrap();
    cached_in(cache.path()).args([guest::HELLO]).run().success();
    let [entry] = entries(cache.path()).try_into().unwrap();
    let sound = std::fs::read(&entry).unwrap();
    // A FIFO in the entry's place would block a reader for ever.
    std::fs::remove_file(&entry).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&entry).status();
    assert!(made.unwrap().success());
    cached_in(cache.path())
        .args([guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n")
        .stderr_has("is not sound (it is not a regular file)");
    assert_eq!(std::fs::read(&entry).unwrap(), sound, "rewritten sound");
    if is_root() {
        // A sound entry, checksum and all, that another user could have written.
        std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();
        cached_in(cache.path())
            .args([guest::HELLO])
            .run()
            .success()
            .stderr_has("it belongs to another user (uid 65534");
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&entry).unwrap());
        assert_eq!(owner, 0, "rewritten by its user");
    }
}
