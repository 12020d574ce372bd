//! Hostile HTTP clients against `worldhost serve`: each is answered or dropped within a bound,
//! while a healthy client, polling all the while, is served without a single error.

use crate::server::{Server, connect, get, read_until_closed};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worldhost_test_artifacts as guest;

/// A healthy client that GETs `/status/200` every 20 ms, from before the hostile client starts
/// until after it is done, and panics on any other answer.
struct Healthy {
    url: String,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<usize>,
}

impl Healthy {
    /// Starts polling, and returns once the first request was served.
    fn start(server: &Server) -> Healthy {
        let url = server.url("/status/200");
        assert_eq!(get(&url), (200, "status 200\n".into()));
        let stop = Arc::new(AtomicBool::new(false));
        let (poll_url, stopped) = (url.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut served = 0;
            while !stopped.load(Ordering::Relaxed) {
                assert_eq!(get(&poll_url), (200, "status 200\n".into()));
                served += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            served
        });
        Healthy { url, stop, thread }
    }

    /// Stops polling after one last request; returns how many were served meanwhile.
    fn finish(self) -> usize {
        assert_eq!(get(&self.url), (200, "status 200\n".into()));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the healthy client saw no error")
    }
}

#[test]
fn headers_trickled_a_byte_at_a_time_are_cut_off() {
    let server = Server::start(&["--header-read-timeout", "1s", guest::HTTP_ROUTES]);
    let healthy = Healthy::start(&server);
    let mut slow = connect(server.addr);
    let started = Instant::now();
    let request = b"GET /status/200 HTTP/1.1\r\nhost: x\r\nx-slow: ".iter();
    let mut cut_off = false;
    // An endless header, a byte every 50 ms: it would never end if the server let it.
    for byte in request.chain(std::iter::repeat(&b'a')) {
        if slow.write_all(&[*byte]).is_err() {
            cut_off = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    assert!(cut_off, "a trickling client was still connected after 10 s");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut off too soon: {elapsed:?}"
    );
    healthy.finish();
}

#[test]
fn idle_connections_are_closed_after_the_header_read_timeout() {
    let server = Server::start(&["--header-read-timeout", "1s", guest::HTTP_ROUTES]);
    // A fresh connection that sends nothing, and a keep-alive one after its first request.
    let mut silent = connect(server.addr);
    let mut kept = connect(server.addr);
    kept.write_all(b"GET /status/204 HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0; 12];
    kept.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 204");
    let started = Instant::now();
    assert_eq!(read_until_closed(&mut silent), "");
    read_until_closed(&mut kept);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "closed only after {elapsed:?}"
    );
}

#[test]
fn a_thousand_idle_connections_do_not_stop_healthy_clients() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let idle: Vec<TcpStream> = (0..1000).map(|_| connect(server.addr)).collect();
    // Until the server has accepted them (not only the kernel's backlog): each is a socket
    // among its open files.
    let started = Instant::now();
    while sockets_of(server.pid()) < 1000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server took {} of the 1000 connections",
            sockets_of(server.pid())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let healthy = Healthy::start(&server);
    std::thread::sleep(Duration::from_millis(500));
    // A request every 20 ms or so: a client held up for most of the time gets few.
    let served = healthy.finish();
    assert!(
        served >= 5,
        "a healthy client got {served} answers in 500 ms"
    );
    drop(idle);
}

/// How many sockets process `pid` has open.
fn sockets_of(pid: u32) -> usize {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("the server's descriptors");
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[test]
fn past_max_connections_a_connection_waits_for_one_to_close() {
    let server = Server::start(&["--max-connections", "2", guest::HTTP_ROUTES]);
    let first = connect(server.addr);
    let second = connect(server.addr);
    // The kernel completes the handshake, but worldhost does not take the third one in.
    let mut third = connect(server.addr);
    third
        .write_all(b"GET /status/200 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0; 1];
    let waited = third.read(&mut byte);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the third connection was served while two were open: {waited:?}"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert!(read_until_closed(&mut third).starts_with("HTTP/1.1 200 OK"));
    drop(second);
}

#[test]
fn a_malformed_request_line_is_a_400() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let healthy = Healthy::start(&server);
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
    ] {
        let mut stream = connect(server.addr);
        stream.write_all(garbage).unwrap();
        let answer = read_until_closed(&mut stream);
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request") || answer.starts_with("HTTP/1.1 505"),
            "{garbage:?} was answered {answer:?}"
        );
    }
    healthy.finish();
}

