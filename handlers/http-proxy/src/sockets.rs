//! The sockets: `--addr` (repeatable: TCP, `unix:PATH`, `unix:@NAME`) and those systemd passes
//! with `--systemd-listenfd`, each with a deep backlog; TCP connections with TCP_NODELAY; and
//! how many connections the open-file limit allows.

use crate::args::Addr;
use anyhow::{Context as _, Result, anyhow, bail};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::net::{TcpListener, TcpStream};

/// A socket the server accepts on.
pub(crate) enum Listener {
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
pub(crate) struct SocketFile {
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
    pub(crate) fn url(&self, tls: bool) -> Result<String> {
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

/// Connections the kernel completes and holds for the accept loop: std's (and tokio's) bind
/// asks for 128, and a burst of a few hundred connections overflowed it (a dropped SYN is
/// retried a second later); Linux caps the value at `net.core.somaxconn` (4096 by default),
/// as Go's listener asks for.
const LISTEN_BACKLOG: u32 = 4096;

/// The listeners of `--addr` (0.0.0.0:8080 if none is given and systemd passes none) and,
/// with `--systemd-listenfd`, those systemd passes; each error says which address and what to
/// do.
pub(crate) fn open_all(addrs: &[Addr], systemd: bool) -> Result<Vec<Listener>> {
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

/// The next TCP connection, with TCP_NODELAY set.
pub(crate) async fn accept_tcp(listener: &TcpListener) -> std::io::Result<(TcpStream, SocketAddr)> {
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
