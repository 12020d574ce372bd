//! Listening: the sockets (`--addr`, repeatable, TCP or `unix:PATH`, and those systemd passes
//! with `--systemd-listenfd`), each with a deep backlog and TCP_NODELAY; the accept loops within
//! `--max-concurrent-connections` and the open-file limit; SIGHUP, which reloads the component;
//! and the shutdown on SIGINT or SIGTERM: it stops accepting, lets in-flight requests finish
//! within `--shutdown-grace`, and exits 0.

use crate::server::{Server, connection};
use anyhow::{Context as _, Result, anyhow, bail};
use hyper_util::server::graceful::GracefulShutdown;
use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// An address of `--addr`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// `unix:@NAME`: a socket in Linux's abstract namespace (no file), as systemd and socat
    /// spell it.
    Abstract(String),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp(addr) => write!(f, "{addr}"),
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
            Addr::Abstract(name) => write!(f, "unix:@{name}"),
        }
    }
}

/// `--addr`'s parser: `HOST:PORT`, `unix:PATH` or `unix:@NAME`.
pub(crate) fn parse_addr(text: &str) -> Result<Addr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() || path == "@" {
            return Err(
                "`unix:` needs a path or an abstract name: `unix:/run/app.sock`, `unix:@app`"
                    .into(),
            );
        }
        if let Some(name) = path.strip_prefix('@') {
            return Ok(Addr::Abstract(name.to_string()));
        }
        return Ok(Addr::Unix(PathBuf::from(path)));
    }
    text.parse().map(Addr::Tcp).map_err(|_| {
        format!(
            "`{text}` is not an address: give `HOST:PORT` (`127.0.0.1:8080`, `[::1]:8080`) or \
             `unix:PATH`"
        )
    })
}

/// A socket the server accepts on.
enum Listener {
    Tcp(TcpListener),
    /// With the socket file to remove when the server stops, if it made one, and its path as
    /// given (it was bound through its directory's descriptor).
    Unix {
        listener: tokio::net::UnixListener,
        _file: Option<SocketFile>,
        shown: Option<PathBuf>,
    },
}

/// A Unix socket's file, made by the server: removed when it stops, but only if it is still the
/// one it bound. It is found again through its directory, held open since the bind, and known
/// by its device and inode: a directory swapped under the path, or another file put in its
/// place, loses nothing.
struct SocketFile {
    dir: std::os::fd::OwnedFd,
    name: std::ffi::OsString,
    id: (u64, u64),
}

impl SocketFile {
    /// The directory of `path`, open: the socket is bound through it (`/proc/self/fd/N/NAME`),
    /// so that the file made is in this directory whatever happens to the path meanwhile.
    fn directory_of(path: &Path) -> Result<(std::os::fd::OwnedFd, std::ffi::OsString)> {
        let (dir, name) = worldhost_core::code::private_dir::open_parent(path)?;
        Ok((dir, name.to_os_string()))
    }

