//! The shared flags as the command line spells them, as wasmtime's CLI does: wasmtime's own
//! option groups (`-O`, `-C`, `-D`, `-W`, `-S`, `--config FILE`), parsed by wasmtime-cli-flags
//! so that every key means what it means to `wasmtime run`, and `--dir`, `--env`, `--argv0`,
//! `--profile`, `--allow-outgoing`, `--allow-precompiled`; checked against the host and
//! resolved into core's [`Settings`] before anything is compiled. The default grants the
//! guest nothing.

use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use wasmtime::ProfilingStrategy;
use wasmtime_cli_flags::CommonOptions;
use worldhost_core::WasmKind;
use worldhost_core::code::kind::{Reading, read_file};
use worldhost_core::code::private_dir::check_replaceable;
use worldhost_core::outgoing::OutgoingPolicy;
use worldhost_core::settings::{DirGrant, Http, Limits, OnlyFor, Stdio};
use worldhost_core::{Settings, UsageError};

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
fn refuse_unlinked_data(wasi: &wasmtime_cli_flags::WasiOptions) -> Result<()> {
    let unlinked = [
        (
            "config-var",
            "config",
            wasi.config,
            wasi.config_var.is_empty(),
        ),
        (
            "keyvalue-in-memory-data",
            "keyvalue",
            wasi.keyvalue,
            wasi.keyvalue_in_memory_data.is_empty(),
        ),
    ];
    for (key, needs, linked, empty) in unlinked {
        if !empty && linked != Some(true) {
            bail!(
                "`-S {key}=…` gives the guest data through wasi:{needs}, which only `-S {needs}` \
                 links; add `-S {needs}`"
            );
        }
    }
    Ok(())
}

/// Refuses the keys wasmtime accepts that cannot apply in worldhost, each with why.
fn refuse_inapplicable(options: &CommonOptions) -> Result<()> {
    let (wasi, debug) = (&options.wasi, &options.debug);
    let refused: &[(&str, bool, &str)] = &[
        (
            "-S nn",
            wasi.nn == Some(true) || !wasi.nn_graph.is_empty(),
            "worldhost does not include wasi-nn",
        ),
        (
            "-S threads",
            wasi.threads == Some(true),
            "worldhost does not include wasi-threads",
        ),
        (
            "-S tls",
            wasi.tls == Some(true),
            "worldhost does not include wasi:tls yet",
        ),
        (
            "-S listenfd",
            wasi.listenfd == Some(true),
            "wasmtime applies it to its legacy preview-1 implementation only, which worldhost does not include",
        ),
        (
            "-S tcplisten",
            !wasi.tcplisten.is_empty(),
            "wasmtime applies it to its legacy preview-1 implementation only, which worldhost does not include",
        ),
        (
            "-S preview2=n",
            wasi.preview2 == Some(false),
            "it asks for wasmtime's legacy preview-1 implementation, which worldhost does not include",
        ),
        (
            "-S cli=n",
            wasi.cli == Some(false) || wasi.common == Some(false),
            "worldhost always links wasi:cli (a server's guests get it too, as with wasmtime serve -S cli)",
        ),
        (
            "-S p3",
            wasi.p3 == Some(true) && options.wasm.concurrency_support == Some(false),
            "WASI 0.3 needs the engine's concurrency support, which `-W concurrency-support=n` \
             turns off",
        ),
        (
            "-W component-model=n",
            options.wasm.component_model == Some(false),
            "worldhost runs components; a core module runs without the key",
        ),
        (
            "-W reference-types=n",
            options.wasm.reference_types == Some(false),
            "this build has reference types always on (wasmtime's switch for them needs its `gc` \
             feature, which worldhost is built without)",
        ),
        (
            "-D debugger",
            debug.debugger.is_some() || !debug.arg.is_empty(),
            "worldhost does not attach debugger components",
        ),
        (
            "-D log-to-files",
            debug.log_to_files == Some(true),
            "worldhost logs to stderr only, filtered by -v and RUST_LOG",
        ),
        (
            "-D logging=n",
            debug.logging == Some(false),
            "worldhost's log lines are filtered by -v and RUST_LOG (RUST_LOG=off silences them)",
        ),
    ];
    if let Some((key, _, why)) = refused.iter().find(|(_, given, _)| *given) {
        bail!("`{key}` cannot apply: {why}; leave it out");
    }
    if wasi.cli_exit_with_code == Some(false) {
        tracing::warn!(
            "cannot disable `-S cli-exit-with-code`: wasi:cli/exit's exit-with-code is always linked, as in wasmtime"
        );
    }
    Ok(())
}

