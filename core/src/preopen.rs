//! The directories a guest is given, made so that none reaches the kernel's own file systems,
//! each held open from the start.
//!
//! A preopen is a directory descriptor: the guest opens paths beneath it (cap-std keeps it
//! there, `..` and links included), but beneath it means every mount beneath it too. A grant of
//! `/` (`--dir /::/::ro`, or the containerd shim's grant of the container's root) would reach
//! `/proc/self`, which is worldhost itself: its environment, its memory map and, through
//! `/proc/self/mem`, its memory (in a server, other clients' requests and TLS keys); `/sys` and
//! `/dev` are as bad. A preopen cannot leave a subdirectory out, so a grant that holds such a
//! place is split: it becomes one preopen per entry of the granted directory, at the same guest
//! paths, except the entries that are (or lead to) the kernel's places, which are split the
//! same way or left out. Everything else is reachable at its path, mounts included (a volume a
//! pod mounts in its root, read-only or not, stays readable where it was), with three losses:
//! the listing of a split directory, files that sit directly in one, and a link that leads
//! from one of its entries into another (cap-std follows no link out of a preopen). A link to a
//! directory just inside an entry that leads into another entry (`/var/run -> ../run`, where
//! Kubernetes' token is found) is granted as a preopen of its own at its path.
//!
//! What is the kernel's: `/proc`, `/sys` and `/dev` whatever is mounted there (a container's
//! `/dev` is a tmpfs of device nodes), and every mount of the kernel's pseudo file systems
//! wherever it is (a `proc` mounted in a chroot), read from `/proc/self/mountinfo`.
//!
//! Each preopen is opened once, here, checked (a directory, on no kernel file system), and
//! granted through that descriptor (`/proc/self/fd/N`) at every store: a path swapped for a
//! link afterwards (a deploy's `current` re-pointed at `/proc`) changes nothing.
//!
//! openat2's `RESOLVE_NO_XDEV` would refuse every crossing into another mount, but the opens
//! are cap-std's, inside wasmtime-wasi, with its own flags; and it would cut off the volumes
//! too. A grant inside one of these places (`--dir /proc`) is refused.

use anyhow::{Result, bail};
use std::collections::HashSet;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The places that are the kernel's whatever is mounted there.
const KERNEL_PLACES: &[&str] = &["/proc", "/sys", "/dev"];

/// The file systems whose files are the kernel's views of processes, devices and itself.
const KERNEL_FILE_SYSTEMS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "pstore",
    "efivarfs",
    "fusectl",
    "binfmt_misc",
    "mqueue",
    "hugetlbfs",
    "selinuxfs",
    "nsfs",
];

/// The same file systems by their `statfs` magic numbers, for a directory already open
/// (devtmpfs reports tmpfs's, and is told by its place instead).
const KERNEL_MAGIC: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x1cd1,      // devpts
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x7363_6673, // securityfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0xcafe_4a11, // bpf
    0x6265_6570, // configfs
    0x6165_676c, // pstore
    0xde5e_81e4, // efivarfs
    0x6573_5543, // fusectl
    0x4249_4e4d, // binfmt_misc
    0x1980_0202, // mqueue
    0x9584_58f6, // hugetlbfs
    0xf97c_ff8c, // selinuxfs
    0x6e73_6673, // nsfs
];

/// A `--dir` grant, as given; [`confine`] makes the preopens of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory.
    pub host: PathBuf,
    /// The path the guest sees it at.
    pub guest: String,
    /// Read-only (`::ro`) or read-write.
    pub read_only: bool,
}

/// A directory given to the guest, open since the start.
#[derive(Debug, Clone)]
pub struct Preopen {
    /// The directory, held open: what every store is granted.
    dir: Arc<OwnedFd>,
    /// Its path on the host, as found then (for messages).
    pub host: PathBuf,
    /// The path the guest sees it at.
    pub guest: String,
    /// Read-only (`::ro`) or read-write.
    pub read_only: bool,
}

impl Preopen {
    /// The path that opens this very directory again (`/proc/self/fd/N`), or where the system
    /// has none, the host path.
    pub fn path(&self) -> PathBuf {
        let path = PathBuf::from(format!("/proc/self/fd/{}", self.dir.as_raw_fd()));
        if path.exists() {
            path
        } else {
            self.host.clone()
        }
    }
}

