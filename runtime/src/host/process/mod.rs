//! `airssys:ext/process`: child processes of a component.
//!
//! - `spawn` is guarded by `proc:spawn:{program}` (an absolute path). The
//!   child gets exactly the arguments given, an empty standard input, `/`
//!   as its working directory, and exactly the environment given, which is
//!   checked entry by entry: a variable the component may not read
//!   (`env:read:<name>`) is denied, and loader variables (`LD_*`, `DYLD_*`)
//!   are refused whatever the grants say. Nothing of the host's own
//!   environment is inherited.
//! - The child is a resource of the instance: dropping it (or the
//!   instance) kills the child if it still runs and reaps it.
//! - Standard output and error are drained by one thread each into a
//!   bounded buffer ([`PIPE_BUFFER`] bytes); when the buffer is full the
//!   thread stops reading, so a chatty child blocks instead of growing
//!   host memory.
//! - `send-signal` is guarded by `proc:signal:{self}` (the program path
//!   the child was spawned from). A component can only name its own
//!   children: it has no other handle to a process.
//! - At most `limits.max_children` children (default
//!   [`DEFAULT_MAX_CHILDREN`](crate::policy::DEFAULT_MAX_CHILDREN)) of one
//!   component run at once, across its instances; `spawn` beyond that
//!   answers `quota-exceeded` naming the limit. A child counts until it has
//!   ended (dropping its handle kills it).
//! - `get` never waits; `subscribe` gives a pollable that is ready when
//!   `get` would answer (see [`super::poll`]). Output readers wake a
//!   waiting `poll` on new bytes and at the end of a stream; a child's exit
//!   wakes it through a waiter thread per child (Linux: blocked on the
//!   child's pidfd without reaping it, see [`watch_exit`]; elsewhere the
//!   `poll` backoff notices the exit). The end of the output streams is
//!   not taken for an exit: a grandchild may hold them open, a child may
//!   close them and run on.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use airssys_contract::capability::{Action, Domain};
use airssys_macros::host_impl;
use wasmtime::component::Resource;

use super::bindings::airssys::ext::process::{
    Error, ExitStatus, Host, HostChild, HostPendingExit, HostPendingRead, KeyValue, Pollable,
    Signal,
};
use super::poll::{Readiness, wake};
use super::state::HostState;

/// Bytes of output buffered per stream before the child is made to wait.
pub(crate) const PIPE_BUFFER: usize = 64 * 1024;

/// One captured output stream, filled by its reader thread.
#[derive(Debug, Default)]
struct Pipe {
    state: Mutex<PipeState>,
    /// Signalled when the component takes bytes (room for the reader).
    drained: Condvar,
}

#[derive(Debug, Default)]
struct PipeState {
    bytes: Vec<u8>,
    /// The stream ended (or failed).
    closed: bool,
    /// The child handle is gone: the reader stops waiting for room.
    abandoned: bool,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the thread that drains `source` into this pipe.
    fn start(self: &Arc<Self>, mut source: impl Read + Send + 'static, name: &str) {
        let pipe = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("airssys-child-{name}"))
            .spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match source.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let mut state = pipe.lock();
                    while state.bytes.len() + n > PIPE_BUFFER
                        && !state.bytes.is_empty()
                        && !state.abandoned
                    {
                        state = pipe.drained.wait(state).unwrap_or_else(|p| p.into_inner());
                    }
                    if state.abandoned {
                        break;
                    }
                    state.bytes.extend_from_slice(&chunk[..n]);
                    drop(state);
                    wake();
                }
                pipe.lock().closed = true;
                wake();
            });
        if spawned.is_err() {
            self.lock().closed = true;
        }
    }

    /// Lets the reader thread end: nobody will take more bytes.
    fn abandon(&self) {
        self.lock().abandoned = true;
        self.drained.notify_all();
    }

    /// Whether [`Pipe::take`] would answer `Some`.
    fn has_data(&self) -> bool {
        let state = self.lock();
        !state.bytes.is_empty() || state.closed
    }

    /// Up to `max` buffered bytes; `Some(empty)` at the end of the
    /// stream; `None` while nothing has arrived yet.
    fn take(&self, max: usize) -> Option<Vec<u8>> {
        let mut state = self.lock();
        if state.bytes.is_empty() {
            return state.closed.then(Vec::new);
        }
        let n = max.min(state.bytes.len());
        let out: Vec<u8> = state.bytes.drain(..n).collect();
        drop(state);
        self.drained.notify_all();
        Some(out)
    }
}

/// The process itself, shared by the `child` handle and its waits.
#[derive(Debug)]
struct Process {
    child: std::process::Child,
    status: Option<std::process::ExitStatus>,
}

