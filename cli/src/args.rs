//! The shared flags as the command line spells them, as wasmtime's CLI does: wasmtime's own
//! option groups (`-O`, `-C`, `-D`, `-W`, `-S`, `--config FILE`), parsed by wasmtime-cli-flags
//! so that every key means what it means to `wasmtime run`, and `--dir`, `--env`, `--argv0`,
//! `--profile`, `--allow-outgoing`, `--allow-precompiled`; checked against the host and
//! resolved into core's [`Settings`] before anything is compiled. The default grants the
//! guest nothing.

use crate::refuse::{refuse_breaking_values, refuse_inapplicable, refuse_unlinked_data};
use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use wasmtime::ProfilingStrategy;
use wasmtime_cli_flags::CommonOptions;
use worldhost_core::Settings;
use worldhost_core::WasmKind;
use worldhost_core::code::kind::{Reading, read_file};
use worldhost_core::code::private_dir::check_replaceable;
use worldhost_core::outgoing::OutgoingPolicy;
use worldhost_core::settings::{DirGrant, Http, Limits, OnlyFor, Stdio};

/// The shared flags, as clap parses them; [`SharedArgs::resolve`] checks them against the host.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Capabilities and limits (shared by every handler)")]
pub struct SharedArgs {
    /// wasmtime's option groups: `-O`, `-C`, `-D`, `-W`, `-S` (`-W help` lists a group's
    /// keys) and `--config FILE`.
    #[command(flatten)]
    pub wasmtime: CommonOptions,

    /// Grant the guest a host directory: `HOST[::GUEST][::ro]`
    ///
    /// The directory HOST appears in the guest as GUEST (default: the same path). It is
    /// read-write unless `::ro` is added (`--dir data::/data::ro`), which wasmtime has no
    /// form for. May be repeated.
    #[arg(long = "dir", value_name = "HOST[::GUEST][::ro]", value_parser = parse_dir)]
    pub dirs: Vec<DirGrant>,

    /// Give the guest an environment variable: `NAME=VAL`, or `NAME` for the host's value
    ///
    /// A bare NAME that the host does not set is skipped, as in wasmtime. May be repeated.
    #[arg(long = "env", value_name = "NAME[=VAL]", value_parser = parse_env)]
    pub envs: Vec<EnvGrant>,

    /// Let the guest send HTTP requests to HOST (`example.com`, `127.0.0.1:8081`, `api.test:*`)
    ///
    /// Outgoing requests (a server's guest, or a command's with `-S http`) are denied unless
    /// their host and port are listed: `HOST` allows the scheme's port (80 for http, 443 for
    /// https), `HOST:PORT` that port, `HOST:*` any port, and `*` anything. An address with a
    /// user name (`user@host`) is always denied. May be repeated. wasmtime allows every host
    /// and has no such list.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub allow_outgoing: Vec<String>,

    /// The guest's argv[0] (default: the file name of the component, without its directories)
    #[arg(long, value_name = "NAME")]
    pub argv0: Option<String>,

    /// Profile the guest with `perf`: `perfmap` writes /tmp/perf-PID.map, as wasmtime does
    ///
    /// wasmtime's `jitdump`, `vtune` and `guest` need its `profiling` feature (Intel's ittapi,
    /// a C++ library, and a sampler), which worldhost is built without.
    #[arg(long, value_name = "STRATEGY", value_parser = parse_profile)]
    pub profile: Option<Profile>,

    /// Do not use the compilation cache (on by default, as in wasmtime); `-C cache=n` too
    #[arg(long)]
    pub no_cache: bool,

    /// Run a precompiled artifact (`worldhost compile`, `wasmtime compile`): machine code
    ///
    /// An artifact is native code that runs unchecked, with worldhost's own rights, as a
    /// native program would; without this flag a file that holds one is refused, whatever its
    /// name (as in wasmtime). Give it only for artifacts you made or trust.
    #[arg(long)]
    pub allow_precompiled: bool,

