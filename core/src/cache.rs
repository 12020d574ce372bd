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
//!
//! - **Size**: at most 5 GiB (wasmtime's own default), or `WORLDHOST_CACHE_MAX_SIZE` (bytes,
//!   or with a K, M or G suffix). A hit marks its entry as used (its modification time); when a
//!   write takes the cache past its bound, the entries used longest ago are removed until it is
//!   back under three quarters of it.
//!
//! A cache that cannot be read or written costs speed, never correctness: the component is
//! compiled as if there were no cache, and a warning says why.

use crate::load::{Code, WasmKind};
use anyhow::{Context as _, Result, bail};
use std::hash::{Hash as _, Hasher};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The last bytes of every entry; the trailing digit is the entry format's version.
const MAGIC: &[u8; 16] = b"worldhost-cache2";
/// The BLAKE3 of the artifact, its length, and MAGIC.
const TRAILER_LEN: usize = 32 + 8 + MAGIC.len();
/// The file name suffix of an entry.
const SUFFIX: &str = "whc";

/// The default bound on the cache's size.
const DEFAULT_MAX_BYTES: u64 = 5 << 30;
/// A partial write older than this was left by a process that died.
const ABANDONED: std::time::Duration = std::time::Duration::from_secs(3600);

/// The cache directory: a handle on it, and what it holds.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

/// A file in the cache directory: an entry, or a partial write.
struct CacheFile {
    path: PathBuf,
    bytes: u64,
    used: std::time::SystemTime,
    partial: bool,
}

/// How many entries the cache holds and their total size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Entries.
    pub entries: u64,
    /// Bytes.
    pub bytes: u64,
}

impl Cache {
    /// The cache in its usual place (see the module's documentation); not created yet.
    pub fn locate() -> Result<Cache> {
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
        Ok(Cache::at(base.join("worldhost")).with_max_bytes(max_bytes))
    }