    /// The socket just bound as `name` in `dir`.
    fn bound(dir: std::os::fd::OwnedFd, name: std::ffi::OsString) -> std::io::Result<Self> {
        let nofollow = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
        let stat = rustix::fs::statat(&dir, name.as_os_str(), nofollow)?;
        Ok(Self {
            dir,
            id: (stat.st_dev, stat.st_ino),
            name,
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let nofollow = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
        let same = rustix::fs::statat(&self.dir, self.name.as_os_str(), nofollow)
            .is_ok_and(|stat| (stat.st_dev, stat.st_ino) == self.id);
        if same {
            let _ = rustix::fs::unlinkat(
                &self.dir,
                self.name.as_os_str(),
                rustix::fs::AtFlags::empty(),
            );
        }
    }
}

impl Listener {
    /// Where clients reach it, as printed on stderr.
    fn url(&self, tls: bool) -> Result<String> {
        let scheme = if tls { "https" } else { "http" };
        Ok(match self {
            Listener::Tcp(listener) => format!("{scheme}://{}/", listener.local_addr()?),
            Listener::Unix {
                listener, shown, ..
            } => {
                use std::os::linux::net::SocketAddrExt as _;
                let addr = std::os::unix::net::SocketAddr::from(listener.local_addr()?);
                let path = match (shown, addr.as_pathname(), addr.as_abstract_name()) {
                    (Some(shown), _, _) => shown.display().to_string(),
                    (None, Some(path), _) => path.display().to_string(),
                    (None, None, Some(name)) => format!("@{}", String::from_utf8_lossy(name)),
                    (None, None, None) => "(an unnamed socket)".to_string(),
                };
                format!("{scheme}+unix://{path}")
            }
        })
    }
}

/// Listens, accepts until SIGINT or SIGTERM, then lets open connections finish their requests
/// within `--shutdown-grace` (hyper-util's graceful shutdown) and exits 0.
pub(crate) async fn run(server: Arc<Server>) -> Result<ExitCode> {
    let listeners = open_all(&server.args.addr, server.args.systemd_listenfd)?;
    // Listen for signals before saying we serve: a signal right after the line is not lost.
    let mut signals = Signals::new()?;
    if let Some(addr) = server.args.shutdown_addr {
        let shutdown = TcpListener::bind(addr).await.map_err(|e| {
            anyhow!(
                "cannot listen on `--shutdown-addr {addr}`: {e}; choose a free address (port 0: \
                 any free port, printed on stderr)"
            )
        })?;
        eprintln!(
            "Listening for shutdown on tcp://{}/",
            shutdown.local_addr()?
        );
        signals.shutdown = Some(shutdown);
    }
    for listener in &listeners {
        let tls = server.tls.is_some();
        eprintln!(
            "Serving {} on {}",
            if tls { "HTTPS" } else { "HTTP" },
            listener.url(tls)?
        );
    }

    let graceful = Arc::new(GracefulShutdown::new());
    let mut acceptors = JoinSet::new();
    for listener in listeners {
        acceptors.spawn(accept_loop(server.clone(), listener, graceful.clone()));
    }
    loop {
        match signals.next().await {
            Signal::Reload => crate::reload::reload(&server, "SIGHUP"),
            Signal::Stop(signal) => {
                // Telemetry goes out within the grace too, not after it.
                let grace = server.args.shutdown_grace;
                worldhost_core::telemetry::flush_by(std::time::Instant::now() + grace);
                eprintln!(
                    "{signal}: stopping; finishing {} open connection(s)",
                    server.open_connections()
                );
                break;
            }
        }
    }
    // The listeners close with their loops; then only the connections hold watchers.
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    let graceful = Arc::into_inner(graceful).expect("the accept loops have ended");
    let grace = server.args.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "{} connection(s) still open after `--shutdown-grace {}`; closing them",
            server.open_connections(),
            humantime::format_duration(grace)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Accepts on `listener` until aborted, serving each connection in a task of its own.
async fn accept_loop(server: Arc<Server>, listener: Listener, graceful: Arc<GracefulShutdown>) {
    loop {
        let permit = match connection_place(&server.connections).await {
            Ok(permit) => permit,
            Err(_) => return,
        };
        let accepted = match &listener {
            Listener::Tcp(listener) => accept_tcp(listener).await.map(|(stream, peer)| {
                let served = connection(server.clone(), stream, graceful.watcher());
                spawn(&server, served, peer.to_string(), permit);
            }),
            Listener::Unix { listener, .. } => listener.accept().await.map(|(stream, _)| {
                let served = connection(server.clone(), stream, graceful.watcher());
                spawn(&server, served, "a Unix socket client".into(), permit);
            }),
        };
        if let Err(e) = accepted {
            // Out of file descriptors and the like: wait a moment, keep serving.
            tracing::warn!("cannot accept a connection: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Runs a connection, holding its place under `--max-concurrent-connections` while it is open.
fn spawn(
    server: &Arc<Server>,
    served: impl Future<Output = Result<(), crate::server::ConnectionError>> + Send + 'static,
    peer: String,
    place: OwnedSemaphorePermit,
) {
    use std::sync::atomic::Ordering;
    server.open.fetch_add(1, Ordering::Relaxed);
    let server = server.clone();
    tokio::spawn(async move {
        let _place = place;
        if let Err(e) = served.await {
            tracing::debug!(%peer, "connection ended: {e}");
        }
        server.open.fetch_sub(1, Ordering::Relaxed);
    });
}

/// Connections the kernel completes and holds for the accept loop: std's (and tokio's) bind
/// asks for 128, and a burst of a few hundred connections overflowed it (a dropped SYN is
/// retried a second later); Linux caps the value at `net.core.somaxconn` (4096 by default),
/// as Go's listener asks for.
const LISTEN_BACKLOG: u32 = 4096;

/// The listeners of `--addr` (0.0.0.0:8080 if none is given and systemd passes none) and,
/// with `--systemd-listenfd`, those systemd passes; each error says which address and what to
/// do.
fn open_all(addrs: &[Addr], systemd: bool) -> Result<Vec<Listener>> {
    let mut listeners = Vec::new();
    if systemd {
        listeners.extend(inherited()?);
    }
    let default = [Addr::Tcp(SocketAddr::from(([0, 0, 0, 0], 8080)))];
    let addrs = match (addrs.is_empty(), systemd) {
        (true, false) => &default[..],
        _ => addrs,
    };
    for addr in addrs {
        listeners.push(match addr {
            Addr::Tcp(tcp) => Listener::Tcp(listen_tcp(*tcp).map_err(|e| cannot_listen(addr, &e))?),
            Addr::Unix(path) => listen_unix(path)?,
            Addr::Abstract(name) => listen_abstract(addr, name)?,
        });
    }
    Ok(listeners)
}

fn cannot_listen(addr: &Addr, e: &std::io::Error) -> anyhow::Error {
    match e.kind() {
        ErrorKind::AddrInUse => anyhow!(
            "cannot listen on {addr}: the address is in use (is another server running there?); \
             choose another with `--addr`, or `--addr 127.0.0.1:0` for any free port"
        ),
        ErrorKind::PermissionDenied => anyhow!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges; a \
             Unix socket, write access to its directory); choose another with `--addr`"
        ),
        _ => anyhow!("cannot listen on {addr}: {e}"),
    }
}

/// A listener on `addr` (with SO_REUSEADDR, as std's) and a deep backlog.
fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A Unix socket at `path`, bound through its directory (see [`SocketFile`]). A socket file
/// left there by a server that is gone (nothing answers on it) is replaced; a live one, or a
/// file that is not a socket, is an error.
fn listen_unix(path: &Path) -> Result<Listener> {
    use std::os::unix::fs::FileTypeExt as _;
    let addr = Addr::Unix(path.to_path_buf());
    let (dir, name) =
        SocketFile::directory_of(path).map_err(|e| anyhow!("cannot listen on {addr}: {e:#}"))?;
    let via = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ))
    .join(&name);
    // Where the system has no /proc, by the path itself.
    let via = if via.parent().is_some_and(Path::exists) {
        via
    } else {
        path.to_path_buf()
    };
    if let Ok(meta) = std::fs::symlink_metadata(&via) {
        if !meta.file_type().is_socket() {
            bail!(
                "cannot listen on {addr}: the path exists and is not a socket; remove it or \
                 choose another path"
            );
        }
        match std::os::unix::net::UnixStream::connect(&via) {
            Ok(_) => bail!(
                "cannot listen on {addr}: a server is answering there; stop it or choose another \
                 path"
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!("replacing the stale socket {}", path.display());
                std::fs::remove_file(&via)
                    .map_err(|e| cannot_listen(&addr, &e))
                    .context("the stale socket cannot be removed")?;
            }
            Err(e) => return Err(cannot_listen(&addr, &e)),
        }
    }
    let listener =
        std::os::unix::net::UnixListener::bind(&via).map_err(|e| cannot_listen(&addr, &e))?;
    let file = SocketFile::bound(dir, name).map_err(|e| cannot_listen(&addr, &e))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(listener)?;
    Ok(Listener::Unix {
        listener,
        _file: Some(file),
        shown: Some(path.to_path_buf()),
    })
}

/// A socket named `name` in Linux's abstract namespace: no file, nothing to remove.
fn listen_abstract(addr: &Addr, name: &str) -> Result<Listener> {
    use std::os::linux::net::SocketAddrExt as _;
    let socket = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| cannot_listen(addr, &e))?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&socket)
        .map_err(|e| cannot_listen(addr, &e))?;
    listener.set_nonblocking(true)?;
    Ok(Listener::Unix {
        listener: tokio::net::UnixListener::from_std(listener)?,
        _file: None,
        shown: None,
    })
}

/// The sockets systemd passes (`LISTEN_FDS` from descriptor 3 on, for this process by
/// `LISTEN_PID`), TCP or Unix, already bound and listening;
/// the descriptors are made close-on-exec: nothing the process starts takes them.
fn inherited() -> Result<Vec<Listener>> {
    use std::os::fd::{FromRawFd as _, OwnedFd, RawFd};
    const FIRST: RawFd = 3;
    let no = || {
        anyhow!(
            "`--systemd-listenfd`: no sockets were passed (LISTEN_FDS and LISTEN_PID are not set \
             for this process); start it from a systemd socket unit, or give `--addr`"
        )
    };
    let pid = std::env::var("LISTEN_PID").map_err(|_| no())?;
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        bail!(
            "`--systemd-listenfd`: LISTEN_PID is {pid}, not this process ({}): the sockets were \
             meant for another; start worldhost from the socket unit itself",
            std::process::id()
        );
    }
    let count: RawFd = std::env::var("LISTEN_FDS")
        .map_err(|_| no())?
        .parse()
        .map_err(|_| anyhow!("`--systemd-listenfd`: LISTEN_FDS is not a number"))?;
    let mut listeners = Vec::new();
    for fd in FIRST..FIRST.saturating_add(count) {
        // SAFETY: systemd passes descriptors 3 to 3 + LISTEN_FDS - 1 to this process (its pid
        // was checked above), open before anything in it ran, so nothing else in it has them.
        // Should the variables lie, the descriptor is owned only if it is a listening stream
        // socket, which nothing in worldhost makes before this.
        #[allow(unsafe_code)]
        let owned = unsafe {
            let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
            let listening = rustix::net::sockopt::socket_acceptconn(borrowed).unwrap_or(false)
                && rustix::net::sockopt::socket_type(borrowed).ok()
                    == Some(rustix::net::SocketType::STREAM);
            if !listening {
                bail!(
                    "`--systemd-listenfd`: descriptor {fd} of LISTEN_FDS is not a listening \
                     stream socket; check the socket unit (`ListenStream=`)"
                );
            }
            OwnedFd::from_raw_fd(fd)
        };
        // Not inherited by what the process starts.
        rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)?;
        let local = rustix::net::getsockname(&owned)
            .with_context(|| format!("`--systemd-listenfd`: descriptor {fd} is not a socket"))?;
        let listener = match local.address_family() {
            rustix::net::AddressFamily::UNIX => {
                let std = std::os::unix::net::UnixListener::from(owned);
                std.set_nonblocking(true)?;
                Listener::Unix {
                    listener: tokio::net::UnixListener::from_std(std)?,
                    _file: None,
                    shown: None,
                }
            }
            rustix::net::AddressFamily::INET | rustix::net::AddressFamily::INET6 => {
                let std = std::net::TcpListener::from(owned);
                std.set_nonblocking(true)?;
                Listener::Tcp(TcpListener::from_std(std)?)
            }
            _ => bail!("`--systemd-listenfd`: descriptor {fd} is neither a TCP nor a Unix socket"),
        };
        listeners.push(listener);
    }
    if listeners.is_empty() {
        return Err(no());
    }
    Ok(listeners)
}