    /// `--middleware` and `--plug`.
    #[command(flatten)]
    pub compose: compose::ComposeArgs,
}

impl Default for SharedArgs {
    fn default() -> Self {
        SharedArgs {
            wasmtime: CommonOptions::new(),
            dirs: Vec::new(),
            envs: Vec::new(),
            allow_outgoing: Vec::new(),
            argv0: None,
            profile: None,
            no_cache: false,
            allow_precompiled: false,
            compose: Default::default(),
        }
    }
}

/// A `--profile` strategy worldhost can apply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile(ProfilingStrategy);

fn parse_profile(value: &str) -> Result<Profile, String> {
    match value {
        "perfmap" => Ok(Profile(ProfilingStrategy::PerfMap)),
        _ if ["jitdump", "vtune", "guest", "pulley"]
            .contains(&value.split(',').next().unwrap_or_default()) =>
        {
            Err(format!(
                "`{value}` needs wasmtime's `profiling` feature, which worldhost is built \
                 without; `--profile perfmap` works with `perf record` and `perf report`"
            ))
        }
        _ => Err(format!(
            "`{value}` is not a profiling strategy; worldhost has `perfmap`"
        )),
    }
}

/// The environment `-S inherit-env` and `--env NAME` read, when it is not the process's own.
static HOST_ENVIRONMENT: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Makes `vars` the host environment a guest may be given (`-S inherit-env`, `--env NAME`)
/// for the rest of the process, in place of the process's own: the containerd shim gives the
/// container's, so that nothing of the shim's own environment reaches a guest. A second call is
/// ignored.
pub fn use_host_environment(vars: Vec<(String, String)>) {
    let _ = HOST_ENVIRONMENT.set(vars);
}

/// The host environment a guest may be given.
fn host_environment() -> Vec<(String, String)> {
    match HOST_ENVIRONMENT.get() {
        Some(vars) => vars.clone(),
        None => std::env::vars().collect(),
    }
}

/// Makes `/tmp/perf-PID.map` this user's own regular file before wasmtime's perfmap profiler
/// opens it by name to append to it (following a link): in a shared `/tmp`, another user could
/// have put a link there to a file of this user's. Once the file is this user's, the sticky
/// `/tmp` lets nobody else replace it.
fn claim_perf_map() -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let path = format!("/tmp/perf-{}.map", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::RUSR | Mode::WUSR | Mode::RGRP | Mode::ROTH;
    match rustix::fs::open(&path, flags, mode) {
        Ok(_) => return Ok(()),
        Err(rustix::io::Errno::EXIST) => {}
        Err(e) => bail!("`--profile perfmap`: cannot create `{path}`: {e}"),
    }
    // Left by an earlier process of the same number: used if it is this user's regular file.
    let stat = rustix::fs::lstat(&path)
        .map_err(|e| anyhow::anyhow!("`--profile perfmap`: cannot check `{path}`: {e}"))?;
    let regular =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::RegularFile;
    if !regular || stat.st_uid != rustix::process::geteuid().as_raw() || stat.st_nlink != 1 {
        bail!(
            "`--profile perfmap`: `{path}` is already there and is not this user's own regular \
             file (a link, or another user's): wasmtime would write the map through it; remove \
             it and run again"
        );
    }
    Ok(())
}

/// An `--env` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvGrant {
    /// `NAME=VAL`
    Set(String, String),
    /// `NAME`: the host's value, if it has one.
    Inherit(String),
}