    /// The cache in `dir`, with the default bound on its size.
    pub fn at(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
        }
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
        &self.dir
    }

    /// The entry for `source` (the file's binary) compiled as `kind` by `engine`.
    fn entry(&self, engine: &Engine, kind: WasmKind, source: &[u8]) -> PathBuf {
        let mut key = Blake3Hasher(blake3::Hasher::new());
        key.0.update(MAGIC);
        key.0.update(env!("CARGO_PKG_VERSION").as_bytes());
        engine.precompile_compatibility_hash().hash(&mut key);
        key.0.update(&[kind as u8]);
        key.0.update(&(source.len() as u64).to_le_bytes());
        key.0.update(source);
        let name = format!("{}.{SUFFIX}", key.0.finalize().to_hex());
        self.dir.join(name)
    }

    /// The compiled code for `source`, if the cache holds a sound entry for it. An entry that
    /// fails its check is removed (with a warning) so that the caller compiles afresh.
    pub fn get(&self, engine: &Engine, kind: WasmKind, source: &[u8]) -> Option<Code> {
        let path = self.entry(engine, kind, source);
        let checked = match check_entry(&path) {
            Ok(true) => deserialize_file(engine, kind, &path),
            Ok(false) => return None,
            Err(e) => Err(e),
        };
        match checked {
            Ok(code) => {
                tracing::debug!(entry = %path.display(), "cache hit");
                Some(code)
            }
            Err(e) => {
                tracing::warn!(
                    "the cache entry `{}` is not sound ({e:#}); removing it and compiling again",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `code`, compiled from `source`, for the next run. Failing to is a warning only.
    pub fn put(&self, engine: &Engine, kind: WasmKind, source: &[u8], code: &Code) {
        let path = self.entry(engine, kind, source);
        let written = self.write(&path, code).and_then(|()| self.trim(&path));
        if let Err(e) = written {
            tracing::warn!(
                "cannot write to the compilation cache in `{}`: {e:#} (the next run compiles \
                 again; `--no-cache` silences this)",
                self.dir.display()
            );
        }
    }

    fn write(&self, path: &Path, code: &Code) -> Result<()> {
        let artifact = code.serialize()?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create `{}`", self.dir.display()))?;
        let mut file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&self.dir)?;
        file.write_all(&artifact)?;
        file.write_all(blake3::hash(&artifact).as_bytes())?;
        file.write_all(&(artifact.len() as u64).to_le_bytes())?;
        file.write_all(MAGIC)?;
        file.persist(path)?;
        tracing::debug!(entry = %path.display(), bytes = artifact.len(), "cached");
        Ok(())
    }

    /// Brings the cache back under its bound after `written` was added: removes the entries
    /// used longest ago (never `written`), and partial writes abandoned for an hour.
    fn trim(&self, written: &Path) -> Result<()> {
        let mut files = self.files()?;
        let now = std::time::SystemTime::now();
        let mut total: u64 = files.iter().map(|f| f.bytes).sum();
        for file in files.iter().filter(|f| f.partial) {
            if now.duration_since(file.used).unwrap_or_default() > ABANDONED
                && std::fs::remove_file(&file.path).is_ok()
            {
                total -= file.bytes;
            }
        }
        if total <= self.max_bytes {
            return Ok(());
        }
        files.retain(|f| !f.partial && f.path != written);
        files.sort_by_key(|f| f.used);
        let target = self.max_bytes / 4 * 3;
        for file in files {
            if total <= target {
                break;
            }
            match std::fs::remove_file(&file.path) {
                Ok(()) => {
                    tracing::debug!(entry = %file.path.display(), "evicted");
                    total -= file.bytes;
                }
                // Another process evicted it first.
                Err(e) if e.kind() == ErrorKind::NotFound => total -= file.bytes,
                Err(e) => bail!("cannot remove `{}`: {e}", file.path.display()),
            }
        }
        Ok(())
    }

    /// What the cache holds now (nothing, if it does not exist).
    pub fn usage(&self) -> Result<Usage> {
        let mut usage = Usage::default();
        for file in self.files()? {
            usage.entries += 1;
            usage.bytes += file.bytes;
        }
        Ok(usage)
    }

    /// Removes every entry (and leftovers of interrupted writes); returns what was removed.
    pub fn clear(&self) -> Result<Usage> {
        let mut removed = Usage::default();
        for file in self.files()? {
            match std::fs::remove_file(&file.path) {
                Ok(()) => {
                    removed.entries += 1;
                    removed.bytes += file.bytes;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => bail!("cannot remove `{}`: {e}", file.path.display()),
            }
        }
        Ok(removed)
    }

    /// The entries and partial writes in the directory.
    fn files(&self) -> Result<Vec<CacheFile>> {
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => bail!("cannot read `{}`: {e}", self.dir.display()),
        };
        let mut entries = Vec::new();
        for item in listing {
            let item = item?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            let partial = name.starts_with(".partial-");
            if !partial && !name.ends_with(&format!(".{SUFFIX}")) {
                continue;
            }
            // A file removed meanwhile (by another process) is simply not listed.
            let Ok(metadata) = item.metadata() else {
                continue;
            };
            entries.push(CacheFile {
                path: item.path(),
                bytes: metadata.len(),
                used: metadata.modified()?,
                partial,
            });
        }
        Ok(entries)
    }
}

/// Checks the entry at `path`: `false` if there is none; an error if its trailer, length or hash
/// do not check out. Reads the file in blocks, hashing as it goes, without holding it whole.
fn check_entry(path: &Path) -> Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let size = file.metadata()?.len();
    let Some(len) = size.checked_sub(TRAILER_LEN as u64) else {
        bail!("{size} bytes, shorter than its trailer: truncated");
    };
    let mut trailer = [0; TRAILER_LEN];
    file.seek(SeekFrom::Start(len))?;
    file.read_exact(&mut trailer)?;
    let (hash, rest) = trailer.split_at(32);
    let (promised, magic) = rest.split_at(8);
    if magic != MAGIC {
        bail!("it does not end with worldhost's trailer: truncated or not an entry");
    }
    let promised = u64::from_le_bytes(promised.try_into().expect("8 bytes"));
    if promised != len {
        bail!("its trailer promises {promised} bytes of code, and {len} precede it");
    }
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = blake3::Hasher::new();
    let mut block = vec![0; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = block.len().min(left as usize);
        file.read_exact(&mut block[..n])?;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    if hasher.finalize().as_bytes() != hash {
        bail!("its code does not match its checksum: corrupted");
    }
    // Marks the entry as used, for eviction; a cache on a file system that refuses it still
    // works, only evicts by age of writing.
    let _ = file.set_modified(std::time::SystemTime::now());
    Ok(true)
}

// Deserializing is unsafe in wasmtime because an artifact's machine code is trusted as is.
// worldhost deserializes three kinds of artifact only: a cache entry it wrote itself, whose
// checksum was just verified ([`check_entry`]); a precompiled file the user named on the
// command line, trusted as a native executable would be (the README says so); and code it
// compiled itself in this process ([`crate::Loaded::for_engine`]). wasmtime itself checks that
// an artifact was made by this version of wasmtime for a compatible engine configuration.

/// Loads serialized code, held in memory, into `engine`.
#[allow(unsafe_code)]
pub(crate) fn deserialize(engine: &Engine, kind: WasmKind, artifact: &[u8]) -> Result<Code> {
    // SAFETY: see above.
    Ok(match kind {
        WasmKind::Component => {
            Code::Component(unsafe { Component::deserialize(engine, artifact) }?)
        }
        WasmKind::CoreModule => Code::Module(unsafe { Module::deserialize(engine, artifact) }?),
    })
}

/// Loads the serialized code in the file at `path` into `engine`, memory-mapped (wasmtime
/// ignores what follows the artifact, such as a cache entry's trailer).
#[allow(unsafe_code)]
pub(crate) fn deserialize_file(engine: &Engine, kind: WasmKind, path: &Path) -> Result<Code> {
    // SAFETY: see above.
    Ok(match kind {
        WasmKind::Component => {
            Code::Component(unsafe { Component::deserialize_file(engine, path) }?)
        }
        WasmKind::CoreModule => Code::Module(unsafe { Module::deserialize_file(engine, path) }?),
    })
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

/// Feeds `std::hash::Hash` values into BLAKE3, for wasmtime's compatibility hash.
struct Blake3Hasher(blake3::Hasher);

impl Hasher for Blake3Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only `write` is used; the key is the BLAKE3 of everything written")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(component (core module (func (export "f"))))"#;

    fn compiled(engine: &Engine) -> (Vec<u8>, Code) {
        let source = wat::parse_str(WAT).unwrap();
        let code = Code::Component(Component::new(engine, &source).unwrap());
        (source, code)
    }

    #[test]
    fn an_entry_is_found_again_and_only_for_the_same_bytes_and_engine() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
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
        let cache = Cache::at(dir.path());
        let engine = Engine::default();
        let (source, code) = compiled(&engine);
        let mut sources = Vec::new();
        // Three entries of the same size, used an hour, two hours and three hours ago.
        for age in 1..=3u64 {
            let mut bytes = source.clone();
            // A custom section makes each a different component.
            bytes.extend_from_slice(&[0, 2, 1, b'a' + age as u8]);
            cache.put(&engine, WasmKind::Component, &bytes, &code);
            let entry = cache.entry(&engine, WasmKind::Component, &bytes);
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
            .map(|s| cache.entry(&engine, WasmKind::Component, s).exists())
            .collect();
        assert_eq!(left, [true, false, false]);
        assert!(cache.entry(&engine, WasmKind::Component, &source).exists());
        // A hit marks an entry as used now.
        assert!(
            cache
                .get(&engine, WasmKind::Component, &sources[0])
                .is_some()
        );
        let used = std::fs::metadata(cache.entry(&engine, WasmKind::Component, &sources[0]))
            .unwrap()
            .modified()
            .unwrap();
        assert!(used > SystemTime::now() - Duration::from_secs(60));
    }

    #[test]
    fn truncated_and_corrupted_entries_are_refused_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path());
        let engine = Engine::default();
        let (source, code) = compiled(&engine);
        let entry = cache.entry(&engine, WasmKind::Component, &source);
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
}
