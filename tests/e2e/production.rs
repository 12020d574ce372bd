//! `serve` for production: TLS with a certificate made here (rcgen), HTTP/2 over TLS by ALPN
//! and in cleartext by prior knowledge (curl, a real client; the h2 crate for what curl will
//! not do: streams it does not read, a flood of resets), the bounds on connections that send
//! nothing, several listeners and Unix sockets, systemd's sockets, and reloading the component
//! under load.

use crate::server::{Server, get};
use crate::worldhost;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use worldhost_test_artifacts as guest;

/// A certificate for `localhost` and 127.0.0.1 with its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

/// `curl` with `args` against `url`: the HTTP version it spoke, the status and the body.
fn curl(args: &[&str], url: &str) -> (String, u16, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .args(["--write-out", "\n%{http_version} %{response_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} {url} failed: {}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (body, last) = text.rsplit_once('\n').expect("curl's --write-out line");
    let (version, status) = last.split_once(' ').expect("version and status");
    (version.into(), status.parse().unwrap(), body.into())
}

fn tls_server(dir: &Path, extra: &[&str]) -> Server {
    let (cert, key) = certificate(dir);
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

#[test]
fn https_answers_http2_by_alpn_and_http1_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = tls_server(dir.path(), &[guest::HTTP_ROUTES]);
    assert!(
        server
            .stderr()
            .contains("Serving HTTPS on https://127.0.0.1:")
    );
    let port = server.addr.port();
    let url = format!("https://localhost:{port}/echo?x=1");
    let cacert = dir.path().join("cert.pem");
    let cacert = cacert.to_str().unwrap();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let common = ["--cacert", cacert, "--resolve", &resolve];
    let (version, status, body) = curl(&[&common[..], &["--http2"]].concat(), &url);
    assert_eq!((version.as_str(), status), ("2", 200), "{body}");
    assert!(body.starts_with("GET /echo?x=1\n"), "{body}");
    let (version, status, _) = curl(&[&common[..], &["--http1.1"]].concat(), &url);
    assert_eq!((version.as_str(), status), ("1.1", 200));
    // Without ALPN, the client's first bytes tell: HTTP/1.1, or HTTP/2 by prior knowledge.
    let (version, status, _) = curl(&[&common[..], &["--no-alpn", "--http1.1"]].concat(), &url);
    assert_eq!((version.as_str(), status), ("1.1", 200));
    let no_alpn_h2 = ["--no-alpn", "--http2-prior-knowledge"];
    let (version, status, _) = curl(&[&common[..], &no_alpn_h2].concat(), &url);
    assert_eq!((version.as_str(), status), ("2", 200));
    // A client that does not trust the certificate is refused by its own TLS, not served.
    let refused = Command::new("curl")
        .args(["--silent", "--resolve", &resolve, &url])
        .status()
        .unwrap();
    assert_eq!(
        refused.code(),
        Some(60),
        "curl's code for an untrusted certificate"
    );
}

#[test]
fn cleartext_is_http1_and_http2_with_prior_knowledge() {
    let server = Server::start(&[guest::HTTP_HELLO]);
    let url = server.url("/");
    assert_eq!(
        curl(&[], &url),
        ("1.1".into(), 200, "Hello, world!\n".into())
    );
    assert_eq!(
        curl(&["--http2-prior-knowledge"], &url),
        ("2".into(), 200, "Hello, world!\n".into())
    );
    // A header list past `--max-header-list-size` (16 KiB) is refused with 431.
    let big = format!("x-big: {}", "a".repeat(20_000));
    assert_eq!(curl(&["--http2-prior-knowledge", "-H", &big], &url).1, 431);
    let fits = format!("x-big: {}", "a".repeat(10_000));
    assert_eq!(curl(&["--http2-prior-knowledge", "-H", &fits], &url).1, 200);
    // Many streams on one connection, answered alike.
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/{i}"))).collect();
    let out = Command::new("curl")
        .args(["--silent", "--http2-prior-knowledge", "--parallel"])
        .args(["--parallel-immediate", "--parallel-max", "20"])
        .args(&urls)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("Hello, world!")
            .count(),
        20
    );
}

#[test]
fn a_bad_certificate_or_key_is_one_paragraph_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let (other_cert, other_key) = {
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        certificate(&other)
    };
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    for (cert, key, says) in [
        (s(&missing), s(&key), "cannot read the certificate"),
        (s(&not_pem), s(&key), "holds no certificate"),
        (s(&cert), s(&not_pem), "holds no private key"),
        (s(&cert), s(&other_key), "does not go with `--tls-cert"),
        (
            s(&other_cert),
            s(&key),
            "give the key the certificate was issued for",
        ),
    ] {
        let out = worldhost()
            .args(["serve", "--addr", "127.0.0.1:0", "--tls-cert", &cert])
            .args(["--tls-key", &key, guest::HTTP_HELLO])
            .run();
        out.code(1).one_paragraph_error().stderr_has(says);
        assert!(!out.stderr.contains("Serving"), "{}", out.stderr);
    }
    // One without the other is a usage error.
    worldhost()
        .args(["serve", "--tls-cert", &s(&cert), guest::HTTP_HELLO])
        .run()
        .code(2)
        .stderr_has("--tls-key");
}