/// A place under `--max-concurrent-connections`: at once if one is free, otherwise once a
/// connection closes (with a warning, once a minute at most).
async fn connection_place(open: &Arc<Semaphore>) -> std::io::Result<OwnedSemaphorePermit> {
    if let Ok(permit) = open.clone().try_acquire_owned() {
        return Ok(permit);
    }
    // Once a minute at most: under a flood this is hit on every accept.
    static WARNED: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let warn = {
        let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
        let due = warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60));
        if due {
            *warned = Some(std::time::Instant::now());
        }
        due
    };
    if warn {
        tracing::warn!(
            "every connection `--max-concurrent-connections` allows is open; new ones wait \
             until one closes"
        );
    }
    open.clone()
        .acquire_owned()
        .await
        .map_err(std::io::Error::other)
}

/// The next TCP connection, with TCP_NODELAY set.
async fn accept_tcp(listener: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept().await?;
    // A response goes out in pieces (the head as soon as the guest sets it, then the body as
    // it writes it): with Nagle's algorithm a small piece waits for the client's delayed ACK
    // of the last one, about 40 ms on Linux.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
    }
    Ok((stream, peer))
}

/// How many connections may be open at once: `--max-concurrent-connections`, within the process's
/// open-file limit, which is first raised to its hard maximum (as Go's runtime does) since
/// every connection is a file descriptor.
pub(crate) fn connection_budget(wanted: usize) -> usize {
    /// Descriptors kept for everything else: the listener, the compilation cache, guests' files.
    const RESERVED: u64 = 64;
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                limit = raised;
            }
        }
        if let Some(files) = limit.current {
            let room = usize::try_from(files.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
            if room < wanted {
                tracing::warn!(
                    "the open-file limit is {files}: at most {room} connections at once, not the \
                     {wanted} of `--max-concurrent-connections` (raise it with `ulimit -n`)"
                );
                return room.max(1);
            }
        }
    }
    wanted
}

