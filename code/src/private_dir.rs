//! A directory that only its user can write, for what worldhost must not take from anyone else:
//! the compilation cache (its entries are machine code that runs as is) and the REPL's history.
//!
//! The directory is created 0700. An existing one is used only if it is a real directory (not
//! a symbolic link) owned by this user; one that others may write is made 0700 first (with a
//! warning). It is then opened once,
//! and every file in it is reached through that open directory (`openat` and friends), so a
//! rename or a link swapped in above it later changes nothing. A file in it is used only if it
//! is a regular file owned by this user: opened with `O_NOFOLLOW | O_NONBLOCK` (a symbolic link
//! is refused, a FIFO does not block), then checked on the open file. Unix only.

use anyhow::{Result, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

/// An open directory of this user's own.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// A file in a [`PrivateDir`], as listed: its name, size and modification time.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The file's name in the directory.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was last modified.
    pub modified: std::time::SystemTime,
}

impl PrivateDir {
    /// Opens the directory at `path`, creating it (mode 0700, its parents as usual) when it is
    /// missing and `create` is true; `None` when it is missing and `create` is false. An error
    /// says why a directory that exists is not used.
    pub fn open(path: &Path, create: bool) -> Result<Option<PrivateDir>> {
        let shown = path.display();
        if create {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| anyhow::anyhow!("cannot create `{}`: {e}", parent.display()))?;
            }
            match rustix::fs::mkdir(path, Mode::RWXU) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => bail!("cannot create `{shown}`: {e}"),
            }
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) if !create => return Ok(None),
            // With O_DIRECTORY, Linux answers a link with ENOTDIR, others with ELOOP.
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
                    bail!(
                        "`{shown}` is a symbolic link; worldhost uses only a real directory of \
                         the user's own there, so that nobody else can change what it holds; \
                         remove the link"
                    )
                }
                bail!("`{shown}` is not a directory")
            }
            Err(e) => bail!("cannot open `{shown}`: {e}"),
        };
        let stat = rustix::fs::fstat(&fd)?;
        if stat.st_uid == rustix::process::geteuid().as_raw() && stat.st_mode & 0o022 != 0 {
            // The user's own directory, made under a umask that lets the group write (002, as
            // for users with a group of their own; worldhost before 0700 made it so). Closed
            // to others through the open directory; what others may have put in it meanwhile
            // is refused file by file (only the user's own files are taken).
            rustix::fs::fchmod(&fd, Mode::RWXU)?;
            tracing::warn!(
                "`{shown}` could be written by other users (mode {:04o}); it is now 0700",
                stat.st_mode & 0o7777
            );
        } else if let Err(why) = owned_by_this_user(&stat) {
            bail!("`{shown}` {why}");
        }
        Ok(Some(PrivateDir {
            fd,
            path: path.to_path_buf(),
        }))
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the file `name` for reading: `None` if there is none; an error if it is not a
    /// regular file of this user's that no one else may write (a link, a FIFO, another user's).
    pub fn open_file(&self, name: &str) -> Result<Option<File>> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => bail!("it is a symbolic link"),
            Err(e) => bail!("cannot open it: {e}"),
        };
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            bail!("it is not a regular file");
        }
        owned_by_this_user(&stat).map_err(|why| anyhow::anyhow!("it {why}"))?;
        // Reads block again: O_NONBLOCK was only for the open.
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())?;
        Ok(Some(File::from(fd)))
    }

    /// Whether `name` is absent (`Ok(false)`) or a file [`PrivateDir::open_file`] would take
    /// (`Ok(true)`); an error says why not.
    pub fn check_file(&self, name: &str) -> Result<bool> {
        Ok(self.open_file(name)?.is_some())
    }

    /// A new file, readable and writable by this user only, with a name that starts with
    /// `prefix`; returns it and its name. Put it in place with [`PrivateDir::rename`].
    pub fn create_temporary(&self, prefix: &str) -> Result<(File, String)> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            let name = format!(
                "{prefix}{}-{nanos:x}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            match rustix::fs::openat(&self.fd, name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
                Ok(fd) => return Ok((File::from(fd), name)),
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => bail!("cannot create a file in `{}`: {e}", self.path.display()),
            }
        }
    }

    /// Writes the file `name` whole or not at all: `write` fills a temporary file (named with
    /// `prefix`, 0600) that is then renamed over `name`; a reader never sees half a file, and
    /// a failed write leaves nothing behind.
    pub fn write_atomically(
        &self,
        name: &str,
        prefix: &str,
        write: impl FnOnce(&mut File) -> std::io::Result<()>,
    ) -> Result<()> {
        let (mut file, partial) = self.create_temporary(prefix)?;
        let written = write(&mut file)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                drop(file);
                self.rename(&partial, name)
            });
        if written.is_err() {
            let _ = self.remove(&partial);
        }
        written
    }

    /// Renames `from` to `to`, both in this directory; `to` is replaced.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to)?;
        Ok(())
    }

    /// Removes the file `name`; one already gone is not an error.
    pub fn remove(&self, name: &str) -> std::io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The files in the directory whose names `keep` accepts, with their sizes and times (as
    /// the directory holds them: links are not followed).
    pub fn list(&self, keep: impl Fn(&str) -> bool) -> Result<Vec<Listed>> {
        let mut listed = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let Ok(name) = OsString::from_vec(entry.file_name().to_bytes().to_vec()).into_string()
            else {
                continue;
            };
            if !keep(&name) {
                continue;
            }
            // A file removed meanwhile (by another process) is simply not listed.
            let Ok(stat) = rustix::fs::statat(&self.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            else {
                continue;
            };
            let modified = std::time::UNIX_EPOCH
                + std::time::Duration::new(
                    u64::try_from(stat.st_mtime).unwrap_or(0),
                    u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
                );
            listed.push(Listed {
                name,
                bytes: u64::try_from(stat.st_size).unwrap_or(0),
                modified,
            });
        }
        Ok(listed)
    }

    /// A path that names `file` itself, not whatever its name in the directory points to now:
    /// for an API that takes a path but must read the file that was checked (wasmtime maps an
    /// artifact from a path). `None` where the system has no such path.
    pub fn path_of_open(file: &File) -> Option<PathBuf> {
        descriptor_path(file.as_fd().as_raw_fd())
    }

    /// A path to the file `name` in this directory, reached through the open directory (not
    /// its name, which someone could swap) where the system allows: for an API that takes a
    /// path (rustyline's history).
    pub fn path_to(&self, name: &str) -> PathBuf {
        descriptor_path(self.fd.as_raw_fd())
            .unwrap_or_else(|| self.path.clone())
            .join(name)
    }
}

