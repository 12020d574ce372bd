//! Trust, second pass (issue 29): what a second review broke, as an attacker with a client, a
//! deployer with write access to a watched path, and an image author would. Each test was run
//! against the code before the fixes and failed there (docs/RELIABILITY.md).

use crate::server::{Server, connect, get, read_until_closed};
use crate::worldhost;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};
use worldhost_test_artifacts as guest;

/// A variable in worldhost's own environment, never given to a guest.
const HOST_SECRET: &str = "WORLDHOST_TEST_HOST_SECRET";
const HOST_SECRET_VALUE: &str = "the-host-process-secret";

#[test]
fn a_guest_given_the_root_reaches_nothing_of_its_host_process() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("inside.txt"), "inside\n").unwrap();
    let inside = tmp.path().join("inside.txt").display().to_string();
    for module in [guest::READ_FILE, guest::READ_FILE_P1] {
        for grant in ["/::/::ro", "/"] {
            for path in [
                "/proc/self/environ",
                "/proc/self/maps",
                "/proc/1/environ",
                "/etc/../proc/self/environ",
                "/sys/kernel/mm/transparent_hugepage/enabled",
                "/dev/null",
            ] {
                let out = worldhost()
                    .env(HOST_SECRET, HOST_SECRET_VALUE)
                    .args(["run", "--dir", grant, module, path])
                    .run();
                out.code(1);
                assert!(
                    !out.stdout.contains(HOST_SECRET_VALUE) && !out.stdout.contains("r-xp"),
                    "{module} {grant} {path}: {}",
                    out.stdout
                );
            }
            // The rest of the root is still there, mounts and all.
            worldhost()
                .args(["run", "--dir", grant, module, &inside])
                .run()
                .success()
                .stdout("inside\n");
        }
    }
    // A grant inside the kernel's places is refused before anything runs.
    worldhost()
        .args([
            "run",
            "--dir",
            "/proc/self::/p",
            guest::READ_FILE,
            "/p/environ",
        ])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("`/proc` is the kernel's");
}

/// A server of http-routes with these flags and one request place, and a client that sends
/// the head of a `POST /echo` of `length` bytes.
fn posting(server: &Server, length: usize) -> std::net::TcpStream {
    let mut client = connect(server.addr);
    write!(
        client,
        "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {length}\r\n\r\n"
    )
    .unwrap();
    client
}

