//! The directories a guest is given, made so that none reaches the kernel's own file systems.
//!
//! A preopen is a directory descriptor: the guest opens paths beneath it (cap-std keeps it
//! there, `..` and links included), but beneath it means every mount beneath it too. A grant of
//! `/` (`--dir /::/::ro`, or the containerd shim's grant of the container's root) would reach
//! `/proc/self`, which is worldhost itself: its environment, its memory map and, through
//! `/proc/self/mem`, its memory (in a server, other clients' requests and TLS keys); `/sys` and
//! `/dev` are as bad. A preopen cannot leave a subdirectory out, so a grant that holds such a
//! place is split: it becomes one preopen per entry of the granted directory, at the same guest
//! paths, except the entries that are (or lead to) the kernel's places, which are split the
//! same way or left out. Files that sit directly in a split directory (and the directory's
//! listing) are not reachable then; everything else is, at its path, mounts included (a volume
//! a pod mounts in its root, read-only or not, stays readable where it was).
//!
//! What is the kernel's: `/proc`, `/sys` and `/dev` whatever is mounted there (a container's
//! `/dev` is a tmpfs of device nodes), and every mount of the kernel's pseudo file systems
//! wherever it is (a `proc` mounted in a chroot), read from `/proc/self/mountinfo`.
//!
//! openat2's `RESOLVE_NO_XDEV` would refuse every crossing into another mount, but the opens
//! are cap-std's, inside wasmtime-wasi, with its own flags; and it would cut off the volumes
//! too. A grant inside one of these places (`--dir /proc`) is refused.

use crate::settings::DirGrant;
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};

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

/// `grants` as preopens that reach none of the kernel's places (see the module's
/// documentation); each grant's host directory must exist.
pub fn confine(grants: &[DirGrant]) -> Result<Vec<DirGrant>> {
    if grants.is_empty() {
        return Ok(Vec::new());
    }
    let kernel = kernel_places();
    let mut preopens = Vec::new();
    for grant in grants {
        let host = grant.host.canonicalize().with_context(|| {
            format!(
                "`--dir {}`: cannot resolve the directory",
                grant.host.display()
            )
        })?;
        if let Some(place) = kernel.iter().find(|place| host.starts_with(place)) {
            bail!(
                "`--dir {}`: `{}` is the kernel's (its views of processes and devices, where a \
                 guest would reach worldhost's own memory and environment); worldhost grants \
                 nothing of /proc, /sys or /dev; copy what the guest needs to a directory of \
                 its own",
                grant.host.display(),
                place.display()
            );
        }
        let within: Vec<&PathBuf> = kernel.iter().filter(|p| p.starts_with(&host)).collect();
        if within.is_empty() {
            preopens.push(grant.clone());
            continue;
        }
        let mut split = Vec::new();
        let root = Split {
            root: &host,
            kernel: &within,
            read_only: grant.read_only,
        };
        root.split(&host, &grant.guest, &mut split)?;
        // A guest path given by a grant of its own is that grant's (`--dir /::/::ro` with
        // `--dir /data::/data`): the split's entry of the same guest path would shadow it.
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
        preopens.extend(split);
    }
    Ok(preopens)
}

/// One grant being split around the kernel's places within it.
struct Split<'a> {
    /// The granted directory: a link in it may lead anywhere beneath it, not outside.
    root: &'a Path,
    /// The kernel's places beneath it.
    kernel: &'a [&'a PathBuf],
    read_only: bool,
}

impl Split<'_> {
    /// Adds the preopens for `host` at `guest`: itself if no kernel's place is beneath it,
    /// nothing if it is one, else its entries, each split the same way.
    fn split(&self, host: &Path, guest: &str, out: &mut Vec<DirGrant>) -> Result<()> {
        if self.kernel.iter().any(|p| p.as_path() == host) {
            return Ok(());
        }
        if !self.kernel.iter().any(|p| p.starts_with(host)) {
            out.push(DirGrant {
                host: host.to_path_buf(),
                guest: guest.to_string(),
                read_only: self.read_only,
            });
            return Ok(());
        }
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .with_context(|| format!("cannot list `{}`", host.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let guest = format!("{}/{name}", guest.trim_end_matches('/'));
            let path = entry.path();
            if kind.is_dir() {
                self.split(&path, &guest, out)?;
            } else if kind.is_symlink() {
                // A link to a directory (`/lib -> usr/lib`) is granted as what it leads to, if
                // that is beneath the grant: cap-std follows no link out of a preopen either.
                let Ok(target) = path.canonicalize() else {
                    continue;
                };
                if target.is_dir() && target.starts_with(self.root) {
                    self.split(&target, &guest, out)?;
                }
            }
        }
        Ok(())
    }
}

/// The kernel's places, as this process sees them.
fn kernel_places() -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut places: Vec<PathBuf> = KERNEL_PLACES.iter().map(PathBuf::from).collect();
    for mount in mounts(&table) {
        if KERNEL_FILE_SYSTEMS.contains(&mount.fs_type.as_str())
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
    }

    #[test]
    fn a_grant_without_the_kernels_places_is_kept_whole_and_one_inside_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let kept = grant(tmp.path(), "/data");
        assert_eq!(confine(std::slice::from_ref(&kept)).unwrap(), [kept]);
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
        let preopens = confine(&[root, data.clone()]).unwrap();
        let etc: Vec<&DirGrant> = preopens.iter().filter(|p| p.guest == "/etc").collect();
        assert_eq!(etc, [&data]);
    }
}
