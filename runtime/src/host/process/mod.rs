//! `airssys:ext/process`: child processes of a component.
//!
//! - `spawn` is guarded by `proc:spawn:{program}`, the absolute path as
//!   the component wrote it and as the policy grants it. Then
//!   ([`check`]): a path under `/proc/` is refused; the path is resolved
//!   (every symlink, `/bin` → `/usr/bin` aliases, magic links such as
//!   `/proc/self/root/...`) and the resolved file is refused when a
//!   `proc:spawn` deny rule names it by any path that resolves to it; the
//!   arguments must fit the `args` of the policy's program rules for it,
//!   and every environment variable must be passed by their `env` (an
//!   `env:read` grant never does); loader variables (`LD_*`, `DYLD_*`) are
//!   refused whatever the policy says.
//! - The child ([`child`]) runs the resolved file (no second lookup), with
//!   `argv[0]` the path asked for, exactly the checked arguments and
//!   environment (nothing of the host's is inherited), `/` as its working
//!   directory, an empty standard input, in a session and process group of
//!   its own with the rules' rlimits.
//! - The child is a resource of the instance: dropping it (or the
//!   instance, or the runtime with its instances) kills its whole group —
//!   grandchildren included — and reaps it. When the child ends on its
//!   own, what it left running in its group is killed at once.
//! - Standard output and error ([`output`]) are buffered by one I/O thread
//!   per child, at most [`PIPE_BUFFER`] bytes per stream, charged to the
//!   instance's `limits.held_bytes`; a full buffer or budget stops the
//!   reading, so the child blocks, and a read of a stream refused room
//!   answers `quota-exceeded` naming the limit. The thread ends with the
//!   handle at the latest.
//! - `send-signal` is guarded by `proc:signal:{self}` (the program path
//!   the child was spawned from). A component can only name its own
//!   children: it has no other handle to a process.
//! - At most `limits.max_children` children (default
//!   [`DEFAULT_MAX_CHILDREN`](crate::policy::DEFAULT_MAX_CHILDREN)) of one
//!   component run at once, across its instances; `spawn` beyond that
//!   answers `quota-exceeded` naming the limit. A child counts until it has
//!   ended (dropping its handle kills it).
//! - `get` never waits; `subscribe` gives a pollable that is ready when
//!   `get` would answer (see [`super::poll`]). The I/O thread wakes a
//!   waiting `poll` on new bytes, at the end of a stream, and (Linux) when
//!   the child's pidfd reports its exit; elsewhere the `poll` backoff
//!   notices the exit. The end of the output streams is not taken for an
//!   exit: a child may close them and run on.

mod check;
#[cfg(unix)]
mod child;
#[cfg(unix)]
mod output;
#[cfg(not(unix))]
mod unsupported;
#[cfg(not(unix))]
use unsupported::{child, output};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use airssys_macros::host_impl;
use wasmtime::component::Resource;

use self::child::{Ended, Process};
use self::output::PIPE_BUFFER;
use self::output::{ExitWatch, Output, Stream, Taken};
use super::bindings::airssys::ext::process::{
    Error, ExitStatus, Host, HostChild, HostPendingExit, HostPendingRead, KeyValue, Pollable,
    Signal,
};
use super::poll::Readiness;
use super::state::HostState;
use crate::error::LimitExceeded;
use crate::sync::{Notifier, lock};

/// A child process of the component.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Child {
    /// The program path it was spawned from, as asked (the `{self}` of
    /// `proc:signal`).
    pub(crate) program: String,
    process: Arc<Mutex<Process>>,
    output: Arc<Output>,
}

impl Drop for Child {
    fn drop(&mut self) {
        // The WIT promises: dropping the handle kills the child (its whole
        // group), even while a `pending-exit` still refers to it.
        lock(&self.process).end();
        self.output.abandon();
    }
}

/// The running children of one component (all its instances), for
/// `limits.max_children`.
#[derive(Debug, Default)]
pub(crate) struct Children {
    running: Mutex<Vec<Weak<Mutex<Process>>>>,
}

impl Children {
    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Mutex<Process>>>> {
        crate::sync::lock(&self.running)
    }
}

/// A wait for a child to end.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct PendingExit {
    program: String,
    /// Held only here, so a pollable notices when this handle is dropped.
    exit: Arc<ExitProbe>,
}

