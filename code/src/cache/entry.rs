//! A cache entry: wasmtime's artifact followed by a trailer (the BLAKE3 of its key and the
//! artifact, its length, a magic string), named by the key of what it was compiled from;
//! checked before it is loaded. The name (the key) is in what the trailer checks, so that an entry is
//! bound to its name: one copied or renamed to another component's key fails its check
//! instead of being mapped as that component's code.

use crate::private_dir::PrivateDir;
use crate::{Code, WasmKind, deserialize, deserialize_file};
use anyhow::{Result, bail};
use std::fs::File;
use std::hash::{Hash as _, Hasher};
use std::io::{Read, Seek, Write as _};
use wasmtime::Engine;

/// The last bytes of every entry; the trailing digit is the entry format's version.
const MAGIC: &[u8; 16] = b"worldhost-cache3";
/// The BLAKE3 of the key and the artifact, the artifact's length, and MAGIC.
const TRAILER_LEN: usize = 32 + 8 + MAGIC.len();
/// The key of `source` (the file's binary) compiled as `kind` by `engine`: BLAKE3 of the bytes,
/// worldhost's version and the engine's compatibility hash (its settings and wasmtime's
/// version).
pub(super) fn key(engine: &Engine, kind: WasmKind, source: &[u8]) -> String {
    let mut key = Blake3Hasher(blake3::Hasher::new());
    key.0.update(MAGIC);
    key.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    engine.precompile_compatibility_hash().hash(&mut key);
    key.0.update(&[kind as u8]);
    key.0.update(&(source.len() as u64).to_le_bytes());
    key.0.update(source);
    key.0.finalize().to_hex().to_string()
}

/// The hasher an entry's checksum starts from: its name (its key) first.
fn checksum(key: &str) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key.as_bytes());
    hasher
}

/// Writes the entry of `artifact`, under `key`, to `file`.
pub(super) fn write(file: &mut File, key: &str, artifact: &[u8]) -> std::io::Result<()> {
    file.write_all(artifact)?;
    file.write_all(checksum(key).update(artifact).finalize().as_bytes())?;
    file.write_all(&(artifact.len() as u64).to_le_bytes())?;
    file.write_all(MAGIC)
}

/// Checks the open entry `file`, named `key`, and loads its code into `engine`, from the same
/// open file.
pub(super) fn load(engine: &Engine, kind: WasmKind, key: &str, mut file: File) -> Result<Code> {
    check_entry(&mut file, key)?;
    // Marks the entry as used, for eviction; a cache on a file system that refuses it still
    // works, only evicts by age of writing.
    let _ = file.set_modified(std::time::SystemTime::now());
    match PrivateDir::path_of_open(&file) {
        // The path names the open file, whatever the entry's name points to by now.
        Some(path) => deserialize_file(engine, kind, &path),
        // No such path on this system: the checked bytes, read from the open file.
        None => {
            let mut bytes = Vec::new();
            file.rewind()?;
            file.read_to_end(&mut bytes)?;
            check_entry(&mut std::io::Cursor::new(&bytes), key)?;
            deserialize(engine, kind, &bytes)
        }
    }
}

/// The bytes kept in the open entry `file`, named `key` (a composition), checked.
pub(super) fn read(key: &str, mut file: File) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    check_entry(&mut std::io::Cursor::new(&bytes), key)?;
    bytes.truncate(bytes.len() - TRAILER_LEN);
    let _ = file.set_modified(std::time::SystemTime::now());
    Ok(bytes)
}

/// Checks an entry named `key`: an error if its trailer, length or hash do not check out (an
/// entry of another key fails the hash). Reads it in blocks, hashing as it goes, without
/// holding it whole.
fn check_entry(file: &mut (impl Read + Seek), key: &str) -> Result<()> {
    use std::io::SeekFrom;
    let size = file.seek(SeekFrom::End(0))?;
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
    let mut hasher = checksum(key);
    let mut block = vec![0; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = block.len().min(left as usize);
        file.read_exact(&mut block[..n])?;
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    if hasher.finalize().as_bytes() != hash {
        bail!("its code does not match its checksum: corrupted, or another entry's");
    }
    Ok(())
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
