//! The settings every handler shares, once resolved: what the guest is granted (directories,
//! environment, network) and the limits it runs under. The default grants nothing. How they
//! are spelled on the command line (`--dir`, `--env`, `-S`, `-W`) is the cli's; a containerd
//! shim makes them from a container's spec. Knows no particular world.

use anyhow::{Context as _, Result};
use clap::builder::TypedValueParser as _;
use std::path::PathBuf;
use std::time::Duration;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A `--dir` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    /// The host directory.
    pub host: PathBuf,
    /// The path the guest sees it at.
    pub guest: String,
    /// Read-only (`::ro`) or read-write.
    pub read_only: bool,
}

/// The shared settings after they were checked against the host: what the guest is granted
/// and the limits it runs under.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Directories, checked to exist.
    pub dirs: Vec<DirGrant>,
    /// Environment variables, resolved (inherited names looked up).
    pub env: Vec<(String, String)>,
    /// Sockets may reach any address.
    pub inherit_network: bool,
    /// DNS lookups are allowed.
    pub allow_ip_name_lookup: bool,
    /// TCP sockets may be created.
    pub tcp: bool,
    /// UDP sockets may be created.
    pub udp: bool,
    /// The limits the guest runs under.
    pub limits: Limits,
    /// Imports nothing provides become functions that trap when called.
    pub unknown_imports_trap: bool,
    /// Use the compilation cache.
    pub cache: bool,
    /// A file named on the command line may be a precompiled artifact (machine code).
    pub allow_precompiled: bool,
    /// The guest's argv[0], when `--argv0` gives one.
    pub argv0: Option<String>,
}

/// Resource limits from `-W`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes a linear memory may grow to.
    pub max_memory_size: Option<usize>,
    /// Wall-clock time before the guest is interrupted.
    pub timeout: Option<Duration>,
    /// Units of fuel before the guest traps.
    pub fuel: Option<u64>,
}

impl Settings {
    /// The guest's argv: `--argv0` or else `file_name` (the component's file name without its
    /// directories, as in wasmtime: no host path leaks into the guest), then `args`.
    pub fn argv(&self, file_name: &str, args: &[String]) -> Vec<String> {
        let argv0 = self.argv0.as_deref().unwrap_or(file_name);
        std::iter::once(argv0)
            .chain(args.iter().map(String::as_str))
            .map(String::from)
            .collect()
    }

    /// A WASI context builder that grants exactly these settings, with `argv` as the guest's
    /// arguments and stdio inherited.
    pub fn wasi_builder(&self, argv: &[String]) -> Result<WasiCtxBuilder> {
        let mut builder = WasiCtxBuilder::new();
        builder.inherit_stdio().args(argv).envs(&self.env);
        for dir in &self.dirs {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot open `--dir {}`", dir.host.display()))?;
        }
        if self.inherit_network {
            builder.inherit_network();
        }
        builder
            .allow_ip_name_lookup(self.allow_ip_name_lookup)
            .allow_tcp(self.tcp)
            .allow_udp(self.udp);
        Ok(builder)
    }
}

/// The longest duration a flag takes; a longer one means the same: never, in practice.
pub const LONGEST_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration as wasmtime does: `500ms`, `2s`, `1m`, `1h`; a bare number is seconds.
/// Every duration flag is parsed here, and one longer than [`LONGEST_DURATION`] (100 years) is
/// taken as that: a deadline is the clock's time plus the duration, and a sum past what the
/// clock holds would panic (`-W timeout=18446744073709551615`).
pub fn parse_duration(val: &str) -> Result<Duration, String> {
    let parsed = match val.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(val).map_err(|e| {
            format!("`{val}` is not a duration ({e}); write e.g. `500ms`, `2s`, `1m`")
        })?,
    };
    Ok(parsed.min(LONGEST_DURATION))
}

/// A clap value parser for [`parse_duration`], for handlers with duration flags of their own.
pub fn duration_parser() -> impl clap::builder::TypedValueParser<Value = Duration> {
    clap::builder::StringValueParser::new().try_map(|s| parse_duration(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_wasmtime_parses_them_and_are_bounded() {
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("18446744073709551615").unwrap(),
            LONGEST_DURATION
        );
        assert_eq!(parse_duration("1000years").unwrap(), LONGEST_DURATION);
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let settings = Settings::default();
        assert!(settings.dirs.is_empty() && settings.env.is_empty());
        assert!(!settings.inherit_network && !settings.allow_ip_name_lookup);
    }
}