impl Process {
    /// The exit status, once the child has ended (reaps it).
    fn poll(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.poll(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lock(process: &Mutex<Process>) -> MutexGuard<'_, Process> {
    process.lock().unwrap_or_else(|p| p.into_inner())
}

/// A child process of the component.
#[derive(Debug)]
#[allow(unreachable_pub)] // re-exported by the generated bindings
pub struct Child {
    /// The program path it was spawned from (the `{self}` of
    /// `proc:signal`).
    pub(crate) program: String,
    process: Arc<Mutex<Process>>,
    stdout: Arc<Pipe>,
    stderr: Arc<Pipe>,
}

impl Drop for Child {
    fn drop(&mut self) {
        // The WIT promises: dropping the handle kills a running child,
        // even while a `pending-exit` still refers to it.
        let mut process = lock(&self.process);
        if matches!(process.poll(), Ok(None)) {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        drop(process);
        self.stdout.abandon();
        self.stderr.abandon();
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
        self.running.lock().unwrap_or_else(|p| p.into_inner())
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
    /// Held only here, so a pollable notices when this handle is dropped.
    read: Arc<ReadProbe>,
    max: usize,
}

#[derive(Debug)]
struct ReadProbe {
    pipe: Arc<Pipe>,
    /// The result was taken (`get` then answers an error at once).
    done: AtomicBool,
}

impl Readiness for ReadProbe {
    fn is_ready(&self) -> bool {
        self.done.load(Ordering::Acquire) || self.pipe.has_data()
    }
}

/// Whether `name` is a dynamic loader variable (never passed to a child).
fn is_loader_variable(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("LD_") || upper.starts_with("DYLD_")
}

impl HostState {
    /// Checks the environment a component asks for, entry by entry.
    fn check_child_env(&self, env: &[KeyValue]) -> Result<(), Error> {
        for KeyValue { key, value } in env {
            if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                return Err(Error::InvalidInput(format!(
                    "environment variable `{key}`: a name must be non-empty without `=` or NUL, \
                     a value without NUL"
                )));
            }
            if is_loader_variable(key) {
                return Err(Error::InvalidInput(format!(
                    "environment variable `{key}` is refused: dynamic loader variables \
                     (`LD_*`, `DYLD_*`) are never passed to a child"
                )));
            }
            if !self.is_granted(Domain::Env, Action::Read, key) {
                return Err(Error::Denied(format!(
                    "component `{}` may not pass `{key}` to a child: that needs `env:read:{key}`; \
                     grant it in the host policy",
                    self.name()
                )));
            }
        }
        Ok(())
    }
}

fn spawn_child(program: &str, args: &[String], env: &[KeyValue]) -> Result<Child, Error> {
    if args.iter().any(|a| a.contains('\0')) {
        return Err(Error::InvalidInput(
            "an argument contains a NUL byte".into(),
        ));
    }
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|kv| (&kv.key, &kv.value)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Error::NotFound(
            format!("cannot run `{program}`: no executable program at that path ({e})"),
        ),
        _ => Error::Other(format!("cannot run `{program}`: {e}")),
    })?;
    watch_exit(&child);
    let stdout = Arc::new(Pipe::default());
    let stderr = Arc::new(Pipe::default());
    match child.stdout.take() {
        Some(out) => stdout.start(out, "stdout"),
        None => stdout.lock().closed = true,
    }
    match child.stderr.take() {
        Some(err) => stderr.start(err, "stderr"),
        None => stderr.lock().closed = true,
    }
    Ok(Child {
        program: program.to_owned(),
        process: Arc::new(Mutex::new(Process {
            child,
            status: None,
        })),
        stdout,
        stderr,
    })
}

/// Starts a thread that calls [`wake`] once `child` has ended, so a
/// `poll` on its `pending-exit` returns at once.
///
/// The thread waits on a pidfd, opened here while the child cannot have
/// been reaped yet (the caller holds it unwaited), so it names this child
/// and no process that reuses its id later. It waits with `WNOWAIT`: the
/// exit status stays with the child for the host's own `try_wait`, so the
/// two never race over it. It ends when the child ends — which dropping
/// the handle forces (kill and reap) — or at once when the kernel lacks
/// pidfds (Linux < 5.4), leaving the exit to the `poll` backoff.
#[cfg(target_os = "linux")]
fn watch_exit(child: &std::process::Child) {
    use rustix::fd::AsFd;
    use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, pidfd_open, waitid};

    let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        return;
    };
    let Ok(pidfd) = pidfd_open(pid, PidfdFlags::empty()) else {
        return;
    };
    // A failed spawn leaves the exit to the backoff too.
    let _ = std::thread::Builder::new()
        .name("airssys-child-exit".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
            while let Err(rustix::io::Errno::INTR) = waitid(WaitId::PidFd(pidfd.as_fd()), options) {
            }
            // Ended (or reaped by the host first, or no `P_PIDFD`): either
            // way `try_wait` now answers, or the backoff takes over.
            wake();
        });
}