#[test]
fn oversized_headers_are_a_431() {
    let server = Server::start(&[guest::HTTP_ROUTES]);
    let healthy = Healthy::start(&server);
    let mut stream = connect(server.addr);
    let mut request = b"GET /status/200 HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 1 << 20));
    request.extend(b"\r\n\r\n");
    // The server may close while the rest is still being sent.
    let _ = stream.write_all(&request);
    let answer = read_until_closed(&mut stream);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large"),
        "{answer:?}"
    );
    healthy.finish();
}

#[test]
fn a_client_that_disconnects_mid_response_harms_no_other() {
    let mut server = Server::start(&["-v", guest::HTTP_ROUTES]);
    let healthy = Healthy::start(&server);
    for _ in 0..5 {
        let mut stream = connect(server.addr);
        stream
            .write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut first = [0; 4096];
        stream.read_exact(&mut first).unwrap();
        assert!(first.starts_with(b"HTTP/1.1 200 OK"));
        // Gone, with 10 MB still to send.
    }
    server.wait_for("path=/big");
    healthy.finish();
}

#[test]
fn bounds_of_zero_are_refused() {
    for (flag, says) in [
        ("--max-concurrent-connections", "would accept no connection"),
        (
            "--header-read-timeout",
            "would cut every client off at once",
        ),
        ("--body-read-timeout", "would cut every client off at once"),
        (
            "--response-write-timeout",
            "would cut every client off at once",
        ),
    ] {
        crate::worldhost()
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                flag,
                "0",
                guest::HTTP_HELLO,
            ])
            .run()
            .code(1)
            .one_paragraph_error()
            .stderr_has(says);
    }
}

