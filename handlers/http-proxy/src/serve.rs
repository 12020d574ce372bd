//! The entry of `serve`: checks the flags, makes the server's state and its first runner, starts
//! the tiered start's background compile and `--watch`, then listens, and acts on what the
//! listeners return (SIGHUP: reload; SIGINT, SIGTERM: drain and exit).

use crate::args::HttpProxyArgs;
use crate::listen::{Listening, Signal};
use crate::output::Instances;
use crate::runner::{Recipe, Runner};
use crate::state::{Reloads, Server};
use anyhow::{Context as _, Result, bail};
use hyper::header::{HeaderName, HeaderValue};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock, RwLock};
use tokio::sync::Semaphore;
use worldhost_core::code::kind::{Reading, read_file};
use worldhost_core::{RunContext, UsageError};

pub(crate) fn serve(cx: RunContext<'_>, args: HttpProxyArgs) -> Result<ExitCode> {
    let server = prepare(&cx, args)?;
    if cx.component.is_provisional() {
        tracing::info!(
            "serving from code compiled by Winch, wasmtime's baseline compiler, while \
             Cranelift's compiles in the background"
        );
        crate::tiered::complete_in_background(&server, cx.component);
    }
    crate::reload::start(&server)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let exit = runtime.block_on(listen(server));
    // A guest that computes forever, without `-W timeout`, never ends: its task is dropped at
    // exit rather than waited for.
    runtime.shutdown_background();
    exit
}

/// Checks the flags, links the component and pre-instantiates it: everything but the socket.
pub(crate) fn prepare(cx: &RunContext<'_>, args: HttpProxyArgs) -> Result<Arc<Server>> {
    let loaded = cx.component;
    if args.max_concurrent_requests == 0 {
        bail!("`--max-concurrent-requests 0` would refuse every request; give at least 1");
    }
    if args.max_requests_per_connection == Some(0) {
        bail!(
            "`--max-requests-per-connection 0` would refuse every HTTP/2 request; give at least 1"
        );
    }
    if cx.settings.coredump.is_some() {
        return Err(UsageError(
            "`-D coredump` writes the core dump of one run's trap; a server's trapping requests \
             would each write it over the last: leave it out of `serve` (each trap is logged \
             with its backtrace)"
                .into(),
        )
        .into());
    }
    // Fuel is a store's: with requests at once on a reused instance, one's spending would
    // stop another. An instance that takes one at a time is refilled for each.
    if cx.settings.limits.fuel.is_some()
        && let Some(n) = args.max_instance_concurrent_reuse_count.filter(|n| *n > 1)
    {
        return Err(UsageError(format!(
            "`-W fuel` bounds each request only when an instance serves one request at a time \
             (it is then refilled for each), and `--max-instance-concurrent-reuse-count {n}` \
             asks for {n}; leave it out (or give 1)"
        ))
        .into());
    }
    if args.max_concurrent_connections == 0 {
        bail!("`--max-concurrent-connections 0` would accept no connection; give at least 1");
    }
    for (flag, timeout) in [
        ("--header-read-timeout", args.header_read_timeout),
        ("--body-read-timeout", args.body_read_timeout),
        ("--response-write-timeout", args.response_write_timeout),
    ] {
        if timeout.is_zero() {
            bail!("`{flag} 0` would cut every client off at once; give a duration such as `30s`");
        }
    }
    let stdio = &cx.settings.stdio;
    let instances = Arc::new(Instances::new(
        !args.no_logging_prefix,
        stdio.stdout,
        stdio.stderr,
    ));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let recipe = Recipe {
        args: &args,
        settings: cx.settings,
        guest_args: cx.args,
        instances: &instances,
    };
    let (runner, holds) = Runner::new(loaded, &recipe, Arc::new(OnceLock::new()))?;
    let connections = crate::sockets::connection_budget(args.max_concurrent_connections);
    let server = Arc::new(Server {
        runner: RwLock::new(Arc::new(runner)),
        settings: cx.settings.clone(),
        name: loaded.name.clone(),
        permits: Arc::new(Semaphore::new(holds)),
        capacity: holds.into(),
        connections: Arc::new(Semaphore::new(connections)),
        connection_places: connections,
        open: 0.into(),
        tls,
        headers: parse_headers(&args.headers)?,
        instances,
        reloads: Reloads::new(&loaded.path),
        guest_args: cx.args.to_vec(),
        args,
    });
    Ok(server)
}

/// The headers of `-H`: `name: value`, or `@FILE` with one per line.
fn parse_headers(headers: &[String]) -> Result<Vec<(HeaderName, HeaderValue)>> {
    let mut parsed = Vec::new();
    for header in headers {
        match header.strip_prefix('@') {
            // The file's lines are never quoted in an error: it may be anything.
            Some(file) => {
                let bytes = read_file(Path::new(file), Reading::AsGiven)
                    .with_context(|| format!("`-H @{file}`: cannot read the header file"))?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    anyhow::anyhow!("`-H @{file}` is not text; give one `name: value` a line")
                })?;
                let lines = text.lines().enumerate();
                for (n, line) in lines.filter(|(_, line)| !line.trim().is_empty()) {
                    parsed.push(parse_header(line).map_err(|_| {
                        anyhow::anyhow!(
                            "line {} of `-H @{file}` is not a header; write one `name: value` \
                             a line",
                            n + 1
                        )
                    })?);
                }
            }
            None => parsed.push(parse_header(header)?),
        }
    }
    Ok(parsed)
}

fn parse_header(header: &str) -> Result<(HeaderName, HeaderValue)> {
    let Some((name, value)) = header.split_once(':') else {
        bail!("`-H {header}` has no `:`; write `-H 'name: value'`");
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("`-H {header}`: `{}` is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim_start())
        .with_context(|| format!("`-H {header}`: the value is not a header value"))?;
    Ok((name, value))
}

/// Listens until SIGINT or SIGTERM (SIGHUP reloads), then lets open connections finish their
/// requests within `--shutdown-grace` and exits 0.
async fn listen(server: Arc<Server>) -> Result<ExitCode> {
    let mut listening = Listening::start(&server).await?;
    loop {
        match listening.next().await {
            Signal::Reload => crate::reload::reload(&server, "SIGHUP"),
            Signal::Stop(signal) => {
                listening.stop(signal).await;
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}