#[test]
fn a_trickled_body_loses_its_place_though_no_wait_is_long() {
    let server = Server::start(&[
        "--body-read-timeout",
        "2s",
        "--max-concurrent-requests",
        "1",
        guest::HTTP_ROUTES,
    ]);
    let mut slow = posting(&server, 1000);
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let began = Instant::now();
    // A byte every 500 ms: each wait a quarter of the bound on one.
    let trickle = {
        let mut writer = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..1000 {
                if writer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let answer = read_until_closed(&mut slow);
    let took = began.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {took:?}"
    );
    assert!(answer.contains("--body-min-rate"), "{answer}");
    assert!(took < Duration::from_secs(10), "cut off after {took:?}");
    // Its place is free again.
    assert_eq!(get(&server.url("/status/200")).0, 200);
    drop(trickle);
}

#[test]
fn a_large_upload_at_a_normal_rate_is_served() {
    let server = Server::start(&["--body-read-timeout", "1s", guest::HTTP_ROUTES]);
    let length = 8 << 20;
    let mut client = posting(&server, length);
    let writer = {
        let mut writer = client.try_clone().unwrap();
        // 64 KiB every 10 ms: about 6 MB/s, the guest reading as it comes.
        std::thread::spawn(move || {
            let piece = vec![b'u'; 64 << 10];
            for _ in 0..(length / piece.len()) {
                writer.write_all(&piece).unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut head = [0; 12];
    client.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    writer.join().unwrap();
    let (mut echoed, mut buffer) = (0, [0; 64 << 10]);
    while echoed < length {
        let n = client.read(&mut buffer).unwrap();
        assert!(n > 0, "the echo ended early");
        echoed += buffer[..n].iter().filter(|b| **b == b'u').count();
    }
}

/// An HTTP/2 connection (prior knowledge, frame by frame) that opens `n` streams of
/// `POST /echo` whose bodies never come.
fn h2_posts(server: &Server, n: u32) -> std::net::TcpStream {
    let mut burst = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    burst.extend(crate::production::frame(0x4, 0, 0, &[]));
    // HPACK: :method POST, :scheme http, :path "/echo", :authority "a".
    let mut block = vec![0x83, 0x86, 0x04, 5];
    block.extend(b"/echo");
    block.extend([0x01, 1, b'a']);
    for stream in (0..n).map(|i| 2 * i + 1) {
        // HEADERS, END_HEADERS only: the stream stays open for its body.
        burst.extend(crate::production::frame(0x1, 0x4, stream, &block));
    }
    let mut client = connect(server.addr);
    client.write_all(&burst).unwrap();
    client
}

/// The first RST_STREAM the server sends on `client` (its stream and error code), if one
/// comes within `within`.
fn first_reset(client: &mut std::net::TcpStream, within: Duration) -> Option<(u32, u32)> {
    client.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buffer = [0; 65536];
    loop {
        let n = client.read(&mut buffer).ok().filter(|n| *n > 0)?;
        got.extend(&buffer[..n]);
        let mut at = 0;
        while at + 9 <= got.len() {
            let len = u32::from_be_bytes([0, got[at], got[at + 1], got[at + 2]]) as usize;
            if at + 9 + len > got.len() {
                break;
            }
            let stream = u32::from_be_bytes([got[at + 5], got[at + 6], got[at + 7], got[at + 8]]);
            if got[at + 3] == 0x3 && len == 4 {
                let p = &got[at + 9..at + 13];
                return Some((
                    stream & 0x7fff_ffff,
                    u32::from_be_bytes([p[0], p[1], p[2], p[3]]),
                ));
            }
            at += 9 + len;
        }
    }
}

#[test]
fn one_http2_connection_holds_at_most_its_share_of_the_places_when_they_are_short() {
    // Eight places; past half of them taken, one connection may hold a tenth of them (one).
    let mut server = Server::start(&["-vv", "--max-concurrent-requests", "8", guest::HTTP_ROUTES]);
    // With room to spare, a connection's streams are all taken (a load balancer's are many).
    let mut roomy = h2_posts(&server, 3);
    for _ in 0..3 {
        server.wait_for("request received");
    }
    // Two more places taken (five of eight): now they are short.
    let held: Vec<_> = (0..2).map(|_| posting(&server, 100)).collect();
    for _ in 0..2 {
        server.wait_for("request received");
    }
    let mut crowded = h2_posts(&server, 3);
    // Two of the three (the server takes them on tasks of their own, in any order) are
    // refused: REFUSED_STREAM (7), which a client may retry on another connection.
    let reset = first_reset(&mut crowded, Duration::from_secs(20)).expect("no RST_STREAM");
    assert!([1, 3, 5].contains(&reset.0), "{reset:?}");
    assert_eq!(reset.1, 7, "{reset:?}");
    assert_eq!(first_reset(&mut roomy, Duration::from_millis(300)), None);
    drop(held);
}

#[test]
fn silent_connections_under_pressure_are_cut_off_soon() {
    let mut server = Server::start(&[
        "--max-concurrent-connections",
        "20",
        "--header-read-timeout",
        "30s",
        guest::HTTP_ROUTES,
    ]);
    // Every place taken by a connection that sends nothing.
    let silent: Vec<_> = (0..20).map(|_| connect(server.addr)).collect();
    server.wait_for("every connection `--max-concurrent-connections` allows is open");
    let began = Instant::now();
    let answer = get(&server.url("/status/200"));
    let took = began.elapsed();
    assert_eq!(answer.0, 200);
    assert!(
        took < Duration::from_secs(12),
        "a healthy client waited {took:?} for a place"
    );
    drop(silent);
}

#[test]
fn no_secret_reaches_the_log() {
    // A password in an outgoing request's address, which is always denied.
    let out = worldhost()
        .args([
            "run",
            "-S",
            "http",
            guest::FETCH,
            "http://user:the-password@127.0.0.1:9/x?token=the-token",
        ])
        .run();
    assert!(
        out.stderr.contains("outgoing request denied"),
        "{}",
        out.stderr
    );
    for secret in ["the-password", "the-token"] {
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }
    // A query string, in the access log and in the warning of a 503.
    let mut server = Server::start(&["-vv", "--max-concurrent-requests", "1", guest::HTTP_ROUTES]);
    let url = server.url("/slow?ms=3000&token=the-query-secret");
    let slow = std::thread::spawn(move || get(&url));
    server.wait_for("request received");
    let answer = get(&server.url("/status/200?token=the-query-secret"));
    assert_eq!(answer.0, 503);
    assert_eq!(slow.join().unwrap().0, 200);
    let stderr = server.stderr();
    assert!(stderr.contains("too many requests"), "{stderr}");
    assert!(stderr.contains("/slow"), "{stderr}");
    assert!(!stderr.contains("the-query-secret"), "{stderr}");
}

#[test]
fn files_that_are_not_what_they_should_be_are_named_and_never_quoted() {
    let tmp = tempfile::tempdir().unwrap();
    // A file that looks like WebAssembly text, and is not.
    let wat = tmp.path().join("secret.wat");
    std::fs::write(&wat, "(module the-wat-secret)").unwrap();
    let out = worldhost().args(["run", wat.to_str().unwrap()]).run();
    out.code(1).stderr_has("is not valid WebAssembly text");
    assert!(!out.stderr.contains("the-wat-secret"), "{}", out.stderr);
    // `--config` and `-H @FILE` given a file that is not theirs.
    let other = tmp.path().join("other");
    std::fs::write(&other, "root:the-config-secret:0:0\n").unwrap();
    let out = worldhost()
        .args(["run", "--config", other.to_str().unwrap(), guest::HELLO])
        .run();
    out.code(1).stderr_has("at line 1");
    assert!(!out.stderr.contains("the-config-secret"), "{}", out.stderr);
    let headers = tmp.path().join("headers");
    std::fs::write(&headers, "x-fine: yes\nthe header-file secret\n").unwrap();
    let header = format!("@{}", headers.display());
    let out = worldhost()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "-H",
            &header,
            guest::HTTP_HELLO,
        ])
        .run();
    out.code(1).stderr_has("line 2 of");
    assert!(!out.stderr.contains("header-file secret"), "{}", out.stderr);
}

#[test]
fn a_reload_reads_a_regular_file_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app.wasm");
    std::fs::copy(guest::HTTP_HELLO, &app).unwrap();
    let mut server = Server::start(&["--watch", app.to_str().unwrap()]);
    // Bytes that are not WebAssembly: the error names the file, not a copy of it.
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, b"not a component").unwrap();
    std::fs::rename(&junk, &app).unwrap();
    let line = server.wait_for("cannot reload");
    assert!(line.contains(&app.display().to_string()), "{line}");
    assert!(!line.contains("/proc/self/fd"), "{line}");
    // A FIFO in its place: refused at once (a reload that waited on it would block every one
    // after it), and the old version serves on.
    std::fs::remove_file(&app).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&app)
        .status()
        .unwrap();
    assert!(made.success());
    let line = server.wait_for("cannot reload");
    assert!(line.contains("is a FIFO"), "{line}");
    // A link to a device: the same.
    std::fs::remove_file(&app).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &app).unwrap();
    let line = server.wait_for("cannot reload");
    assert!(line.contains("is a device"), "{line}");
    assert_eq!(get(&server.url("/")), (200, "Hello, world!\n".into()));
    // And the right file again is served.
    std::fs::remove_file(&app).unwrap();
    std::fs::copy(guest::HTTP_ROUTES, &app).unwrap();
    server.wait_for("reloaded");
    assert_eq!(get(&server.url("/status/201")).0, 201);
}

