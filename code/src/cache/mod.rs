//! worldhost's compilation cache: a compiled component (or core module) is kept as wasmtime's
//! own serialized artifact, uncompressed, so that a hit costs reading the file, checking it, and
//! mapping the code, not decompressing it; and so that a large component (an interpreter of
//! tens of MB) starts in milliseconds the second time.
//!
//! - **Where**: `$XDG_CACHE_HOME/worldhost` (else the platform's cache directory:
//!   `~/.cache/worldhost` on Linux, `~/Library/Caches/worldhost` on macOS).
//! - **Key**: BLAKE3 of the file's bytes, with everything that makes compiled code differ: the
//!   engine's compilation settings and wasmtime's version (wasmtime's own compatibility hash),
//!   worldhost's version, and whether the file is a component or a core module. A key never
//!   depends on a path or a modification time: a changed file is a different key.
//! - **Entries** are wasmtime's artifact followed by a trailer: its BLAKE3, its length and a
//!   magic string. An entry that was truncated or corrupted on disk is detected, removed and
//!   recompiled, never handed to wasmtime (loading an artifact runs its machine code, so only a
//!   checked one is loaded). A sound entry is memory-mapped by wasmtime, not copied.
//! - **Writes** go to a temporary file in the same directory, renamed into place: two processes
//!   that compile the same component at once both succeed, and a reader never sees half a file.
//! - **Trust**: since an entry is machine code, the directory must be the user's alone (see
//!   [`crate::private_dir`]): created 0700; one that is a symbolic link, another user's, or
//!   writable by others is not used (a warning, and the run goes on without the cache); an
//!   entry is a regular file of the user's, opened without following links or blocking, and
//!   the file that was checked is the one mapped (through its open descriptor, not its name).
//!
//! - **Size**: at most 5 GiB (wasmtime's own default), or `WORLDHOST_CACHE_MAX_SIZE` (bytes,
//!   or with a K, M or G suffix). A hit marks its entry as used (its modification time); when a
//!   write takes the cache past its bound, the entries used longest ago are removed until it is
//!   back under three quarters of it.
//!
//! A cache that cannot be read or written costs speed, never correctness: the component is
//! compiled as if there were no cache, and a warning says why.

mod entry;

use crate::private_dir::PrivateDir;
use crate::{Code, WasmKind};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;

/// The end of an entry's file name.
const SUFFIX: &str = ".whc";
/// The name prefix of a write under way.
const PARTIAL: &str = ".partial-";

/// The default bound on the cache's size.
const DEFAULT_MAX_BYTES: u64 = 5 << 30;
/// A partial write older than this was left by a process that died.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where the cache lives and how large it may grow, before it is opened.
#[derive(Debug, Clone)]
pub struct Location {
    /// The cache directory.
    pub dir: PathBuf,
    /// The bound on its size, in bytes.
    pub max_bytes: u64,
}

/// The cache directory, open: a handle on it, and what it holds.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: Arc<PrivateDir>,
    max_bytes: u64,
}

/// How many entries the cache holds and their total size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Entries.
    pub entries: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Location {
    /// The cache in its usual place (see the module's documentation).
    pub fn from_env() -> Result<Location> {
        let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => dirs::cache_dir().context(
                "no cache directory: neither XDG_CACHE_HOME nor HOME is set; set one, or pass \
                 --no-cache",
            )?,
        };
        let max_bytes = match std::env::var("WORLDHOST_CACHE_MAX_SIZE") {
            Ok(value) => parse_size(&value).with_context(|| {
                format!(
                    "WORLDHOST_CACHE_MAX_SIZE is `{value}`: give a number of bytes, or one with \
                     a K, M or G suffix (`500M`)"
                )
            })?,
            Err(_) => DEFAULT_MAX_BYTES,
        };
        Ok(Location {
            dir: base.join("worldhost"),
            max_bytes,
        })
    }

    /// Opens the cache, creating its directory when `create` (else `None` if there is none);
    /// an error says why a directory that is there is not to be trusted.
    pub fn open(&self, create: bool) -> Result<Option<Cache>> {
        Ok(PrivateDir::open(&self.dir, create)?.map(|dir| Cache {
            dir: Arc::new(dir),
            max_bytes: self.max_bytes,
        }))
    }
}

impl Cache {
    /// The cache in `dir` (created if missing), with the default bound on its size.
    pub fn at(dir: &Path) -> Result<Cache> {
        let location = Location {
            dir: dir.to_path_buf(),
            max_bytes: DEFAULT_MAX_BYTES,
        };
        Ok(location.open(true)?.expect("a created directory is there"))
    }