/// Without pidfds a waiter could only name the child by its id, which
/// the host's own reaping may free for reuse: the `poll` backoff notices
/// the exit instead.
#[cfg(not(target_os = "linux"))]
fn watch_exit(_child: &std::process::Child) {}

fn exit_status(status: std::process::ExitStatus) -> ExitStatus {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return ExitStatus::Signaled(signal.unsigned_abs());
        }
    }
    ExitStatus::Code(status.code().unwrap_or(-1))
}

#[cfg(unix)]
fn send(child: &std::process::Child, signal: Signal) -> std::io::Result<()> {
    use rustix::process::{Pid, Signal as Sig, kill_process};
    let signal = match signal {
        Signal::Terminate => Sig::TERM,
        Signal::Kill => Sig::KILL,
        Signal::Interrupt => Sig::INT,
    };
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("child id out of range"))?;
    kill_process(pid, signal).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn send(_child: &std::process::Child, _signal: Signal) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "signals other than kill are not supported on this platform",
    ))
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
        let bytes = read.pipe.take(pending.max);
        if bytes.is_some() {
            read.done.store(true, Ordering::Release);
        }
        Ok(Ok(bytes))
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
        stderr: bool,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        let child = self.table.get(child)?;
        let pipe = Arc::clone(if stderr { &child.stderr } else { &child.stdout });
        let max = usize::try_from(max).unwrap_or(usize::MAX).min(PIPE_BUFFER);
        if max == 0 {
            return Ok(Err(Error::InvalidInput("`max` must be at least 1".into())));
        }
        Ok(Ok(self.table.push(PendingRead {
            read: Arc::new(ReadProbe {
                pipe,
                done: AtomicBool::new(false),
            }),
            max,
        })?))
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
        Ok(Ok(self.table.push(pending)?))
    }

    #[host_fn(capability = "proc:signal")]
    fn send_signal(
        &mut self,
        self_: Resource<Child>,
        signal: Signal,
    ) -> wasmtime::Result<Result<(), Error>> {
        let child = self.table.get(&self_)?;
        let mut process = lock(&child.process);
        // Only a child not yet reaped is signalled: its id cannot have
        // been reused by another process.
        match process.poll() {
            Ok(None) => {}
            Ok(Some(_)) => return Ok(Ok(())),
            Err(e) => return Ok(Err(Error::Other(format!("`{}`: {e}", child.program)))),
        }
        Ok(send(&process.child, signal)
            .map_err(|e| Error::Other(format!("signalling `{}`: {e}", child.program))))
    }

    fn read_stdout(
        &mut self,
        self_: Resource<Child>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        self.start_read(&self_, max, false)
    }

    fn read_stderr(
        &mut self,
        self_: Resource<Child>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        self.start_read(&self_, max, true)
    }

    fn drop(&mut self, rep: Resource<Child>) -> wasmtime::Result<()> {
        // Dropping the last reference kills and reaps a running child.
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
        if let Err(e) = self.check_child_env(&env) {
            return Ok(Err(e));
        }
        let info = std::sync::Arc::clone(&self.info);
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
        match spawn_child(&program, &args, &env) {
            Ok(child) => {
                running.push(Arc::downgrade(&child.process));
                drop(running);
                Ok(Ok(self.table.push(child)?))
            }
            Err(e) => Ok(Err(e)),
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// Threads of this process started for children (`airssys-child-*`;
    /// the kernel keeps 15 bytes of a thread's name). No other test of
    /// this crate spawns children.
    fn child_threads(kind: &str) -> usize {
        let prefix = format!("airssys-child-{kind}");
        let prefix = &prefix[..prefix.len().min(15)];
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end().starts_with(prefix))
            .count()
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn the_exit_waiter_leaves_the_status_to_the_host_and_ends_with_the_child() {
        // Exits on its own while the handle is kept: the host's `try_wait`
        // still gets the status (a waiter that reaped would leave it an
        // error, "no child process").
        let child = spawn_child("/bin/sh", &["-c".into(), "exit 3".into()], &[]).expect("spawn");
        let mut status = Ok(None);
        wait_for("the child never ended", || {
            status = lock(&child.process).poll();
            !matches!(status, Ok(None))
        });
        let code = status
            .expect("the host reaps the child")
            .and_then(|s| s.code());
        assert_eq!(code, Some(3));
        drop(child);
        // Killed by dropping the handle: every thread of the child ends.
        let child = spawn_child("/bin/sleep", &["30".into()], &[]).expect("spawn");
        wait_for("one exit waiter per child", || child_threads("exit") == 1);
        drop(child);
        wait_for("a thread outlived its dropped child", || {
            child_threads("") == 0
        });
    }
}