#[test]
fn flag_values_that_would_break_every_request_are_usage_errors() {
    for (group, key) in [
        ("-S", "http-outgoing-body-buffer-chunks=0"),
        ("-S", "http-outgoing-body-chunk-size=0"),
        ("-O", "memory-reservation=18446744073709551615"),
        ("-O", "memory-guard-size=18446744073709551615"),
    ] {
        let name = key.split('=').next().unwrap();
        worldhost()
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                group,
                key,
                guest::HTTP_HELLO,
            ])
            .run()
            .code(2)
            .one_paragraph_error()
            .stderr_has(name);
    }
}

#[test]
fn a_core_dump_is_written_to_a_new_file_of_the_users_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    // Through a link: refused, and the link's target untouched.
    let target = tmp.path().join("precious");
    std::fs::write(&target, "keep me\n").unwrap();
    let link = tmp.path().join("dump");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let flag = format!("coredump={}", link.display());
    worldhost()
        .args(["run", "-D", &flag, guest::TRAP])
        .run()
        .code(1)
        .stderr_has("is a symbolic link");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
    // A new path: the dump is the user's alone (it holds the guest's memory).
    let dump = tmp.path().join("new.dump");
    let flag = format!("coredump={}", dump.display());
    worldhost()
        .args(["run", "-D", &flag, guest::TRAP])
        .run()
        .code(134);
    let mode = std::fs::metadata(&dump).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A server would write it over and over: refused.
    worldhost()
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "-D",
            &flag,
            guest::HTTP_HELLO,
        ])
        .run()
        .code(2)
        .stderr_has("leave it out of `serve`");
}

#[test]
fn a_perf_map_planted_as_a_link_is_not_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("precious");
    std::fs::write(&target, "keep me\n").unwrap();
    // The shell plants the link at its own pid, which worldhost keeps (`exec`).
    let script = format!(
        "echo $$; ln -sf {} /tmp/perf-$$.map; exec {} run --profile perfmap {}",
        target.display(),
        env!("CARGO_BIN_EXE_worldhost"),
        guest::HELLO
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not this user's own regular file"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me\n");
}