/// The address space a process has for one linear memory's reservation: what the hardware
/// gives user space (47 bits on x86-64; Linux gives 48 bits on 64-bit ARM by default too, but
/// the smaller bound holds everywhere), or less if `ulimit -v` says so.
fn address_space() -> u64 {
    let hardware = 1 << 47;
    #[cfg(unix)]
    if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::As).current {
        return limit.min(hardware);
    }
    hardware
}

/// Refuses, as usage errors naming the key, values wasmtime accepts that would break every
/// guest run: a server would start, then fail each request (the outgoing-body keys at 0 panic
/// a worker or send an empty reply; a memory reservation past the address space makes every
/// instantiation fail). docs/COMPATIBILITY.md lists them.
fn refuse_breaking_values(options: &CommonOptions) -> Result<()> {
    let usage = |message: String| Err(UsageError(message).into());
    let wasi = &options.wasi;
    for (key, value) in [
        (
            "http-outgoing-body-buffer-chunks",
            wasi.http_outgoing_body_buffer_chunks,
        ),
        (
            "http-outgoing-body-chunk-size",
            wasi.http_outgoing_body_chunk_size,
        ),
    ] {
        if value == Some(0) {
            return usage(format!(
                "`-S {key}=0` would break the body of every outgoing HTTP request (wasmtime \
                 panics on one, or sends it empty); give at least 1, or leave the key out for \
                 wasmtime's default"
            ));
        }
    }
    let opts = &options.opts;
    let reservation = opts.memory_reservation.or(opts.static_memory_maximum_size);
    let guard = (opts.static_memory_guard_size)
        .or(opts.dynamic_memory_guard_size)
        .or(opts.memory_guard_size);
    let growth = (opts.memory_reservation_for_growth).or(opts.dynamic_memory_reserved_for_growth);
    let space = address_space();
    let too_much = |bytes: u64| bytes > space;
    // Each key alone, then a memory's reservation with its guard.
    let given = [
        ("memory-reservation", reservation),
        ("memory-guard-size", guard),
        ("memory-reservation-for-growth", growth),
    ];
    let past = (given.iter())
        .find_map(|(key, value)| Some((*key, (*value).filter(|v| too_much(*v))?)))
        .or_else(|| {
            let both = reservation?.saturating_add(guard?);
            too_much(both).then_some(("memory-reservation", reservation?))
        });
    if let Some((key, bytes)) = past {
        return usage(format!(
            "`-O {key}={bytes}` asks for more address space for one memory (with its guard) \
             than a process has here ({}), so no instance could be made; give a smaller value \
             (the default reserves 4 GiB), or leave the key out",
            match space {
                s if s >= 1 << 47 => "128 TiB".to_string(),
                s => format!("{} GiB, `ulimit -v`", s >> 30),
            }
        ));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_forms_parse() {
        let d = parse_dir("data").unwrap();
        assert_eq!(
            (d.host.to_str(), d.guest.as_str(), d.read_only),
            (Some("data"), "data", false)
        );
        let d = parse_dir("./data::/data").unwrap();
        assert_eq!((d.guest.as_str(), d.read_only), ("/data", false));
        let d = parse_dir("./data::/data::ro").unwrap();
        assert_eq!((d.guest.as_str(), d.read_only), ("/data", true));
        assert!(parse_dir("a::b::c::d").is_err());
        assert!(parse_dir("::/x").is_err());
    }

    #[test]
    fn env_forms_parse() {
        assert_eq!(
            parse_env("A=1").unwrap(),
            EnvGrant::Set("A".into(), "1".into())
        );
        assert_eq!(
            parse_env("A=").unwrap(),
            EnvGrant::Set("A".into(), "".into())
        );
        assert_eq!(parse_env("A").unwrap(), EnvGrant::Inherit("A".into()));
        assert!(parse_env("=1").is_err());
    }

    fn parsed(args: &[&str]) -> Result<Settings> {
        use clap::{Args as _, FromArgMatches as _};
        let cmd = SharedArgs::augment_args(clap::Command::new("t"));
        let argv = std::iter::once("t").chain(args.iter().copied());
        SharedArgs::from_arg_matches(&cmd.try_get_matches_from(argv)?)?.resolve()
    }

    #[test]
    fn wasmtimes_keys_are_parsed_by_wasmtime_cli_flags() {
        let settings = parsed(&[
            "-W",
            "max-memory-size=1_000,timeout=250ms,fuel=5",
            "-W",
            "max-table-elements=7,trap-on-grow-failure=y",
            "-S",
            "inherit-stdout=n,max-resources=1000,hostcall-fuel=9,max-random-size=64",
        ])
        .unwrap();
        let limits = settings.limits;
        assert_eq!(limits.max_memory_size, Some(1000));
        assert_eq!(limits.timeout, Some(std::time::Duration::from_millis(250)));
        assert_eq!((limits.fuel, limits.max_table_elements), (Some(5), Some(7)));
        assert!(limits.trap_on_grow_failure);
        assert_eq!(
            (limits.max_resources, limits.hostcall_fuel),
            (Some(1000), Some(9))
        );
        assert!(!settings.stdio.stdout && settings.stdio.stderr);
        assert_eq!(settings.max_random_size, Some(64));
        let err = parsed(&["-S", "inherit-everything"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown -S / --wasi option: inherit-everything"),
            "{err}"
        );
    }

    #[test]
    fn keys_that_cannot_apply_say_why() {
        let err = parsed(&["-S", "nn"]).unwrap_err().to_string();
        assert!(
            err.contains("`-S nn` cannot apply: worldhost does not include wasi-nn"),
            "{err}"
        );
        let err = parsed(&["-C", "cache-config=x.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("worldhost keeps its own"), "{err}");
        let err = parsed(&["-S", "config-var=a=b"]).unwrap_err().to_string();
        assert!(err.contains("add `-S config`"), "{err}");
        assert!(!parsed(&["-C", "cache=n"]).unwrap().cache);
        let only = parsed(&["-W", "unknown-imports-default"]).unwrap();
        let err = only.check_for("command", WasmKind::Component).unwrap_err();
        assert!(
            err.to_string().contains("applies to core modules only"),
            "{err}"
        );
        only.check_for("preview1", WasmKind::CoreModule).unwrap();
    }

    #[test]
    fn later_env_grants_override_inherited_ones() {
        let args = SharedArgs {
            envs: vec![
                EnvGrant::Set("A".into(), "1".into()),
                EnvGrant::Set("A".into(), "2".into()),
            ],
            ..SharedArgs::default()
        };
        assert_eq!(
            args.resolve().unwrap().env,
            [("A".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn missing_dir_is_named() {
        let args = SharedArgs {
            dirs: vec![parse_dir("/no/such/dir::/d").unwrap()],
            ..SharedArgs::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("`/no/such/dir` does not exist"), "{err}");
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let settings = SharedArgs::default().resolve().unwrap();
        assert!(settings.dirs.is_empty() && settings.env.is_empty());
        assert!(!settings.inherit_network && !settings.allow_ip_name_lookup);
    }
}