impl SharedArgs {
    /// Checks the flags against the host (directories exist, inherited variables are read,
    /// wasmtime's keys make an engine configuration) and resolves them into [`Settings`].
    /// Runs before anything is compiled.
    pub fn resolve(&self) -> Result<Settings> {
        let mut options = self.wasmtime.clone();
        configure(&mut options)?;
        refuse_inapplicable(&options)?;
        refuse_breaking_values(&options)?;
        refuse_unlinked_data(&options.wasi)?;
        let cache = !self.no_cache && options.codegen.cache != Some(false);
        options.codegen.cache = None;
        if let Some(file) = options.codegen.cache_config.take() {
            bail!(
                "`-C cache-config={file}` configures wasmtime's compilation cache, which worldhost \
                 does not use: worldhost keeps its own (`worldhost cache dir` shows where; \
                 WORLDHOST_CACHE_MAX_SIZE bounds it; `-C cache=n` or `--no-cache` turns it off)"
            );
        }
        if let Some(path) = &options.debug.coredump
            && path.contains('%')
        {
            bail!("`-D coredump={path}`: the path takes no patterns (`%`), as in wasmtime");
        }
        // wasmtime's logging keys are worldhost's -v and RUST_LOG; `logging=y` is the default.
        options.debug.logging = None;
        // Reference types are on in every wasmtime build (Rust's wasm32 targets emit them);
        // wasmtime-cli-flags ties the switch to wasmtime's `gc` feature, which worldhost is
        // built without, so `=y` (the default) is taken as given instead of refused.
        if options.wasm.reference_types == Some(true) {
            options.wasm.reference_types = None;
        }
        let mut engine = options
            .config(None)
            .map_err(anyhow::Error::from)
            .context("wasmtime's options (`-O`, `-C`, `-D`, `-W`, `-R`) cannot be applied")?;
        if let Some(Profile(strategy)) = self.profile {
            if matches!(strategy, ProfilingStrategy::PerfMap) {
                claim_perf_map()?;
            }
            engine.profiler(strategy);
        }
        if let Some(path) = &options.debug.coredump {
            check_replaceable(std::path::Path::new(path), "the core dump", "`-D coredump`")?;
        }
        let (wasm, wasi) = (&options.wasm, &options.wasi);
        let on = |key: Option<bool>| key == Some(true);
        let inherit_network = on(wasi.inherit_network);
        let mut settings = Settings {
            stdio: Stdio {
                stdin: wasi.inherit_stdin != Some(false),
                stdout: wasi.inherit_stdout != Some(false),
                stderr: wasi.inherit_stderr != Some(false),
            },
            cwd: wasi.cwd.clone(),
            inherit_network,
            allow_ip_name_lookup: on(wasi.allow_ip_name_lookup),
            // As in wasmtime: on by default (useless without `-S inherit-network`).
            tcp: wasi.tcp.unwrap_or(true),
            udp: wasi.udp.unwrap_or(true),
            network_error_code: on(wasi.network_error_code),
            max_random_size: wasi.max_random_size,
            http: Http {
                enabled: on(wasi.http),
                outgoing: OutgoingPolicy::new(&self.allow_outgoing)?.with_body_buffering(
                    wasi.http_outgoing_body_buffer_chunks,
                    wasi.http_outgoing_body_chunk_size,
                ),
                max_fields_size: wasi.max_http_fields_size,
            },
            config_vars: on(wasi.config).then(|| pairs(&wasi.config_var)),
            keyvalue: on(wasi.keyvalue).then(|| pairs(&wasi.keyvalue_in_memory_data)),
            limits: Limits {
                max_memory_size: wasm.max_memory_size,
                max_table_elements: wasm.max_table_elements,
                max_instances: wasm.max_instances,
                max_tables: wasm.max_tables,
                max_memories: wasm.max_memories,
                trap_on_grow_failure: on(wasm.trap_on_grow_failure),
                timeout: wasm
                    .timeout
                    .map(|t| t.min(worldhost_core::settings::LONGEST_DURATION)),
                fuel: wasm.fuel,
                max_resources: wasi.max_resources,
                hostcall_fuel: wasi.hostcall_fuel,
                max_component_handles: wasi.max_component_handles,
            },
            unknown_imports_trap: on(wasm.unknown_imports_trap),
            unknown_imports_default: on(wasm.unknown_imports_default),
            unknown_exports_allow: wasm.unknown_exports_allow,
            preview0: wasi.preview0 != Some(false),
            // WASI 0.3's host functions are concurrent: they need the engine's concurrency
            // support, which `-W concurrency-support=n` turns off for 0.2-only guests.
            p3: wasi.p3 != Some(false) && wasm.concurrency_support != Some(false),
            concurrency_auto: [
                wasm.concurrency_support,
                wasm.component_model_async,
                wasm.component_model_more_async_builtins,
                wasm.component_model_async_stackful,
                wasm.component_model_threading,
                wasm.component_model_error_context,
                wasm.all_proposals,
            ]
            .iter()
            .all(Option::is_none),
            coredump: options.debug.coredump.as_ref().map(PathBuf::from),
            engine,
            optimize: options.opts.clone(),
            only_for: only_for(&options),
            cache,
            allow_precompiled: self.allow_precompiled,
            argv0: self.argv0.clone(),
            pieces: self.compose.pieces(),
            // Filled below, once checked against the host.
            dirs: Vec::new(),
            env: Vec::new(),
        };
        if on(wasi.inherit_env) {
            settings.env.extend(host_environment());
        }
        for grant in &self.envs {
            match grant {
                EnvGrant::Set(name, value) => set_env(&mut settings.env, name, value),
                EnvGrant::Inherit(name) => {
                    let inherited = host_environment().into_iter().find(|(n, _)| n == name);
                    if let Some((_, value)) = inherited {
                        set_env(&mut settings.env, name, &value);
                    }
                }
            }
        }
        for dir in &self.dirs {
            check_dir(dir)?;
        }
        settings.dirs = worldhost_core::preopen::confine(&self.dirs)?;
        Ok(settings)
    }
}