#[derive(Debug)]
struct ExitProbe {
    process: Arc<Mutex<Process>>,
}

impl Readiness for ExitProbe {
    fn is_ready(&self) -> bool {
        // An error is ready too: `get` reports it.
        !matches!(lock(&self.process).poll(), Ok(None))
    }
}

/// A read of a child's output.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct PendingRead {
    program: String,
    /// Held only here, so a pollable notices when this handle is dropped.
    read: Arc<ReadProbe>,
    max: usize,
}

#[derive(Debug)]
struct ReadProbe {
    output: Arc<Output>,
    stream: Stream,
    /// The result was taken (`get` then answers an error at once).
    done: AtomicBool,
}

impl Readiness for ReadProbe {
    fn is_ready(&self) -> bool {
        self.done.load(Ordering::Acquire) || self.output.is_ready(self.stream)
    }
}

impl From<LimitExceeded> for Error {
    fn from(error: LimitExceeded) -> Error {
        Error::QuotaExceeded(error.to_string())
    }
}

/// Starts the checked `launch`, its output charged to `budget`; what a
/// `poll` may wait for notifies `wake`.
fn spawn_child(
    launch: &check::Launch,
    budget: &super::budget::Budget,
    wake: &Arc<Notifier>,
) -> Result<Child, Error> {
    let program = &launch.program;
    let started = Process::start(launch).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Error::NotFound(
            format!("cannot run `{program}`: no executable program at that path ({e})"),
        ),
        _ => Error::Other(format!("cannot run `{program}`: {e}")),
    })?;
    let process = Arc::new(Mutex::new(started.process));
    let exit = exit_watch(&process);
    // On failure `process` is dropped: the child is killed and reaped.
    let output = Output::start(started.stdout, started.stderr, exit, budget, wake)
        .map_err(|e| Error::Other(format!("cannot read the output of `{program}`: {e}")))?;
    Ok(Child {
        program: program.clone(),
        process,
        output,
    })
}

/// The child's pidfd, for its I/O thread to wake a waiting `poll` (and
/// kill what the child left in its group) as soon as it ends.
///
/// Opened while the caller holds the child unreaped, so it names this
/// child and no process that reuses its id later. `None` when the kernel
/// lacks pidfds (Linux < 5.3): the `poll` backoff notices the exit.
#[cfg(target_os = "linux")]
fn exit_watch(process: &Arc<Mutex<Process>>) -> Option<ExitWatch> {
    use rustix::process::{PidfdFlags, pidfd_open};
    let pidfd = pidfd_open(lock(process).pid(), PidfdFlags::empty()).ok()?;
    let process = Arc::clone(process);
    Some(ExitWatch {
        pidfd,
        on_exit: Box::new(move || {
            let _ = lock(&process).poll();
        }),
    })
}

/// Without pidfds the `poll` backoff notices the exit.
#[cfg(not(target_os = "linux"))]
fn exit_watch(_process: &Arc<Mutex<Process>>) -> Option<ExitWatch> {
    None
}

fn exit_status(ended: Ended) -> ExitStatus {
    match ended {
        Ended::Code(code) => ExitStatus::Code(code),
        Ended::Signaled(signal) => ExitStatus::Signaled(signal),
    }
}