    /// The same cache, bounded to `max_bytes`.
    pub fn with_max_bytes(self, max_bytes: u64) -> Cache {
        Cache { max_bytes, ..self }
    }

    /// The bound on the cache's size, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The name of the entry for `source` (the file's binary) compiled as `kind` by `engine`:
    /// its key and [`SUFFIX`].
    fn entry(&self, engine: &Engine, kind: WasmKind, source: &[u8]) -> String {
        format!("{}{SUFFIX}", entry::key(engine, kind, source))
    }

    /// The compiled code for `source`, if the cache holds a sound entry for it. An entry that
    /// fails its check is removed (with a warning) so that the caller compiles afresh.
    pub fn get(&self, engine: &Engine, kind: WasmKind, source: &[u8]) -> Option<Code> {
        let name = self.entry(engine, kind, source);
        let loaded = match self.dir.open_file(&name) {
            Ok(None) => return None,
            Ok(Some(file)) => entry::load(engine, kind, &name, file),
            Err(e) => Err(e),
        };
        match loaded {
            Ok(code) => {
                tracing::debug!(entry = %name, "cache hit");
                Some(code)
            }
            // Sound code that the engine's instance pool does not hold (`-O pooling-*`): kept,
            // and the compile that follows says why.
            Err(e) if crate::refused_by_pool(&format!("{e:#}")) => None,
            Err(e) => {
                tracing::warn!(
                    "the cache entry `{}` is not sound ({e:#}); removing it and compiling again",
                    self.dir().join(&name).display()
                );
                let _ = self.dir.remove(&name);
                None
            }
        }
    }

    /// The component composed from the inputs whose key is `key` (composed by `--middleware` and `--plug`), if
    /// a sound entry holds it; one that fails its check is removed.
    pub fn get_composed(&self, key: &str) -> Option<Vec<u8>> {
        let name = format!("{key}{SUFFIX}");
        let file = self.dir.open_file(&name).ok().flatten()?;
        match entry::read(&name, file) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!("the cache entry `{name}` is not sound ({e:#}); removing it");
                let _ = self.dir.remove(&name);
                None
            }
        }
    }

    /// Keeps the composed component `bytes` under `key`. Failing to is a warning only.
    pub fn put_composed(&self, key: &str, bytes: &[u8]) {
        let name = format!("{key}{SUFFIX}");
        let written = (self.dir)
            .write_atomically(&name, PARTIAL, |file| entry::write(file, &name, bytes))
            .and_then(|()| self.trim(&name));
        if let Err(e) = written {
            tracing::warn!("cannot keep the composition in the cache: {e:#}");
        }
    }

    /// Stores `code`, compiled from `source`, for the next run. Failing to is a warning only.
    pub fn put(&self, engine: &Engine, kind: WasmKind, source: &[u8], code: &Code) {
        let name = self.entry(engine, kind, source);
        let written = self.write(&name, code).and_then(|()| self.trim(&name));
        if let Err(e) = written {
            tracing::warn!(
                "cannot write to the compilation cache in `{}`: {e:#} (the next run compiles \
                 again; `--no-cache` silences this)",
                self.dir().display()
            );
        }
    }

    fn write(&self, name: &str, code: &Code) -> Result<()> {
        let artifact = code.serialize()?;
        self.dir
            .write_atomically(name, PARTIAL, |file| entry::write(file, name, &artifact))?;
        tracing::debug!(entry = %name, bytes = artifact.len(), "cached");
        Ok(())
    }

    /// Brings the cache back under its bound after `written` was added: removes the entries
    /// used longest ago (never `written`), and partial writes abandoned for an hour.
    fn trim(&self, written: &str) -> Result<()> {
        let mut files = self.files()?;
        let now = std::time::SystemTime::now();
        let mut total: u64 = files.iter().map(|f| f.bytes).sum();
        for file in files.iter().filter(|f| f.name.starts_with(PARTIAL)) {
            if now.duration_since(file.modified).unwrap_or_default() > ABANDONED
                && self.dir.remove(&file.name).is_ok()
            {
                total -= file.bytes;
            }
        }
        if total <= self.max_bytes {
            return Ok(());
        }
        files.retain(|f| !f.name.starts_with(PARTIAL) && f.name != written);
        files.sort_by_key(|f| f.modified);
        let target = self.max_bytes / 4 * 3;
        for file in files {
            if total <= target {
                break;
            }
            // One another process evicted first counts as removed.
            match self.dir.remove(&file.name) {
                Ok(()) => {
                    tracing::debug!(entry = %file.name, "evicted");
                    total -= file.bytes;
                }
                Err(e) => bail!(
                    "cannot remove `{}`: {e}",
                    self.dir().join(&file.name).display()
                ),
            }
        }
        Ok(())
    }

    /// What the cache holds now.
    pub fn usage(&self) -> Result<Usage> {
        let mut usage = Usage::default();
        for file in self.files()? {
            usage.entries += 1;
            usage.bytes += file.bytes;
        }
        Ok(usage)
    }

    /// Removes every entry (and leftovers of interrupted writes); returns what was removed.
    /// Only names in the directory itself are removed: nothing a link points to.
    pub fn clear(&self) -> Result<Usage> {
        let mut removed = Usage::default();
        for file in self.files()? {
            match self.dir.remove(&file.name) {
                Ok(()) => {
                    removed.entries += 1;
                    removed.bytes += file.bytes;
                }
                Err(e) => bail!(
                    "cannot remove `{}`: {e}",
                    self.dir().join(&file.name).display()
                ),
            }
        }
        Ok(removed)
    }

    /// The entries and partial writes in the directory.
    fn files(&self) -> Result<Vec<crate::private_dir::Listed>> {
        self.dir
            .list(|name| name.starts_with(PARTIAL) || name.ends_with(SUFFIX))
    }
}