/// Applies `--config FILE` and the keys of the command line to `options` (the keys win).
/// wasmtime-cli-flags does this inside `init_logging` and `config`; `init_logging` is called
/// for it, and of its own work only its refusal of `-D logging=y` / `-D log-to-files`
/// (wasmtime's logger, which worldhost does not build) can fail: then the options were
/// applied, and that refusal is worldhost's own below.
fn configure(options: &mut CommonOptions) -> Result<()> {
    // wasmtime-cli-flags would read the file itself, whole whatever it is, and its errors
    // quote the file's lines: worldhost reads it (bounded, see `read_file`) and hands over the
    // options, as its `configure` does; the command line's keys still win.
    if let Some(path) = options.config.take() {
        let file = read_config(&path)?;
        options.opts = file.opts;
        options.codegen = file.codegen;
        options.debug = file.debug;
        options.wasm = file.wasm;
        options.wasi = file.wasi;
        options.record = file.record;
    }
    let configured = options.init_logging();
    let logging = options.debug.logging == Some(true) || options.debug.log_to_files == Some(true);
    match configured {
        Err(e) if !logging => Err(anyhow::Error::from(e).context("`--config` cannot be read")),
        _ => Ok(()),
    }
}

/// The options of `--config FILE`: TOML, as wasmtime reads it. An error names the place
/// (line and column) and never quotes the file, which may be anything.
fn read_config(path: &std::path::Path) -> Result<CommonOptions> {
    let shown = path.display();
    let bytes = read_file(path, Reading::AsGiven).context("`--config` cannot be read")?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!("`--config {shown}` is not UTF-8 text; give a TOML file of wasmtime's keys")
    })?;
    toml::from_str::<CommonOptions>(&text).map_err(|e| {
        let at = e.span().map_or_else(String::new, |span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        });
        anyhow::anyhow!(
            "`--config {shown}` is not a configuration wasmtime reads{at}: {}; it takes TOML \
             tables of the option groups (`[optimize]`, `[codegen]`, `[debug]`, `[wasm]`, \
             `[wasi]`), as `wasmtime run --config` does",
            e.message().trim()
        )
    })
}

