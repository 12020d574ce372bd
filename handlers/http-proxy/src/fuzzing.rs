//! Not part of worldhost's interface: what `fuzz/`'s http target drives. One server, prepared
//! as `serve` prepares it, answers raw request bytes over an in-memory connection, through the
//! same per-connection code as a real socket.

use crate::args::HttpProxyArgs;
use crate::state::Server;
use anyhow::{Context as _, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use worldhost_core::RunContext;

/// A prepared server and the runtime that drives it.
pub struct Harness {
    server: Arc<Server>,
    runtime: tokio::runtime::Runtime,
    /// Never signalled: the connections' watchers come from it.
    graceful: hyper_util::server::graceful::GracefulShutdown,
}

impl Harness {
    /// Prepares the component of `cx` with the handler's flags found in `cx.flags`.
    pub fn new(cx: &RunContext<'_>) -> Result<Self> {
        let args = cx.flags.of::<HttpProxyArgs>()?.clone();
        let server = crate::serve::prepare(cx, args)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Self {
            server,
            runtime,
            graceful: hyper_util::server::graceful::GracefulShutdown::new(),
        })
    }

    /// Sends `request` on a fresh connection, closes the client's side, and returns all the
    /// server sent back before closing its own. Panics if that takes longer than `limit`: a
    /// connection the server never ends is a bug the fuzzer must report.
    pub fn exchange(&self, request: &[u8], limit: Duration) -> Vec<u8> {
        self.runtime.block_on(async {
            let (client, server_side) = tokio::io::duplex(64 << 10);
            let served = tokio::spawn(crate::connection::connection(
                self.server.clone(),
                server_side,
                self.graceful.watcher(),
            ));
            let (mut read, mut write) = tokio::io::split(client);
            let send = async {
                // The server may close before it has read everything: not an error here.
                let _ = write.write_all(request).await;
                let _ = write.shutdown().await;
            };
            let mut answer = Vec::new();
            let receive = read.read_to_end(&mut answer);
            let (_, received) = tokio::time::timeout(limit, async { tokio::join!(send, receive) })
                .await
                .unwrap_or_else(|_| panic!("the server kept the connection open past {limit:?}"));
            // A reset is an answer too: what arrived before it is returned.
            drop(received);
            let _ = served.await;
            answer
        })
    }
}