#[test]
fn a_unix_socket_is_removed_only_if_it_is_still_the_one_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    let socket = dir.join("app.sock");
    let addr = format!("unix:{}", socket.display());
    let mut server = Server::start(&["--addr", "127.0.0.1:0", "--addr", &addr, guest::HTTP_HELLO]);
    server.wait_for("http+unix://");
    // The directory is swapped meanwhile: the new one's file of that name is not the socket.
    std::fs::rename(&dir, tmp.path().join("old")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(&socket, "another's file\n").unwrap();
    assert_eq!(server.stop("TERM").code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&socket).unwrap(),
        "another's file\n"
    );
}

#[test]
fn an_abstract_unix_socket_makes_no_file() {
    use std::os::linux::net::SocketAddrExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let name = format!("worldhost-test-{}", std::process::id());
    let addr = format!("unix:@{name}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_worldhost"))
        .args(["serve", "--addr", &addr, guest::HTTP_HELLO])
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if line.contains("Serving") {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let answer = std::panic::catch_unwind(|| {
        let socket = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let mut client = std::os::unix::net::UnixStream::connect_addr(&socket).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        answer
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains(&format!("http+unix://@{name}")), "{line}");
    let answer = answer.expect("the server answered on its abstract socket");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Hello, world!"), "{answer}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn fuel_is_each_requests_under_instance_reuse() {
    // Enough fuel for one request many times over (one takes 5,000 to 20,000 units, its
    // instance's making included), not for an instance's 128.
    let server = Server::start(&["-W", "fuel=100000", guest::P3_SERVICE]);
    let addr = server.addr;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..80)
                    .map(|_| get(&format!("http://{addr}/")).0)
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let answers: Vec<u16> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    let failed = answers.iter().filter(|s| **s != 200).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed", answers.len());
    // One that spins runs out of its own fuel, and only it fails.
    assert_eq!(get(&format!("http://{addr}/spin")).0, 500);
    assert_eq!(get(&format!("http://{addr}/")).0, 200);
    // Several at once on an instance could not each have their fuel: refused.
    worldhost()
        .args(["serve", "--addr", "127.0.0.1:0", "-W", "fuel=1000"])
        .args([
            "--max-instance-concurrent-reuse-count",
            "4",
            guest::P3_SERVICE,
        ])
        .run()
        .code(2)
        .stderr_has("`-W fuel` bounds each request only");
}

#[test]
fn a_cache_entry_renamed_to_another_components_key_is_not_its_code() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("worldhost");
    let run = |component: &str| {
        worldhost()
            .env("XDG_CACHE_HOME", cache.path())
            .args(["run", component])
            .run()
    };
    let entries = || -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "whc"))
            .collect();
        found.sort();
        found
    };
    run(guest::HELLO).success();
    let hello = entries();
    assert_eq!(hello.len(), 1);
    run(guest::PRINT_ARGS).success();
    let print_args: Vec<_> = entries()
        .into_iter()
        .filter(|e| !hello.contains(e))
        .collect();
    assert_eq!(print_args.len(), 1);
    // hello's code under print-args's key.
    std::fs::rename(&hello[0], &print_args[0]).unwrap();
    let out = run(guest::PRINT_ARGS);
    out.success();
    assert!(!out.stdout.contains("Hello"), "{}", out.stdout);
    out.stderr_has("is not sound");
}

/// A server whose every connection is accepted and never answered: an OTLP collector that
/// has hung.
fn black_hole() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    addr
}

#[test]
fn a_hung_collector_delays_no_exit() {
    let collector = format!("http://{}", black_hole());
    let began = Instant::now();
    worldhost()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)
        .args(["run", guest::HELLO])
        .run()
        .success();
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the run exited after {took:?}"
    );
    let path = Path::new(&collector);
    let mut server = Server::start_with_env(
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", path)],
        "serve",
        &["--shutdown-grace", "1s", guest::HTTP_HELLO],
    );
    assert_eq!(get(&server.url("/")).0, 200);
    let began = Instant::now();
    assert_eq!(server.stop("TERM").code(), Some(0));
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "the server exited {took:?} after SIGTERM"
    );
}

#[test]
fn a_silent_connection_gets_its_bound_even_before_pressure() {
    // The pressure bound changes nothing for a server with room: a silent connection is kept
    // for the whole `--header-read-timeout`, as before.
    let server = Server::start(&["--header-read-timeout", "2s", guest::HTTP_ROUTES]);
    let mut silent = connect(server.addr);
    let began = Instant::now();
    assert_eq!(read_until_closed(&mut silent), "");
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(1800), "closed after {took:?}");
}