/// Connects to `addr`, sends `first` and then nothing; returns how long the server took to
/// close the connection.
fn closed_after(addr: SocketAddr, first: &[u8]) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let began = Instant::now();
    stream.write_all(first).unwrap();
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    began.elapsed()
}

#[test]
fn connections_that_send_nothing_are_cut_off_at_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_server(
        dir.path(),
        &["--header-read-timeout", "1s", guest::HTTP_HELLO],
    );
    let clear = Server::start(&["--header-read-timeout", "1s", guest::HTTP_HELLO]);
    for (addr, first, what) in [
        (
            tls.addr,
            &b""[..],
            "a TLS client that never begins its handshake",
        ),
        (
            tls.addr,
            &[0x16, 0x03, 0x01][..],
            "one that stops within it",
        ),
        (
            clear.addr,
            &b""[..],
            "a cleartext client that sends nothing",
        ),
        (
            clear.addr,
            &b"PRI * HTTP/2.0\r\n"[..],
            "half an HTTP/2 preface",
        ),
        (
            clear.addr,
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
            "a preface, then nothing",
        ),
        (
            clear.addr,
            &b"GET / HTTP/1.1\r\n"[..],
            "half a request's headers",
        ),
    ] {
        let took = closed_after(addr, first);
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(10),
            "{what}: closed after {took:?}"
        );
    }
}

/// A runtime for the h2 crate's client.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTP/2 connection to `addr` (prior knowledge), with `window` bytes of flow-control window
/// per stream.
pub(crate) async fn h2_connect(
    addr: SocketAddr,
    window: u32,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(window)
        .handshake(tcp)
        .await
        .unwrap();
    (send, tokio::spawn(connection))
}

fn h2_get(authority: SocketAddr, path: &str) -> http::Request<()> {
    http::Request::get(format!("http://{authority}{path}"))
        .body(())
        .unwrap()
}

#[test]
fn an_http2_connection_idle_after_its_requests_is_closed() {
    let server = Server::start(&["--header-read-timeout", "1s", guest::HTTP_HELLO]);
    let addr = server.addr;
    runtime().block_on(async move {
        let (mut send, connection) = h2_connect(addr, 65_535).await;
        for _ in 0..3 {
            let (response, _) = send.send_request(h2_get(addr, "/"), true).unwrap();
            let mut body = response.await.unwrap().into_body();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
            }
        }
        // The streams have ended (on the server's stream tasks, not its connection's); nothing
        // more is asked: the server closes the connection.
        let began = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
        let took = began.elapsed();
        assert!(ended.is_ok(), "the idle connection was never closed");
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "closed after {took:?}"
        );
    });
}

