//! WASI 0.2, linked deny-all: no preopened directories, no sockets, no
//! name lookup, no environment, no arguments, empty stdin. Clocks and
//! random are allowed.
//!
//! - **Waiting is bounded by the call's time limit.** wasmtime-wasi's
//!   synchronous WASI waits on the host without a bound: a guest blocked
//!   in `wasi:io/poll` is not running wasm, so the epoch interruption
//!   cannot reach it (`std::thread::sleep` in a Rust guest is
//!   `subscribe-duration` + `pollable.block`). [`link`] shadows every
//!   WASI function that can wait — `poll`, `pollable.block`, and the
//!   streams' `blocking-*` methods and drops — with versions that wait at
//!   most until the deadline of the current call (`limits.cpu_time_ms`,
//!   counted from the start of the call, as for the contract's own `poll`
//!   in `host/poll.rs`) and then end the call with
//!   [`LimitExceeded::CpuTime`]. What is ready in time is answered as
//!   before. Nothing else in a deny-all context waits: sockets cannot be
//!   created, there is no descriptor to open, stdin is closed (reads end
//!   at once) and stdout/stderr are always writable.
//! - **stdout and stderr are log records** of the component (see
//!   `host/logging.rs`): each line is an `info` record (stdout) or a
//!   `warn` record (stderr), shown only when the component holds a
//!   `log:write` grant for that level and counted against its log rate
//!   limits. Without the grant the lines are dropped, and the host says
//!   so once per instance and stream (`tracing` target `airssys::output`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::io::streams as async_streams;
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, OutputStream, Pollable, StreamError, StreamResult,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::logging::{InstanceLog, MAX_LINE, Stream};
use super::state::HostState;
use crate::error::LimitExceeded;

/// Links WASI 0.2 (synchronous) with every function that can wait
/// bounded by the call's deadline.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let shadowed = poll::add_to_linker::<HostState, BoundedIo>(linker, bounded)
        .and_then(|()| streams::add_to_linker::<HostState, BoundedIo>(linker, bounded));
    linker.allow_shadowing(false);
    shadowed
}

/// The deny-all WASI context of one instance, its stdout and stderr
/// written to `log`.
pub(crate) fn deny_all(log: &Arc<InstanceLog>) -> WasiCtx {
    let stream = |stream| LogStream {
        stream,
        log: Arc::clone(log),
    };
    WasiCtxBuilder::new()
        .stdout(stream(Stream::Stdout))
        .stderr(stream(Stream::Stderr))
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }))
        .build()
}

// ---- Waiting, bounded ---------------------------------------------------

/// The resource table of an instance and the deadline of its current call:
/// what the bounded WASI functions work on.
struct Bounded<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
    component: &'a str,
    limit: Duration,
}

struct BoundedIo;

impl HasData for BoundedIo {
    type Data<'a> = Bounded<'a>;
}

fn bounded(state: &mut HostState) -> Bounded<'_> {
    let deadline = state.call_deadline();
    Bounded {
        table: &mut state.table,
        deadline,
        component: &state.info.name,
        limit: state.info.limits.cpu_time,
    }
}

impl Bounded<'_> {
    /// The error that ends a call whose wait reached the deadline.
    fn time_limit(&self) -> wasmtime::Error {
        wasmtime::Error::new(LimitExceeded::CpuTime {
            component: self.component.to_owned(),
            limit: self.limit,
        })
    }
}

/// Runs a host future until it completes (`Some`) or `deadline` passes
/// (`None`). A future that is ready at once completes whatever the time.
fn wait<F: Future>(deadline: Instant, future: F) -> Option<F::Output> {
    wasmtime_wasi::runtime::in_tokio(async {
        tokio::time::timeout_at(deadline.into(), future).await.ok()
    })
}

impl poll::Host for Bounded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let ready = wait(
            self.deadline,
            async_poll::Host::poll(&mut *self.table, pollables),
        );
        ready.unwrap_or_else(|| Err(self.time_limit()))
    }
}