/// Whether a mount at `point` of file system `fs_type` is the kernel's (see the module's
/// documentation).
pub fn is_kernel_mount(point: &Path, fs_type: &str) -> bool {
    KERNEL_FILE_SYSTEMS.contains(&fs_type) || KERNEL_PLACES.iter().any(|p| point.starts_with(p))
}

/// `grants` as preopens that reach none of the kernel's places (see the module's
/// documentation); each grant's host directory must exist.
pub fn confine(grants: &[DirGrant]) -> Result<Vec<Preopen>> {
    if grants.is_empty() {
        return Ok(Vec::new());
    }
    confine_among(grants, &kernel_places())
        .into_iter()
        .map(|grant| open(&grant))
        .collect()
}

/// [`confine`]'s plan, with the kernel's places given: the directories to preopen.
fn confine_among(grants: &[DirGrant], kernel: &[PathBuf]) -> Vec<Result<DirGrant>> {
    let mut preopens = Vec::new();
    for grant in grants {
        let host = match grant.host.canonicalize() {
            Ok(host) => host,
            Err(e) => {
                preopens.push(Err(anyhow::anyhow!(
                    "`--dir {}`: cannot resolve the directory: {e}",
                    grant.host.display()
                )));
                continue;
            }
        };
        if let Some(place) = kernel.iter().find(|place| host.starts_with(place)) {
            preopens.push(Err(anyhow::anyhow!(
                "`--dir {}`: `{}` is the kernel's (its views of processes and devices, where a \
                 guest would reach worldhost's own memory and environment); worldhost grants \
                 nothing of /proc, /sys or /dev; copy what the guest needs to a directory of \
                 its own",
                grant.host.display(),
                place.display()
            )));
            continue;
        }
        let within: Vec<&PathBuf> = kernel.iter().filter(|p| p.starts_with(&host)).collect();
        if within.is_empty() {
            preopens.push(Ok(DirGrant {
                host,
                ..grant.clone()
            }));
            continue;
        }
        let mut split = Split {
            root: &host,
            kernel,
            read_only: grant.read_only,
            visited: HashSet::new(),
            out: Vec::new(),
        };
        split.split(&host, &grant.guest, 0);
        // A guest path given by a grant of its own is that grant's (`--dir /::/::ro` with
        // `--dir /data::/data`): the split's entry of the same guest path would shadow it.
        let mut split = split.out;
        split.retain(|entry| !grants.iter().any(|g| g.guest == entry.guest));
        tracing::debug!(
            "`--dir {}` holds the kernel's {}: granted as {} preopens without them",
            grant.host.display(),
            within
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            split.len()
        );
        preopens.extend(split.into_iter().map(Ok));
    }
    preopens
}

/// Opens the directory of `grant` and checks it is one, on no kernel file system.
fn open(grant: &Result<DirGrant>) -> Result<Preopen> {
    use rustix::fs::{Mode, OFlags};
    let grant = match grant {
        Ok(grant) => grant,
        Err(e) => bail!("{e:#}"),
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = rustix::fs::open(&grant.host, flags, Mode::empty())
        .map_err(|e| anyhow::anyhow!("`--dir`: cannot open `{}`: {e}", grant.host.display()))?;
    let on = rustix::fs::fstatfs(&dir)
        .map_err(|e| anyhow::anyhow!("`--dir`: cannot check `{}`: {e}", grant.host.display()))?;
    #[allow(clippy::unnecessary_cast)]
    if KERNEL_MAGIC.contains(&(on.f_type as i64)) {
        bail!(
            "`--dir`: `{}` is on one of the kernel's file systems; worldhost grants nothing of \
             /proc, /sys or /dev",
            grant.host.display()
        );
    }
    Ok(Preopen {
        dir: Arc::new(dir),
        host: grant.host.clone(),
        guest: grant.guest.clone(),
        read_only: grant.read_only,
    })
}

/// How deep a split goes at most: past it, a directory that still holds a kernel's place is
/// left out (real roots need two or three levels).
const MAX_DEPTH: usize = 16;

/// One grant being split around the kernel's places within it.
struct Split<'a> {
    /// The granted directory: a link in it may lead anywhere beneath it, not outside.
    root: &'a Path,
    /// The kernel's places.
    kernel: &'a [PathBuf],
    read_only: bool,
    /// The directories split already: a link back to one is not followed again.
    visited: HashSet<PathBuf>,
    out: Vec<DirGrant>,
}