#[test]
fn an_http2_stream_its_client_does_not_read_frees_its_place() {
    // One request at a time: the unread stream holds it until it is cut off.
    let server = Server::start(&[
        "--max-concurrent-requests",
        "1",
        "--response-write-timeout",
        "1s",
        guest::HTTP_ROUTES,
    ]);
    let addr = server.addr;
    runtime().block_on(async move {
        // A window of one byte: the client takes one byte of the 10 MB response and no more.
        let (mut send, connection) = h2_connect(addr, 1).await;
        let (response, _) = send.send_request(h2_get(addr, "/big?mb=10"), true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let began = Instant::now();
        // Held: the one place is taken.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let url = format!("http://{addr}/status/201");
        let busy = tokio::task::spawn_blocking(move || get(&url))
            .await
            .unwrap();
        assert_eq!(busy.0, 503, "the unread stream holds the one place");
        // Past the bound the connection is closed, and the place is free again.
        let ended = tokio::time::timeout(Duration::from_secs(10), connection).await;
        assert!(ended.is_ok(), "the connection was not closed");
        let took = began.elapsed();
        assert!(took < Duration::from_secs(5), "closed after {took:?}");
        // The place is freed a few task hops after the connection (the guest is stopped, its
        // store dropped): asked again for a few seconds.
        let url = format!("http://{addr}/status/201");
        let served = tokio::task::spawn_blocking(move || {
            let began = Instant::now();
            loop {
                let answer = get(&url);
                if answer.0 != 503 || began.elapsed() > Duration::from_secs(5) {
                    return answer;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
        .await
        .unwrap();
        assert_eq!(served, (201, "status 201\n".into()));
        drop(response);
    });
}

/// An HTTP/2 frame: its 9-byte header and `payload`.
pub(crate) fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

#[test]
fn a_rapid_reset_flood_is_sent_away_and_others_are_served() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let addr = server.addr;
    let flooding = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicUsize::new(0));
    let others = {
        let (flooding, served) = (flooding.clone(), served.clone());
        std::thread::spawn(move || {
            let url = format!("http://{addr}/status/201");
            while flooding.load(Ordering::Relaxed) {
                assert_eq!(get(&url), (201, "status 201\n".into()));
                served.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The attack of CVE-2023-44487, written frame by frame so that it arrives in one burst: a
    // request (HEADERS: GET /slow, ending the stream) and at once its cancel (RST_STREAM,
    // CANCEL), a thousand times.
    let mut burst = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    burst.extend(frame(0x4, 0, 0, &[]));
    // HPACK: :method GET, :scheme http, :path "/slow?ms=5000", :authority "a", from the
    // static table's names, not indexed.
    let mut block = vec![0x82, 0x86, 0x04, 13];
    block.extend(b"/slow?ms=5000");
    block.extend([0x01, 1, b'a']);
    for i in 0..1000u32 {
        let stream = 2 * i + 1;
        burst.extend(frame(0x1, 0x4 | 0x1, stream, &block));
        burst.extend(frame(0x3, 0, stream, &8u32.to_be_bytes()));
    }
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(&burst);
    // Read the server's frames until its GOAWAY.
    let mut got = Vec::new();
    let mut buf = [0; 65536];
    let goaway = loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break None,
            Ok(n) => got.extend(&buf[..n]),
        }
        let mut at = 0;
        let mut found = None;
        while at + 9 <= got.len() {
            let len = u32::from_be_bytes([0, got[at], got[at + 1], got[at + 2]]) as usize;
            if at + 9 + len > got.len() {
                break;
            }
            if got[at + 3] == 0x7 && len >= 8 {
                let p = &got[at + 9..at + 17];
                found = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
            }
            at += 9 + len;
        }
        if found.is_some() {
            break found;
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    flooding.store(false, Ordering::Relaxed);
    others.join().unwrap();
    // ENHANCE_YOUR_CALM (0xb): the server's bound on streams reset before it took them.
    assert_eq!(goaway, Some(0xb), "the flood was not sent away");
    assert!(served.load(Ordering::Relaxed) > 0);
    assert_eq!(get(&server.url("/status/200")).0, 200);
}

#[test]
fn several_addresses_and_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("app.sock");
    let unix = format!("unix:{}", socket.display());
    let mut server = Server::start(&["--addr", "127.0.0.1:0", "--addr", &unix, guest::HTTP_HELLO]);
    let second = server.wait_for("Serving HTTP on http://");
    let second: SocketAddr = second
        .trim_start_matches("Serving HTTP on http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert_ne!(second, server.addr);
    server.wait_for(&format!("Serving HTTP on http+unix://{}", socket.display()));
    assert_eq!(get(&server.url("/")).0, 200);
    assert_eq!(get(&format!("http://{second}/")).0, 200);
    let (version, status, body) = curl(
        &["--unix-socket", socket.to_str().unwrap()],
        "http://localhost/",
    );
    assert_eq!(
        (version.as_str(), status, body.as_str()),
        ("1.1", 200, "Hello, world!\n")
    );
    worldhost()
        .args(["serve", "--addr", "unix:", guest::HTTP_HELLO])
        .run()
        .code(2)
        .stderr_has("`unix:` needs a path");
    // A live socket is not taken over.
    worldhost()
        .args(["serve", "--addr", &unix, guest::HTTP_HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("a server is answering there");
    assert_eq!(server.stop("TERM").code(), Some(0));
    assert!(!socket.exists(), "the socket file is removed at the end");

    // A stale one (its server gone) is replaced; a file that is not a socket is refused.
    let stale = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    drop(stale);
    let server = Server::start(&["--addr", &unix, guest::HTTP_HELLO]);
    assert_eq!(
        curl(
            &["--unix-socket", socket.to_str().unwrap()],
            "http://localhost/"
        )
        .1,
        200
    );
    drop(server);
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    worldhost()
        .args(["serve", "--addr", &format!("unix:{}", file.display())])
        .args([guest::HTTP_HELLO])
        .run()
        .code(1)
        .stderr_has("the path exists and is not a socket");
}

#[test]
fn sockets_from_systemd_socket_activation() {
    // As systemd does: a bound, listening socket at descriptor 3, LISTEN_FDS=1 and LISTEN_PID
    // set to the process that execs worldhost (Python's os.execv keeps the pid).
    let script = r#"
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
if s.fileno() == 3:
    os.set_inheritable(3, True)
else:
    os.dup2(s.fileno(), 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let mut child = Command::new("python3")
        .args(["-c", script, env!("CARGO_BIN_EXE_worldhost")])
        .args(["serve", "--systemd-listenfd", guest::HTTP_HELLO])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut port = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut port).unwrap();
    // The Serving line (a warning, of the open-file limit say, may come first).
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let line = std::io::BufRead::lines(stderr)
        .map_while(Result::ok)
        .find(|line| line.contains("Serving"))
        .unwrap_or_default();
    let port: u16 = port.trim().parse().unwrap();
    let answer = get(&format!("http://127.0.0.1:{port}/"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        line.trim(),
        format!("Serving HTTP on http://127.0.0.1:{port}/")
    );
    assert_eq!(answer, (200, "Hello, world!\n".into()));

    // Variables that lie (descriptor 3 is a file) are refused, not trusted.
    let lying = r#"
import os, sys
f = open("/dev/null")
if f.fileno() == 3:
    os.set_inheritable(3, True)
else:
    os.dup2(f.fileno(), 3)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"#;
    let lied = Command::new("python3")
        .args(["-c", lying, env!("CARGO_BIN_EXE_worldhost")])
        .args(["serve", "--systemd-listenfd", guest::HTTP_HELLO])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&lied.stderr);
    assert_eq!(lied.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a listening stream socket"),
        "{stderr}"
    );

    // Without systemd's variables it says what is missing.
    worldhost()
        .args(["serve", "--systemd-listenfd", guest::HTTP_HELLO])
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("no sockets were passed");
}

/// Replaces `path` with `from` the way a deploy does: written beside it, renamed over it.
fn swap(path: &Path, from: &str) {
    let next = path.with_extension("next");
    std::fs::copy(from, &next).unwrap();
    std::fs::rename(&next, path).unwrap();
}

#[test]
fn watch_reloads_the_component_under_load_without_failing_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.wasm");
    std::fs::copy(guest::HTTP_HELLO, &app).unwrap();
    let mut server = Server::start(&["--watch", "-v", app.to_str().unwrap()]);
    let addr = server.addr;
    let running = Arc::new(AtomicBool::new(true));
    // Four clients, each asking again as soon as it is answered; every answer must be a 200
    // or the new version's 201, never a failure.
    let load: Vec<_> = (0..4)
        .map(|_| {
            let running = running.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while running.load(Ordering::Relaxed) {
                    seen.push(get(&format!("http://{addr}/status/201")));
                }
                seen
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // A good version: http-routes answers `/status/201` with 201.
    swap(&app, guest::HTTP_ROUTES);
    let reloaded = server.wait_for("--watch: reloaded `app.wasm`");
    assert!(reloaded.contains("version "), "{reloaded}");
    std::thread::sleep(Duration::from_millis(300));
    // A broken one: a command, which this handler does not serve; then bytes that are not
    // wasm at all. The good version serves on.
    swap(&app, guest::HELLO);
    server.wait_for("--watch: cannot reload `app.wasm`");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(dir.path().join("junk"), b"not a component").unwrap();
    swap(&app, dir.path().join("junk").to_str().unwrap());
    server.wait_for("--watch: cannot reload `app.wasm`");
    std::thread::sleep(Duration::from_millis(300));
    running.store(false, Ordering::Relaxed);
    let per_client: Vec<Vec<(u16, String)>> = load.into_iter().map(|t| t.join().unwrap()).collect();
    let hello = (200, "Hello, world!\n".to_string());
    let routes = (201, "status 201\n".to_string());
    for seen in &per_client {
        assert!(
            seen.iter()
                .all(|answer| *answer == hello || *answer == routes),
            "an answer was neither version's: {:?}",
            seen.iter().find(|a| **a != hello && **a != routes)
        );
        // Each client asks one request after another: once one was answered by the new
        // version, every later one is too (the broken files changed nothing).
        if let Some(first_new) = seen.iter().position(|a| *a == routes) {
            assert!(
                seen[first_new..].iter().all(|a| *a == routes),
                "an old answer after a new one"
            );
        }
    }
    let seen: Vec<_> = per_client.concat();
    assert!(seen.contains(&hello) && seen.contains(&routes));
    assert_eq!(get(&server.url("/status/201")), routes);
    let stderr = server.stderr();
    assert!(stderr.contains("it exports neither"), "{stderr}");
    // The access log names the version that answered: two versions, named by their hashes.
    let versions: std::collections::BTreeSet<&str> = stderr
        .lines()
        .filter(|l| l.contains(" request "))
        .filter_map(|l| l.split("version=").nth(1))
        .filter_map(|v| v.split_whitespace().next())
        .filter(|v| v.len() == 12 && v.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
}

#[test]
fn sighup_reloads_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.wasm");
    std::fs::copy(guest::HTTP_HELLO, &app).unwrap();
    let mut server = Server::start(&["-v", app.to_str().unwrap()]);
    // Once the first version is named (hashed off the start's path), a SIGHUP with the file
    // unchanged does nothing.
    let began = Instant::now();
    while !server
        .stderr()
        .lines()
        .any(|l| l.split("version=").nth(1).is_some_and(|v| v.len() >= 12))
    {
        assert_eq!(get(&server.url("/status/201")).0, 200);
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal("HUP");
    server.wait_for("SIGHUP: `app.wasm` is unchanged");
    // Changed: the new version.
    std::fs::copy(guest::HTTP_ROUTES, &app).unwrap();
    server.signal("HUP");
    server.wait_for("SIGHUP: reloaded `app.wasm`");
    assert_eq!(
        get(&server.url("/status/201")),
        (201, "status 201\n".into())
    );
    assert_eq!(server.stop("TERM").code(), Some(0));
}

#[test]
fn watch_needs_a_file() {
    worldhost()
        .args(["serve", "--addr", "127.0.0.1:0", "--watch", "-"])
        .stdin(std::fs::read(guest::HTTP_HELLO).unwrap())
        .run()
        .code(1)
        .one_paragraph_error()
        .stderr_has("read from stdin");
}