impl poll::HostPollable for Bounded<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(&mut *self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let done = wait(
            self.deadline,
            async_poll::HostPollable::block(&mut *self.table, pollable),
        );
        done.unwrap_or_else(|| Err(self.time_limit()))
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

impl Bounded<'_> {
    /// [`wait`] for a stream operation: the deadline ends the call.
    fn stream<T>(&mut self, run: impl AsyncStreamOp<T>) -> StreamResult<T> {
        let deadline = self.deadline;
        match wait(deadline, run.start(self.table)) {
            Some(result) => result,
            None => Err(StreamError::Trap(self.time_limit())),
        }
    }
}

/// One asynchronous stream operation on the table (a named trait rather
/// than a closure, whose returned future could not borrow its argument).
trait AsyncStreamOp<T> {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<T>> + '_;
}

/// `blocking-write-and-flush`.
struct WriteAndFlush(Resource<DynOutputStream>, Vec<u8>);
/// `blocking-write-zeroes-and-flush`.
struct WriteZeroesAndFlush(Resource<DynOutputStream>, u64);
/// `blocking-flush`.
struct Flush(Resource<DynOutputStream>);
/// `blocking-splice`.
struct Splice(Resource<DynOutputStream>, Resource<DynInputStream>, u64);
/// `blocking-read`.
struct Read(Resource<DynInputStream>, u64);
/// `blocking-skip`.
struct Skip(Resource<DynInputStream>, u64);

impl AsyncStreamOp<()> for WriteAndFlush {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<()>> + '_ {
        async_streams::HostOutputStream::blocking_write_and_flush(table, self.0, self.1)
    }
}

impl AsyncStreamOp<()> for WriteZeroesAndFlush {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<()>> + '_ {
        async_streams::HostOutputStream::blocking_write_zeroes_and_flush(table, self.0, self.1)
    }
}

impl AsyncStreamOp<()> for Flush {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<()>> + '_ {
        async_streams::HostOutputStream::blocking_flush(table, self.0)
    }
}

impl AsyncStreamOp<u64> for Splice {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<u64>> + '_ {
        async_streams::HostOutputStream::blocking_splice(table, self.0, self.1, self.2)
    }
}

impl AsyncStreamOp<Vec<u8>> for Read {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<Vec<u8>>> + '_ {
        async_streams::HostInputStream::blocking_read(table, self.0, self.1)
    }
}

impl AsyncStreamOp<u64> for Skip {
    fn start(self, table: &mut ResourceTable) -> impl Future<Output = StreamResult<u64>> + '_ {
        async_streams::HostInputStream::blocking_skip(table, self.0, self.1)
    }
}

impl streams::Host for Bounded<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(&mut *self.table, err)
    }
}

impl streams::HostOutputStream for Bounded<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        let dropped = wait(
            self.deadline,
            async_streams::HostOutputStream::drop(&mut *self.table, stream),
        );
        dropped.unwrap_or_else(|| Err(self.time_limit()))
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(&mut *self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(&mut *self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        self.stream(WriteAndFlush(stream, bytes))
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        self.stream(WriteZeroesAndFlush(stream, len))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(&mut *self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(&mut *self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(&mut *self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        self.stream(Flush(stream))
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(&mut *self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        self.stream(Splice(dst, src, len))
    }
}

impl streams::HostInputStream for Bounded<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        let dropped = wait(
            self.deadline,
            async_streams::HostInputStream::drop(&mut *self.table, stream),
        );
        dropped.unwrap_or_else(|| Err(self.time_limit()))
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(&mut *self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        self.stream(Read(stream, len))
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(&mut *self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        self.stream(Skip(stream, len))
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(&mut *self.table, stream)
    }
}

// ---- stdout and stderr --------------------------------------------------
// Lines, grants and rates: see `InstanceLog` in host/logging.rs.

/// A WASI output stream whose lines are log records of the component.
#[derive(Clone, Debug)]
struct LogStream {
    stream: Stream,
    log: Arc<InstanceLog>,
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
        self.log.write(self.stream, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Lines end at a line break or at the end of the call.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(MAX_LINE)
    }

    fn write_zeroes(&mut self, count: usize) -> StreamResult<()> {
        // The default allocates `count` bytes first, whatever `count` is.
        if count > MAX_LINE {
            return Err(StreamError::trap(&format!(
                "write-zeroes of {count} bytes: `check-write` permits at most {MAX_LINE}"
            )));
        }
        self.log.write(self.stream, &vec![0; count]);
        Ok(())
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.log.write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