/// Refuses a `path` that [`write_file_atomically`] would not write to: anything but a regular
/// file or a new path. The file is replaced by a rename, which would replace a link, a FIFO or a
/// device (as root, `-o /dev/null` made `/dev/null` a regular file); worldhost refuses them
/// rather than writing through them or over them: what it writes (machine code, a guest's
/// memory) should land where it is plain to see. `what` is what is written (`the artifact`),
/// `flag` what the user gave the path with (`` `-o` ``).
pub fn check_replaceable(path: &Path, what: &str, flag: &str) -> Result<()> {
    let kind = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("cannot check `{}`: {e}", path.display()),
        Ok(meta) => crate::kind::file_type_phrase(meta.file_type()),
    };
    bail!(
        "`{}` is {kind}; worldhost writes {what} only to a regular file or a new path (it \
         replaces the file whole, never writes through a link or into a device); give another \
         {flag}",
        path.display()
    )
}

/// Writes `bytes` to the file at `path` as [`PrivateDir::write_atomically`] does (a new file,
/// 0600, renamed into place), in its directory (which may be anyone's: the user named it),
/// reached through one descriptor; a path that is not a regular file or a new one is refused
/// ([`check_replaceable`], with `what` and `flag`).
pub fn write_file_atomically(path: &Path, bytes: &[u8], what: &str, flag: &str) -> Result<()> {
    use std::io::Write as _;
    check_replaceable(path, what, flag)?;
    let (fd, name) = open_parent(path)?;
    let Some(name) = name.to_str() else {
        bail!("`{}` names no file", path.display());
    };
    let dir = PrivateDir {
        fd,
        path: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };
    dir.write_atomically(name, ".worldhost-", |file| file.write_all(bytes))
}

/// The directory that holds `path`, open (the current one for a bare name), and the name in
/// it: what stays the same if the path is swapped afterwards.
pub fn open_parent(path: &Path) -> Result<(OwnedFd, &std::ffi::OsStr)> {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        bail!("`{}` names no file", path.display());
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(parent, flags, Mode::empty())
        .map_err(|e| anyhow::anyhow!("cannot open the directory `{}`: {e}", parent.display()))?;
    Ok((fd, name))
}

/// The path that names the open descriptor `fd` itself, where the system has one.
fn descriptor_path(fd: i32) -> Option<PathBuf> {
    let path = if cfg!(target_os = "linux") {
        PathBuf::from(format!("/proc/self/fd/{fd}"))
    } else {
        PathBuf::from(format!("/dev/fd/{fd}"))
    };
    path.exists().then_some(path)
}

/// `Ok` if `stat` is of this user's and writable by no one else; else what is wrong, as a
/// phrase after the file's name.
fn owned_by_this_user(stat: &Stat) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    if stat.st_uid != me {
        return Err(format!(
            "belongs to another user (uid {}, and worldhost runs as uid {me}); remove it, or \
             use a directory of your own",
            stat.st_uid
        ));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "may be written by other users (mode {mode:04o}); make it `chmod 700`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_new_directory_is_the_users_alone() {
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("a/b/worldhost");
        assert!(PrivateDir::open(&path, false).unwrap().is_none());
        let dir = PrivateDir::open(&path, true).unwrap().unwrap();
        let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let (mut file, name) = dir.create_temporary(".t-").unwrap();
        std::io::Write::write_all(&mut file, b"x").unwrap();
        dir.rename(&name, "entry").unwrap();
        assert!(dir.open_file("entry").unwrap().is_some());
        assert_eq!(dir.list(|n| n == "entry").unwrap()[0].bytes, 1);
        let mode = std::fs::metadata(path.join("entry"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn links_and_special_files_are_refused_and_an_open_directory_closed() {
        let base = tempfile::tempdir().unwrap();
        let real = base.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = PrivateDir::open(&link, true).unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");

        // The user's own, open to others: closed, then used.
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = PrivateDir::open(&real, false).unwrap().unwrap();
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::os::unix::fs::symlink("/etc/passwd", real.join("link")).unwrap();
        let err = dir.open_file("link").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let fifo = real.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = dir.open_file("fifo").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