/// `123`, `64K`, `500M`, `5G` (binary multiples) as bytes.
fn parse_size(value: &str) -> Option<u64> {
    let value = value.trim();
    let (digits, shift) = match value.char_indices().last()? {
        (at, 'k' | 'K') => (&value[..at], 10),
        (at, 'm' | 'M') => (&value[..at], 20),
        (at, 'g' | 'G') => (&value[..at], 30),
        _ => (value, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(component (core module (func (export "f"))))"#;

    fn compiled(engine: &Engine) -> (Vec<u8>, Code) {
        let source = wat::parse_str(WAT).unwrap();
        let code = Code::Component(wasmtime::component::Component::new(engine, &source).unwrap());
        (source, code)
    }

    /// A cache in a new directory, an engine, a component compiled by it, and the path its
    /// entry would have.
    fn fixture() -> (tempfile::TempDir, Cache, Engine, Vec<u8>, Code, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path()).unwrap();
        let engine = Engine::default();
        let (source, code) = compiled(&engine);
        let entry = dir
            .path()
            .join(cache.entry(&engine, WasmKind::Component, &source));
        (dir, cache, engine, source, code, entry)
    }

    #[test]
    fn an_entry_is_found_again_and_only_for_the_same_bytes_and_engine() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path()).unwrap();
        let engine = Engine::default();
        let (source, code) = compiled(&engine);
        assert!(cache.get(&engine, WasmKind::Component, &source).is_none());
        cache.put(&engine, WasmKind::Component, &source, &code);
        assert!(cache.get(&engine, WasmKind::Component, &source).is_some());
        assert_eq!(cache.usage().unwrap().entries, 1);

        let mut other = source.clone();
        other.push(0);
        assert!(cache.get(&engine, WasmKind::Component, &other).is_none());
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let fuel = Engine::new(&config).unwrap();
        assert!(cache.get(&fuel, WasmKind::Component, &source).is_none());
        assert_eq!(cache.clear().unwrap().entries, 1);
        assert_eq!(cache.usage().unwrap(), Usage::default());
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("500m"), Some(500 << 20));
        assert_eq!(parse_size("5G"), Some(5 << 30));
        assert_eq!(parse_size("five"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999G"), None);
    }

    #[test]
    fn past_its_bound_the_cache_evicts_the_entries_used_longest_ago() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path()).unwrap();
        let engine = Engine::default();
        let (source, code) = compiled(&engine);
        let mut sources = Vec::new();
        // Three entries of the same size, used an hour, two hours and three hours ago.
        for age in 1..=3u64 {
            let mut bytes = source.clone();
            // A custom section makes each a different component.
            bytes.extend_from_slice(&[0, 2, 1, b'a' + age as u8]);
            cache.put(&engine, WasmKind::Component, &bytes, &code);
            let entry = dir
                .path()
                .join(cache.entry(&engine, WasmKind::Component, &bytes));
            let file = std::fs::File::options().write(true).open(&entry).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(3600 * age))
                .unwrap();
            sources.push(bytes);
        }
        let one = cache.usage().unwrap().bytes / 3;
        // Room for three; the fourth write evicts the two used longest ago (down to 3/4).
        let cache = cache.with_max_bytes(3 * one + one / 2);
        cache.put(&engine, WasmKind::Component, &source, &code);
        let left: Vec<bool> = sources
            .iter()
            .map(|s| {
                dir.path()
                    .join(cache.entry(&engine, WasmKind::Component, s))
                    .exists()
            })
            .collect();
        assert_eq!(left, [true, false, false]);
        assert!(
            dir.path()
                .join(cache.entry(&engine, WasmKind::Component, &source))
                .exists()
        );
        // A hit marks an entry as used now.
        assert!(
            cache
                .get(&engine, WasmKind::Component, &sources[0])
                .is_some()
        );
        let used = std::fs::metadata(dir.path().join(cache.entry(
            &engine,
            WasmKind::Component,
            &sources[0],
        )))
        .unwrap()
        .modified()
        .unwrap();
        assert!(used > SystemTime::now() - Duration::from_secs(60));
    }

    #[test]
    fn truncated_and_corrupted_entries_are_refused_and_removed() {
        let (_dir, cache, engine, source, code, entry) = fixture();
        for damage in [
            |b: &mut Vec<u8>| b.truncate(b.len() - 1),
            |b: &mut Vec<u8>| b.truncate(10),
            |b: &mut Vec<u8>| *b.last_mut().unwrap() ^= 1,
            |b: &mut Vec<u8>| b[100] ^= 0x80,
            |b: &mut Vec<u8>| b[0] = b'X',
            |b: &mut Vec<u8>| b.extend_from_slice(b"more"),
        ] {
            cache.put(&engine, WasmKind::Component, &source, &code);
            let mut bytes = std::fs::read(&entry).unwrap();
            damage(&mut bytes);
            std::fs::write(&entry, &bytes).unwrap();
            assert!(cache.get(&engine, WasmKind::Component, &source).is_none());
            assert!(!entry.exists(), "a bad entry is removed");
        }
    }

    #[test]
    fn an_entry_that_is_not_a_regular_file_of_the_users_is_removed_not_used() {
        let (_dir, cache, engine, source, code, entry) = fixture();
        // A sound entry elsewhere, linked in: the link is not followed.
        let elsewhere = tempfile::tempdir().unwrap();
        let other = Cache::at(elsewhere.path()).unwrap();
        other.put(&engine, WasmKind::Component, &source, &code);
        let target = elsewhere
            .path()
            .join(other.entry(&engine, WasmKind::Component, &source));
        std::os::unix::fs::symlink(&target, &entry).unwrap();
        assert!(cache.get(&engine, WasmKind::Component, &source).is_none());
        assert!(
            !entry.exists() && target.exists(),
            "the link, not its target, is removed"
        );
        // A FIFO neither blocks nor is loaded.
        let made = std::process::Command::new("mkfifo").arg(&entry).status();
        assert!(made.unwrap().success());
        assert!(cache.get(&engine, WasmKind::Component, &source).is_none());
        assert!(!entry.exists());
    }

    #[test]
    fn the_file_checked_is_the_file_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path()).unwrap();
        let engine = Engine::default();
        let (source, code) = compiled(&engine);
        cache.put(&engine, WasmKind::Component, &source, &code);
        let name = cache.entry(&engine, WasmKind::Component, &source);
        let file = cache.dir.open_file(&name).unwrap().unwrap();
        // Something else renamed over the entry once it was opened: what loads is what was
        // opened (and checked), not what the name holds by then.
        std::fs::write(dir.path().join("other"), b"not an artifact").unwrap();
        std::fs::rename(dir.path().join("other"), dir.path().join(&name)).unwrap();
        assert!(entry::load(&engine, WasmKind::Component, &name, file).is_ok());
    }

    #[test]
    fn an_entry_renamed_to_another_key_fails_its_check() {
        let (dir, cache, engine, source, code, entry) = fixture();
        cache.put(&engine, WasmKind::Component, &source, &code);
        // Another component's key, holding this one's sound entry.
        let other = wat::parse_str("(component (core module))").unwrap();
        let renamed = dir
            .path()
            .join(cache.entry(&engine, WasmKind::Component, &other));
        std::fs::rename(&entry, &renamed).unwrap();
        assert!(cache.get(&engine, WasmKind::Component, &other).is_none());
        assert!(
            !renamed.exists(),
            "the entry that failed its check is removed"
        );
    }
}