fn pairs(pairs: &[wasmtime_cli_flags::KeyValuePair]) -> Vec<(String, String)> {
    (pairs.iter())
        .map(|pair| (pair.key.clone(), pair.value.clone()))
        .collect()
}

/// The keys that apply to one kind of code only.
fn only_for(options: &CommonOptions) -> Vec<OnlyFor> {
    let module = [
        (
            "-W unknown-imports-default",
            options.wasm.unknown_imports_default.is_some(),
        ),
        (
            "-W unknown-exports-allow",
            options.wasm.unknown_exports_allow.is_some(),
        ),
        ("-S preview0", options.wasi.preview0.is_some()),
    ];
    let component = [
        ("-S http", options.wasi.http == Some(true)),
        ("-S config", options.wasi.config == Some(true)),
        ("-S keyvalue", options.wasi.keyvalue == Some(true)),
        ("-S max-resources", options.wasi.max_resources.is_some()),
        (
            "-S max-component-handles",
            options.wasi.max_component_handles.is_some(),
        ),
        ("-S hostcall-fuel", options.wasi.hostcall_fuel.is_some()),
        (
            "-S max-http-fields-size",
            options.wasi.max_http_fields_size.is_some(),
        ),
    ];
    let of = |keys: &[(&str, bool)], kind: WasmKind| -> Vec<OnlyFor> {
        (keys.iter())
            .filter(|(_, given)| *given)
            .map(|(key, _)| OnlyFor {
                key: key.to_string(),
                kind,
            })
            .collect()
    };
    let mut keys = of(&module, WasmKind::CoreModule);
    keys.extend(of(&component, WasmKind::Component));
    keys
}

/// Refuses data for an interface that its key does not link (`-S config-var` without
/// `-S config`), which wasmtime drops without a word.
fn set_env(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    env.retain(|(n, _)| n != name);
    env.push((name.into(), value.into()));
}

fn check_dir(dir: &DirGrant) -> Result<()> {
    let host = dir.host.display();
    match std::fs::metadata(&dir.host) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!(
            "`--dir {host}`: `{host}` is a file, not a directory; grant the directory that holds \
             it instead"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`--dir {host}`: the host directory `{host}` does not exist; create it or correct \
             the path"
        ),
        Err(e) => bail!("`--dir {host}`: cannot open the host directory `{host}`: {e}"),
    }
}

/// Parses `HOST[::GUEST][::ro]`.
pub fn parse_dir(value: &str) -> Result<DirGrant, String> {
    let mut parts: Vec<&str> = value.split("::").collect();
    let read_only = match parts.last() {
        Some(&"ro") if parts.len() > 1 => {
            parts.pop();
            true
        }
        Some(&"rw") if parts.len() > 1 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let (host, guest) = match parts.as_slice() {
        [host] => (*host, *host),
        [host, guest] => (*host, *guest),
        _ => {
            return Err(format!(
                "`{value}` is not `HOST[::GUEST][::ro]` (too many `::`)"
            ));
        }
    };
    if host.is_empty() || guest.is_empty() {
        return Err(format!(
            "`{value}` names an empty directory; write `HOST[::GUEST][::ro]`, e.g. `./data::/data`"
        ));
    }
    Ok(DirGrant {
        host: host.into(),
        guest: guest.into(),
        read_only,
    })
}

/// Parses `NAME[=VAL]`.
pub fn parse_env(value: &str) -> Result<EnvGrant, String> {
    let grant = match value.split_once('=') {
        Some((name, value)) => EnvGrant::Set(name.into(), value.into()),
        None => EnvGrant::Inherit(value.into()),
    };
    match &grant {
        EnvGrant::Set(name, _) | EnvGrant::Inherit(name) if name.is_empty() => Err(format!(
            "`{value}` has no variable name; write `NAME=VAL` or `NAME`"
        )),
        _ => Ok(grant),
    }
}

mod compose;
pub use compose::ComposeArgs;
#[cfg(test)]
mod tests;
