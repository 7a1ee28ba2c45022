//! WASI 0.2, linked deny-all: no preopened directories, no sockets, no
//! name lookup, no environment, no arguments, empty stdin. Clocks and
//! random are allowed. The component's stdout and stderr go to the host's
//! log (`tracing` target `airssys::stdout` / `airssys::stderr`), one event
//! per line, tagged with the component's name.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

/// The deny-all WASI context of one instance of `component`.
pub(crate) fn deny_all(component: &str) -> WasiCtx {
    WasiCtxBuilder::new()
        .stdout(LogStream::new(component, Channel::Stdout))
        .stderr(LogStream::new(component, Channel::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

#[derive(Clone, Copy, Debug)]
enum Channel {
    Stdout,
    Stderr,
}

/// A WASI output stream that forwards complete lines to `tracing`.
#[derive(Clone, Debug)]
struct LogStream {
    component: Arc<str>,
    channel: Channel,
    /// Bytes of an unfinished line.
    pending: Arc<Mutex<Vec<u8>>>,
}

/// Longest line kept before it is emitted anyway.
const MAX_LINE: usize = 64 * 1024;

impl LogStream {
    fn new(component: &str, channel: Channel) -> LogStream {
        LogStream {
            component: component.into(),
            channel,
            pending: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.extend_from_slice(bytes);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if pending.len() > MAX_LINE {
            let line = std::mem::take(&mut *pending);
            self.emit(&line);
        }
    }

    fn flush_pending(&self) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.is_empty() {
            let line = std::mem::take(&mut *pending);
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let component = &*self.component;
        match self.channel {
            Channel::Stdout => tracing::info!(target: "airssys::stdout", component, "{text}"),
            Channel::Stderr => tracing::warn!(target: "airssys::stderr", component, "{text}"),
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.flush_pending();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_pending();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_pending();
        Poll::Ready(Ok(()))
    }
}