impl HostPendingExit for HostState {
    fn subscribe(&mut self, self_: Resource<PendingExit>) -> wasmtime::Result<Resource<Pollable>> {
        let pollable = super::poll::Pollable::watching(&self.table.get(&self_)?.exit);
        Ok(self.table.push(pollable)?)
    }
    fn get(
        &mut self,
        self_: Resource<PendingExit>,
    ) -> wasmtime::Result<Result<Option<ExitStatus>, Error>> {
        let pending = self.table.get(&self_)?;
        Ok(lock(&pending.exit.process)
            .poll()
            .map(|s| s.map(exit_status))
            .map_err(|e| Error::Other(format!("waiting for `{}`: {e}", pending.program))))
    }
    fn drop(&mut self, rep: Resource<PendingExit>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostPendingRead for HostState {
    fn subscribe(&mut self, self_: Resource<PendingRead>) -> wasmtime::Result<Resource<Pollable>> {
        let pollable = super::poll::Pollable::watching(&self.table.get(&self_)?.read);
        Ok(self.table.push(pollable)?)
    }
    fn get(
        &mut self,
        self_: Resource<PendingRead>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let pending = self.table.get(&self_)?;
        let read = &pending.read;
        if read.done.load(Ordering::Acquire) {
            return Ok(Err(Error::InvalidInput(
                "the result of this read was already taken".into(),
            )));
        }
        let answer = match read.output.take(read.stream, pending.max) {
            Taken::Nothing => return Ok(Ok(None)),
            Taken::Bytes(bytes) => Ok(Some(bytes)),
            Taken::End => Ok(Some(Vec::new())),
            Taken::Starved(limit) => Err(Error::QuotaExceeded(format!(
                "the {} of `{}` is not read any further for now: {limit}; the child waits until \
                 then, and a later read tries again",
                read.stream.name(),
                pending.program,
            ))),
        };
        read.done.store(true, Ordering::Release);
        Ok(answer)
    }
    fn drop(&mut self, rep: Resource<PendingRead>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl HostState {
    fn start_read(
        &mut self,
        child: &Resource<Child>,
        max: u32,
        stream: Stream,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        let max = usize::try_from(max).unwrap_or(usize::MAX).min(PIPE_BUFFER);
        if max == 0 {
            return Ok(Err(Error::InvalidInput("`max` must be at least 1".into())));
        }
        let child = self.table.get(child)?;
        let pending = PendingRead {
            program: child.program.clone(),
            read: Arc::new(ReadProbe {
                output: Arc::clone(&child.output),
                stream,
                done: AtomicBool::new(false),
            }),
            max,
        };
        Ok(self.push(pending)?.map_err(Error::from))
    }
}

#[host_impl(interface = "airssys:ext/process", crate = "::airssys_contract")]
impl HostChild for HostState {
    fn wait(
        &mut self,
        self_: Resource<Child>,
    ) -> wasmtime::Result<Result<Resource<PendingExit>, Error>> {
        let child = self.table.get(&self_)?;
        let pending = PendingExit {
            program: child.program.clone(),
            exit: Arc::new(ExitProbe {
                process: Arc::clone(&child.process),
            }),
        };
        Ok(self.push(pending)?.map_err(Error::from))
    }

    #[host_fn(capability = "proc:signal")]
    fn send_signal(
        &mut self,
        self_: Resource<Child>,
        signal: Signal,
    ) -> wasmtime::Result<Result<(), Error>> {
        let child = self.table.get(&self_)?;
        Ok(lock(&child.process)
            .signal(signal)
            .map_err(|e| Error::Other(format!("signalling `{}`: {e}", child.program))))
    }

    fn read_stdout(
        &mut self,
        self_: Resource<Child>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        self.start_read(&self_, max, Stream::Stdout)
    }

    fn read_stderr(
        &mut self,
        self_: Resource<Child>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        self.start_read(&self_, max, Stream::Stderr)
    }

    fn drop(&mut self, rep: Resource<Child>) -> wasmtime::Result<()> {
        // Dropping the last reference kills the child's group and reaps it.
        self.table.delete(rep)?;
        Ok(())
    }
}

#[host_impl(interface = "airssys:ext/process", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "proc:spawn")]
    fn spawn(
        &mut self,
        program: String,
        args: Vec<String>,
        env: Vec<KeyValue>,
    ) -> wasmtime::Result<Result<Resource<Child>, Error>> {
        let launch = match self.check_launch(program, args, env) {
            Ok(launch) => launch,
            Err(e) => return Ok(Err(e)),
        };
        let info = Arc::clone(&self.info);
        // Held across the spawn, so instances spawning at once cannot
        // both pass the check.
        let mut running = info.children.lock();
        running.retain(|p| {
            p.upgrade()
                .is_some_and(|p| matches!(lock(&p).poll(), Ok(None)))
        });
        let max = info.limits.max_children;
        if running.len() >= usize::try_from(max).unwrap_or(usize::MAX) {
            return Ok(Err(Error::QuotaExceeded(format!(
                "component `{name}` already has {count} child processes running, its limit \
                 `limits.max_children` = {max}; wait for or drop a child, or raise \
                 `max_children` under `[components.{name}.limits]` in the host policy",
                name = info.name,
                count = running.len(),
            ))));
        }
        match spawn_child(&launch, &self.budget, &self.wake) {
            Ok(child) => {
                running.push(Arc::downgrade(&child.process));
                drop(running);
                // A full handle table drops `child`, which kills it.
                Ok(self.push(child)?.map_err(Error::from))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests;
