//! The settings every handler shares, once resolved: what the guest is granted (directories,
//! environment, network, wasi:http, wasi:config, wasi:keyvalue), the limits it runs under, and
//! the engine configuration of wasmtime's option groups. The default grants nothing. How they
//! are spelled on the command line (`--dir`, `--env`, `-O`, `-C`, `-D`, `-W`, `-S`) is the
//! cli's (the containerd shim passes a container's grants to the binary as flags). Knows no
//! particular world.

use crate::outgoing::OutgoingPolicy;
pub use crate::preopen::DirGrant;
use crate::preopen::Preopen;
use crate::world::WasmKind;
use anyhow::{Context as _, Result, bail};
use clap::builder::TypedValueParser as _;
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::Config;
pub use wasmtime_cli_flags::OptimizeOptions;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use worldhost_code::compose::Pieces;

/// The shared settings after they were checked against the host: what the guest is granted
/// and the limits it runs under.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Directories, open ([`crate::preopen::confine`]).
    pub dirs: Vec<Preopen>,
    /// Environment variables, resolved (inherited names looked up).
    pub env: Vec<(String, String)>,
    /// Which of the host's stdin, stdout and stderr the guest gets (all three by default, as
    /// in wasmtime; `-S inherit-stdout=n` takes one away).
    pub stdio: Stdio,
    /// The guest's initial working directory (`-S cwd=DIR`).
    pub cwd: Option<String>,
    /// Sockets may reach any address.
    pub inherit_network: bool,
    /// DNS lookups are allowed.
    pub allow_ip_name_lookup: bool,
    /// TCP sockets may be created.
    pub tcp: bool,
    /// UDP sockets may be created.
    pub udp: bool,
    /// wasi:sockets' `network-error-code` (`-S network-error-code`).
    pub network_error_code: bool,
    /// The most bytes one call to wasi:random may ask for (`-S max-random-size`).
    pub max_random_size: Option<u64>,
    /// wasi:http for guests that import it (`-S http`; a server always has it), and where
    /// their requests may go.
    pub http: Http,
    /// wasi:config's variables, when `-S config` links it (`-S config-var=K=V`).
    pub config_vars: Option<Vec<(String, String)>>,
    /// wasi:keyvalue's in-memory data, when `-S keyvalue` links it
    /// (`-S keyvalue-in-memory-data=K=V`).
    pub keyvalue: Option<Vec<(String, String)>>,
    /// The limits the guest runs under.
    pub limits: Limits,
    /// Imports nothing provides become functions that trap when called.
    pub unknown_imports_trap: bool,
    /// A core module's imports nothing provides become functions that return zeros
    /// (`-W unknown-imports-default`).
    pub unknown_imports_default: bool,
    /// A core module may export what WASI does not know (`-W unknown-exports-allow`).
    pub unknown_exports_allow: Option<bool>,
    /// A core module may import `wasi_unstable` (WASI preview 0; on unless `-S preview0=n`).
    pub preview0: bool,
    /// Whether each component's engine gets wasmtime's concurrency support only if the
    /// component uses it: true unless the command line set `-W concurrency-support` or a
    /// component-model async key itself.
    pub concurrency_auto: bool,
    /// WASI 0.3 is linked for guests called asynchronously (on unless `-S p3=n`, as in
    /// wasmtime 48).
    pub p3: bool,
    /// Where to write a core dump when the guest traps (`-D coredump=PATH`).
    pub coredump: Option<PathBuf>,
    /// The engine configuration of wasmtime's option groups (`-O`, `-C`, `-D`, `-W`, and
    /// `--config FILE`), as wasmtime-cli-flags builds it: every key means what it means to
    /// `wasmtime run`. The handlers' engines are made from it (`engine::base_config`).
    pub engine: Config,
    /// The `-O` keys as given, for a handler that makes an instance pool of its own (a
    /// server sizes its pool's totals itself, and applies the user's other pooling keys).
    pub optimize: OptimizeOptions,
    /// The keys given that not every handler can apply, with why, for the check once the
    /// handler is known ([`Settings::check_for`]).
    pub only_for: Vec<OnlyFor>,
    /// Use the compilation cache.
    pub cache: bool,
    /// A file named on the command line may be a precompiled artifact (machine code).
    pub allow_precompiled: bool,
    /// The guest's argv[0], when `--argv0` gives one.
    pub argv0: Option<String>,
    /// The components composed with the one run (`--middleware`, `--plug`).
    pub pieces: Pieces,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dirs: Vec::new(),
            env: Vec::new(),
            stdio: Stdio::default(),
            cwd: None,
            inherit_network: false,
            allow_ip_name_lookup: false,
            tcp: true,
            udp: true,
            network_error_code: false,
            max_random_size: None,
            http: Http::default(),
            config_vars: None,
            keyvalue: None,
            limits: Limits::default(),
            unknown_imports_trap: false,
            unknown_imports_default: false,
            unknown_exports_allow: None,
            preview0: true,
            p3: true,
            concurrency_auto: true,
            coredump: None,
            engine: Config::new(),
            optimize: OptimizeOptions::default(),
            only_for: Vec::new(),
            cache: true,
            allow_precompiled: false,
            argv0: None,
            pieces: Pieces::default(),
        }
    }
}

