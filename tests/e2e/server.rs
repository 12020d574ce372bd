//! A `worldhost serve` under test: started on a free port of 127.0.0.1, its address read from
//! the "Serving HTTP on" line (never a sleep), stopped with a signal. On drop the process is
//! killed, and if the test failed its output is printed.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Server {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// `worldhost serve --addr 127.0.0.1:0 ARGS…`, once it listens.
    pub(crate) fn start(args: &[&str]) -> Server {
        Self::start_with_env(&[], "serve", args)
    }

    /// `worldhost SUBCOMMAND --addr 127.0.0.1:0 ARGS…` (`serve`, or `run` to let worldhost
    /// choose the handler), with environment variables set for it.
    pub(crate) fn start_with_env(
        env: &[(&str, &std::path::Path)],
        subcommand: &str,
        args: &[&str],
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_worldhost"))
            .args([subcommand, "--addr", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("worldhost starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        let all = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
            lines,
        };
        // `Serving HTTP on http://ADDR/` or `Serving HTTPS on https://ADDR/`.
        let line = server.wait_for("Serving HTTP");
        let addr = line
            .split_once("://")
            .map_or("", |(_, addr)| addr)
            .trim_end_matches('/');
        server.addr = addr.parse().expect("an address in the Serving line");
        server
    }

    /// Waits (at most a minute) for a stderr line containing `part`, and returns it.
    pub(crate) fn wait_for(&mut self, part: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(part) => return line,
                Ok(_) => {}
                Err(_) => panic!(
                    "no line with {part:?} from the server; its stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends `signal` (INT or TERM) and waits for the process to end.
    pub(crate) fn stop(&mut self, signal: &str) -> ExitStatus {
        self.signal(signal);
        self.wait()
    }

    /// Sends `signal` (HUP, say).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to end (30 s at most).
    pub(crate) fn wait(&mut self) -> ExitStatus {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the server did not stop within 30 s; stderr:\n{}",
            self.stderr()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server stderr:\n{}", self.stderr());
        }
    }
}

/// An HTTP client that reports every status as a response, not an error.
pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// POSTs `body` to `path` and checks that it comes back whole (a guest that streams its
/// request body into its response).
pub(crate) fn assert_echoes(server: &Server, path: &str, body: &str) {
    let echoed = client()
        .post(&server.url(path))
        .send(body.as_bytes())
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(
        echoed == body,
        "{} bytes of {} came back",
        echoed.len(),
        body.len()
    );
}

/// GET `url`: status and body.
pub(crate) fn get(url: &str) -> (u16, String) {
    let mut response = client().get(url).call().expect("a response");
    let body = response.body_mut().read_to_string().expect("a whole body");
    (response.status().as_u16(), body)
}

/// A raw connection to `addr`, whose reads give up after 30 s.
pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent.
pub(crate) fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server neither answered nor closed the connection: {e}"),
    }
    String::from_utf8_lossy(&got).into_owned()
}