/// What a signal asks of the server.
enum Signal {
    /// SIGHUP: load the component again.
    Reload,
    /// SIGINT, SIGTERM or a connection to `--shutdown-addr`, named.
    Stop(&'static str),
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP, listened for from the start: a signal that arrives
/// while the server is busy is kept, not lost (a `ctrl_c()` made anew each turn would miss
/// it); and a connection to `--shutdown-addr`, if given.
struct Signals {
    shutdown: Option<TcpListener>,
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            shutdown: None,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            hup: signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?,
        })
    }

    async fn next(&mut self) -> Signal {
        let shutdown = async {
            match &self.shutdown {
                // Only a connection counts: a failed accept (out of descriptors, say, under a
                // flood) must not stop the server.
                Some(listener) => loop {
                    match listener.accept().await {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!("cannot accept on --shutdown-addr: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.int.recv() => Signal::Stop("SIGINT"),
            _ = self.term.recv() => Signal::Stop("SIGTERM"),
            _ = self.hup.recv() => Signal::Reload,
            () = shutdown => Signal::Stop("a connection to --shutdown-addr"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_connections_send_without_waiting_for_acks() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (accepted, _client) = tokio::join!(accept_tcp(&listener), TcpStream::connect(addr));
            let (stream, _) = accepted.unwrap();
            assert!(stream.nodelay().unwrap(), "TCP_NODELAY is off");
        });
    }
}