/// Which of the host's standard streams the guest inherits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stdio {
    /// stdin.
    pub stdin: bool,
    /// stdout.
    pub stdout: bool,
    /// stderr.
    pub stderr: bool,
}

impl Default for Stdio {
    fn default() -> Self {
        Stdio {
            stdin: true,
            stdout: true,
            stderr: true,
        }
    }
}

/// wasi:http for a guest.
#[derive(Debug, Clone, Default)]
pub struct Http {
    /// Linked for guests that import it (`-S http`).
    pub enabled: bool,
    /// Where outgoing requests may go (`--allow-outgoing`); nowhere by default.
    pub outgoing: OutgoingPolicy,
    /// The most bytes of a `fields` resource (`-S max-http-fields-size`).
    pub max_fields_size: Option<usize>,
}

/// A key given on the command line that applies only to some kinds of code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlyFor {
    /// The key as written: `-W unknown-imports-default`.
    pub key: String,
    /// What it applies to.
    pub kind: WasmKind,
}

/// Resource limits from `-W` (and `-S` for those of the component model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes a linear memory may grow to.
    pub max_memory_size: Option<usize>,
    /// The most elements a table may grow to.
    pub max_table_elements: Option<usize>,
    /// The most instances a store may hold.
    pub max_instances: Option<usize>,
    /// The most tables a store may hold.
    pub max_tables: Option<usize>,
    /// The most linear memories a store may hold.
    pub max_memories: Option<usize>,
    /// A memory or table growth refused is a trap, not -1 (`-W trap-on-grow-failure`).
    pub trap_on_grow_failure: bool,
    /// Wall-clock time before the guest is interrupted.
    pub timeout: Option<Duration>,
    /// Units of fuel before the guest traps.
    pub fuel: Option<u64>,
    /// The most resources the guest may hold at once (`-S max-resources`).
    pub max_resources: Option<usize>,
    /// Bytes the guest may hand the host in one call (`-S hostcall-fuel`).
    pub hostcall_fuel: Option<usize>,
    /// The most component-model handles alive at once (`-S max-component-handles`).
    pub max_component_handles: Option<usize>,
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
    /// arguments.
    pub fn wasi_builder(&self, argv: &[String]) -> Result<WasiCtxBuilder> {
        let mut builder = WasiCtxBuilder::new();
        builder.args(argv).envs(&self.env);
        if self.stdio.stdin {
            builder.inherit_stdin();
        }
        if self.stdio.stdout {
            builder.inherit_stdout();
        }
        if self.stdio.stderr {
            builder.inherit_stderr();
        }
        for dir in &self.dirs {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(dir.path(), &dir.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("cannot open `--dir {}`", dir.host.display()))?;
        }
        if let Some(cwd) = &self.cwd {
            builder.initial_cwd(cwd);
        }
        if self.inherit_network {
            builder.inherit_network();
        }
        builder
            .allow_ip_name_lookup(self.allow_ip_name_lookup)
            .allow_tcp(self.tcp)
            .allow_udp(self.udp);
        if let Some(max) = self.max_random_size {
            builder.max_random_size(max);
        }
        Ok(builder)
    }

    /// Refuses a key given for other code than `kind`, naming it, the handler and why: a key
    /// is never dropped without a word.
    pub fn check_for(&self, handler: &str, kind: WasmKind) -> Result<()> {
        if let Some(key) = self.only_for.iter().find(|k| k.kind != kind) {
            let (what, other) = match key.kind {
                WasmKind::CoreModule => ("core modules", "a component"),
                WasmKind::Component => ("components", "a core module"),
            };
            bail!(
                "`{}` applies to {what} only, and the {handler} handler runs {other}; leave it out",
                key.key
            );
        }
        Ok(())
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