/// Polls `url` until it is answered 200, for at most `within`; returns how long that took.
fn served_again(url: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let (status, _) = get(url);
        if status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still answered {status} after {within:?}: the stalled clients kept their places"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `url` until it is answered 503, for at most 5 s: the stalled clients hold every place.
fn turned_away(url: &str) {
    let started = Instant::now();
    while get(url).0 != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stalled clients never held every place: the test proves nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Eight clients that each send `request` (given its number) to a server with eight places
/// and `flag` at 2 s, and then neither send nor read: while they hold every place, a healthy
/// client is turned away; once the bound frees them, it is served again, while they are still
/// connected. Returns the server, still running, and their connections.
fn stalled_clients_lose_their_places(
    flag: &str,
    request: impl Fn(usize) -> String,
) -> (Server, Vec<TcpStream>) {
    let mut server = Server::start(&[
        "-vv",
        "--max-concurrent-requests",
        "8",
        flag,
        "2s",
        guest::HTTP_ROUTES,
    ]);
    let healthy = server.url("/status/200");
    let stalled: Vec<TcpStream> = (0..8)
        .map(|i| {
            let mut stream = connect(server.addr);
            stream.write_all(request(i).as_bytes()).unwrap();
            stream
        })
        .collect();
    // Each is in before the healthy client asks.
    for _ in 0..8 {
        server.wait_for("request received");
    }
    turned_away(&healthy);
    served_again(&healthy, Duration::from_secs(10));
    (server, stalled)
}

#[test]
fn clients_that_never_send_their_body_lose_their_places() {
    // Complete headers, then silence: half promise a body, half ask to be told to send it.
    let (_server, stalled) = stalled_clients_lose_their_places("--body-read-timeout", |i| {
        let expect = if i % 2 == 0 {
            ""
        } else {
            "expect: 100-continue\r\n"
        };
        format!("POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n{expect}\r\n")
    });
    for mut stream in stalled {
        let answer = read_until_closed(&mut stream);
        assert!(answer.contains(" 408 Request Timeout"), "{answer:?}");
    }
}

#[test]
fn clients_that_never_read_their_response_lose_their_places() {
    // 64 MiB each, far more than the sockets' buffers hold, and never a byte read.
    stalled_clients_lose_their_places("--response-write-timeout", |_| {
        "GET /big?mb=64 HTTP/1.1\r\nhost: x\r\n\r\n".into()
    });
}

#[test]
fn a_chunked_body_over_the_bound_is_a_413_never_a_cut_body() {
    let server = Server::start(&["--max-request-body-size", "1000", guest::HTTP_ROUTES]);
    let healthy = Healthy::start(&server);
    // No Content-Length to check up front: 3 KiB in chunks of 1 KiB.
    let mut stream = connect(server.addr);
    let mut request =
        b"POST /count HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        request.extend(b"400\r\n");
        request.extend([b'a'; 1024]);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    // The server may close before it has read it all.
    let _ = stream.write_all(&request);
    let answer = read_until_closed(&mut stream);
    assert!(
        answer.starts_with("HTTP/1.1 413 Payload Too Large"),
        "{answer:?}"
    );
    // Under the bound, the same body is counted whole.
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /count HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3e8\r\n")
        .unwrap();
    stream.write_all(&[1u8; 1000]).unwrap();
    stream.write_all(b"\r\n0\r\n\r\n").unwrap();
    let answer = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
    assert!(answer.contains("1000 bytes, sum 1000\n"), "{answer:?}");
    healthy.finish();
}

#[test]
fn a_request_without_a_host_is_a_400_not_a_500() {
    let mut server = Server::start(&[guest::HTTP_ROUTES]);
    let healthy = Healthy::start(&server);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /status/200 HTTP/1.0\r\n\r\n")
        .unwrap();
    let answer = read_until_closed(&mut stream);
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer:?}");
    assert!(answer.contains("send one Host header"), "{answer:?}");
    // Two Host headers are as bad (RFC 9112 §3.2).
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /status/200 HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n")
        .unwrap();
    assert!(read_until_closed(&mut stream).starts_with("HTTP/1.1 400 Bad Request"));
    healthy.finish();
    server.stop("TERM");
    assert!(!server.stderr().contains("ERROR"), "{}", server.stderr());
}

#[test]
fn durations_past_what_the_clock_holds_do_not_panic() {
    let huge = "18446744073709551615";
    let server = Server::start(&[
        "-W",
        &format!("timeout={huge}"),
        "--header-read-timeout",
        huge,
        "--body-read-timeout",
        huge,
        guest::HTTP_ROUTES,
    ]);
    assert_eq!(
        get(&server.url("/status/200")),
        (200, "status 200\n".into())
    );
    assert_eq!(
        get(&server.url("/slow?ms=10")),
        (200, "slept 10 ms\n".into())
    );
    crate::worldhost()
        .args(["run", "-W", &format!("timeout={huge}"), guest::HELLO])
        .run()
        .success()
        .stdout("Hello, world!\n");
}

/// Raises this process's open-file limit to its maximum: a test that holds thousands of
/// connections needs a descriptor for each.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    let _ = setrlimit(Resource::Nofile, raised);
}

#[test]
fn six_hundred_and_two_thousand_requests_at_once_are_all_served() {
    raise_open_file_limit();
    // Each request takes two tables from the pool: wasmtime's default pool held 500.
    for (requests, flags) in [
        (600, &[][..]),
        (2000, &["--max-concurrent-requests", "2000"][..]),
    ] {
        let mut args = flags.to_vec();
        args.push(guest::HTTP_ROUTES);
        let server = Server::start(&args);
        let started = Instant::now();
        // Each guest waits 3 s before it answers: all of them are in flight at once.
        let mut streams: Vec<TcpStream> = (0..requests)
            .map(|_| {
                let mut stream = connect(server.addr);
                stream
                    .write_all(
                        b"GET /slow?ms=3000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
                    )
                    .unwrap();
                stream
            })
            .collect();
        let sent = started.elapsed();
        assert!(
            sent < Duration::from_secs(3),
            "sending took {sent:?}: not all at once"
        );
        for stream in &mut streams {
            let answer = read_until_closed(stream);
            assert!(
                answer.starts_with("HTTP/1.1 200 OK") && answer.contains("slept 3000 ms"),
                "one of {requests} was answered {answer:?}"
            );
        }
    }
}