impl Split<'_> {
    fn push(&mut self, host: &Path, guest: &str) {
        self.out.push(DirGrant {
            host: host.to_path_buf(),
            guest: guest.to_string(),
            read_only: self.read_only,
        });
    }

    /// Adds the preopens for `host` (canonical) at `guest`: nothing if it is at or under a
    /// kernel's place, itself if none is beneath it, else its entries, each split the same way.
    fn split(&mut self, host: &Path, guest: &str, depth: usize) {
        if self.kernel.iter().any(|p| host.starts_with(p)) {
            return;
        }
        if !self.kernel.iter().any(|p| p.starts_with(host)) {
            self.push(host, guest);
            self.escapes(host, guest);
            return;
        }
        if depth >= MAX_DEPTH || !self.visited.insert(host.to_path_buf()) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(host) else {
            return;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let file_name = entry.file_name();
            let (Ok(kind), Some(name)) = (entry.file_type(), file_name.to_str()) else {
                continue;
            };
            let guest = format!("{}/{name}", guest.trim_end_matches('/'));
            if kind.is_dir() {
                self.split(&entry.path(), &guest, depth + 1);
            } else if kind.is_symlink()
                && let Some(target) = self.within(&entry.path())
            {
                // A link to a directory (`/lib -> usr/lib`) is granted as what it leads to.
                self.split(&target, &guest, depth + 1);
            }
        }
    }

    /// The directory a link at `path` leads to, if it is one beneath the grant: cap-std
    /// follows no link out of a preopen either.
    fn within(&self, path: &Path) -> Option<PathBuf> {
        let target = path.canonicalize().ok()?;
        (target.is_dir() && target.starts_with(self.root)).then_some(target)
    }

    /// For a directory kept whole (`dir`, at `guest`), its links to directories that lead out
    /// of it into the rest of the grant (`/var/run -> ../run`): each a preopen of its own at
    /// its path, unless it leads to a kernel's place or to a directory that holds one.
    fn escapes(&mut self, dir: &Path, guest: &str) {
        if dir == self.root {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let file_name = entry.file_name();
            let (Ok(kind), Some(name)) = (entry.file_type(), file_name.to_str()) else {
                continue;
            };
            if !kind.is_symlink() {
                continue;
            }
            let Some(target) = self.within(&entry.path()) else {
                continue;
            };
            let kernel = |p: &PathBuf| target.starts_with(p) || p.starts_with(&target);
            if !target.starts_with(dir) && !self.kernel.iter().any(kernel) {
                let guest = format!("{}/{name}", guest.trim_end_matches('/'));
                self.push(&target, &guest);
            }
        }
    }
}

/// The kernel's places, as this process sees them.
fn kernel_places() -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut places: Vec<PathBuf> = KERNEL_PLACES.iter().map(PathBuf::from).collect();
    for mount in mounts(&table) {
        if is_kernel_mount(&mount.point, &mount.fs_type)
            && !places.iter().any(|p| mount.point.starts_with(p))
        {
            places.push(mount.point);
        }
    }
    places
}

/// A line of a mountinfo table: where the mount is, its file system, whether it is writable,
/// and the path within its file system it shows (for a bind mount, what was bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount point, relative to the process's root.
    pub point: PathBuf,
    /// The file system's type (`proc`, `ext4`, `overlay`…).
    pub fs_type: String,
    /// Mounted read-write.
    pub writable: bool,
    /// The directory of its file system it shows.
    pub root: String,
}

/// The mounts of a `/proc/PID/mountinfo` table (procfs-core's parser; the paths unescaped).
pub fn mounts(table: &str) -> Vec<Mount> {
    (table.lines())
        .filter_map(|line| procfs_core::process::MountInfo::from_line(line).ok())
        .map(|info| Mount {
            point: PathBuf::from(unescape(&info.mount_point.to_string_lossy())),
            fs_type: info.fs_type,
            writable: info.mount_options.contains_key("rw"),
            root: unescape(&info.root),
        })
        .collect()
}

