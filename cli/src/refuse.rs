//! The shared flags worldhost refuses before anything is compiled, with what to do instead:
//! wasmtime keys that would link data nothing reads, keys that do not apply here, and values
//! that would break every call (found by trying odd values as an attacker would).

use anyhow::{Result, bail};
use wasmtime_cli_flags::CommonOptions;
use worldhost_core::UsageError;

pub(crate) fn refuse_unlinked_data(wasi: &wasmtime_cli_flags::WasiOptions) -> Result<()> {
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
pub(crate) fn refuse_inapplicable(options: &CommonOptions) -> Result<()> {
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
pub(crate) fn refuse_breaking_values(options: &CommonOptions) -> Result<()> {
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