/// A mountinfo path: a space, tab, newline or backslash is written as `\` and three octal
/// digits.
fn unescape(field: &str) -> String {
    let mut out = Vec::new();
    let bytes = field.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(host: &Path, guest: &str) -> DirGrant {
        DirGrant {
            host: host.to_path_buf(),
            guest: guest.into(),
            read_only: true,
        }
    }

    /// The guest paths [`confine_among`] plans for `grants` with `kernel` as the kernel's, and
    /// the host directories.
    fn planned(grants: &[DirGrant], kernel: &[PathBuf]) -> Vec<(String, PathBuf)> {
        (confine_among(grants, kernel).into_iter())
            .map(|g| g.unwrap())
            .map(|g| (g.guest, g.host))
            .collect()
    }

    #[test]
    fn a_mountinfo_table_is_read_with_its_escapes() {
        let table = "\
611 553 0:52 / / ro,relatime - overlay overlay rw,lowerdir=/a
612 611 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
616 611 8:1 /srv/data /data rw,relatime - ext4 /dev/vda rw
618 611 8:1 /srv/x /my\\040dir rw,relatime - ext4 /dev/vda rw
";
        let found = mounts(table);
        assert_eq!(found.len(), 4);
        assert_eq!(found[1].fs_type, "proc");
        assert!(!found[0].writable && found[2].writable);
        assert_eq!(found[2].root, "/srv/data");
        assert_eq!(found[3].point, PathBuf::from("/my dir"));
        assert!(is_kernel_mount(&found[1].point, &found[1].fs_type));
        assert!(!is_kernel_mount(&found[2].point, &found[2].fs_type));
    }

    #[test]
    fn the_root_is_granted_without_the_kernels_places() {
        let preopens = confine(&[grant(Path::new("/"), "/")]).unwrap();
        let guest: Vec<&str> = preopens.iter().map(|p| p.guest.as_str()).collect();
        assert!(guest.contains(&"/etc"), "{guest:?}");
        for kernel in ["/", "/proc", "/sys", "/dev"] {
            assert!(!guest.contains(&kernel), "{kernel} in {guest:?}");
        }
        assert!(preopens.iter().all(|p| p.read_only));
        // Each is open, and opened again by its descriptor's path.
        assert!(preopens.iter().all(|p| p.path().is_dir()));
    }

    #[test]
    fn links_into_the_kernels_places_or_back_up_lead_nowhere_and_links_across_are_kept() {
        // A root of its own: `kernel` stands for /proc, `data` for a directory granted.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let kernel = root.join("kernel");
        for dir in ["kernel/self", "data/inner", "var", "run/secrets"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink("kernel/self", root.join("self")).unwrap();
        std::os::unix::fs::symlink(".", root.join("loop")).unwrap();
        std::os::unix::fs::symlink("data", root.join("alias")).unwrap();
        std::os::unix::fs::symlink("../run", root.join("var/run")).unwrap();
        std::os::unix::fs::symlink("../kernel", root.join("var/k")).unwrap();
        let plan = planned(&[grant(&root, "/")], std::slice::from_ref(&kernel));
        let guest: Vec<&str> = plan.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(
            guest,
            ["/alias", "/data", "/run", "/var", "/var/run"],
            "{plan:?}"
        );
        assert!(plan.contains(&("/var/run".into(), root.join("run"))));
    }

    #[test]
    fn a_grant_without_the_kernels_places_is_kept_whole_and_one_inside_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let kept = confine(&[grant(tmp.path(), "/data")]).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].host, tmp.path().canonicalize().unwrap());
        let err = confine(&[grant(Path::new("/proc/self"), "/p")]).unwrap_err();
        assert!(format!("{err:#}").contains("is the kernel's"), "{err:#}");
    }

    #[test]
    fn a_grant_of_its_own_path_wins_over_the_split() {
        let root = grant(Path::new("/"), "/");
        let tmp = tempfile::tempdir().unwrap();
        let data = DirGrant {
            host: tmp.path().to_path_buf(),
            guest: "/etc".into(),
            read_only: false,
        };
        let preopens = confine(&[root, data]).unwrap();
        let etc: Vec<&Preopen> = preopens.iter().filter(|p| p.guest == "/etc").collect();
        assert_eq!(etc.len(), 1);
        assert!(!etc[0].read_only);
    }
}
