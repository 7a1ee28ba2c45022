//! A child's standard output and error as the host holds them for the
//! component: a buffer per stream, charged to the instance's held-bytes
//! budget, filled by one I/O thread per child.
//!
//! The thread polls both pipes, the child's pidfd (Linux: its exit) and a
//! wake-up socket. Before each read it reserves the room it reads into
//! from the instance's budget ([`Budget::reserve_bytes`]); what the
//! component collects is given back. A stream whose buffer is full
//! ([`PIPE_BUFFER`]) or whose reservation is refused (`limits.held_bytes`)
//! is no longer read, so the child blocks on its full pipe; a stream
//! refused for want of budget answers the component's next read of it
//! with the limit error. Collecting bytes, and the component's hearing of
//! the limit, wake the thread to try again.
//!
//! The thread ends at the end of both streams once the child has ended,
//! or as soon as the child's handle is dropped ([`Output::abandon`]),
//! whoever still holds the pipes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::process::{ChildStderr, ChildStdout};
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::event::{PollFd, PollFlags, poll};

use crate::error::LimitExceeded;
use crate::host::budget::{Budget, Hold};
use crate::sync::Notifier;

/// Bytes of one stream buffered before the child is made to wait.
pub(crate) const PIPE_BUFFER: usize = 64 * 1024;
/// Most bytes read from a pipe at once.
const CHUNK: usize = 8 * 1024;

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    /// Standard output.
    Stdout = 0,
    /// Standard error.
    Stderr = 1,
}

impl Stream {
    /// How the stream is named in messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "standard output",
            Stream::Stderr => "standard error",
        }
    }
}

/// The output of one child, shared by its handle, its pending reads and
/// its I/O thread.
#[derive(Debug)]
pub(super) struct Output {
    state: Mutex<State>,
    /// The owning instance's notifier: every change a `poll` may wait
    /// for (new bytes, an end, a refused budget, the exit) notifies it.
    wake: Arc<Notifier>,
}

#[derive(Debug)]
struct State {
    streams: [Buffer; 2],
    /// The handle is gone: nothing will be read any more.
    abandoned: bool,
    /// The write end of the I/O thread's wake-up socket, while the thread
    /// runs (an ended child's handle holds no descriptor).
    nudge: Option<UnixStream>,
}

#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    /// The pipe ended (or failed), or the handle is gone.
    closed: bool,
    /// The I/O thread stopped reading it (buffer full or budget spent)
    /// until it is woken.
    paused: bool,
    /// The budget refused room, and the component has not heard it yet.
    starved: Option<LimitExceeded>,
    /// What the buffered bytes hold of the instance's budget.
    hold: Hold,
}

/// What a read of a stream finds.
#[derive(Debug)]
pub(super) enum Taken {
    /// Bytes, at most the `max` asked for.
    Bytes(Vec<u8>),
    /// The stream has ended and everything was read.
    End,
    /// Nothing yet.
    Nothing,
    /// Nothing, because the budget refused room for more.
    Starved(LimitExceeded),
}

/// The child's exit, for the I/O thread to watch: the pidfd and what to
/// do when it becomes readable.
pub(super) struct ExitWatch {
    pub(super) pidfd: OwnedFd,
    pub(super) on_exit: Box<dyn FnOnce() + Send>,
}

impl Output {
    /// Starts the I/O thread of a child's `stdout` and `stderr`, charging
    /// what it buffers to `budget` and notifying `wake` of each change.
    ///
    /// # Errors
    ///
    /// When the wake-up socket or the thread cannot be made.
    pub(super) fn start(
        stdout: ChildStdout,
        stderr: ChildStderr,
        exit: Option<ExitWatch>,
        budget: &Budget,
        wake: &Arc<Notifier>,
    ) -> io::Result<Arc<Output>> {
        let (nudge, wakeup) = UnixStream::pair()?;
        nudge.set_nonblocking(true)?;
        wakeup.set_nonblocking(true)?;
        let hold = || budget.reserve_bytes(0).map_err(io::Error::other);
        let output = Arc::new(Output {
            state: Mutex::new(State {
                streams: [Buffer::new(hold()?), Buffer::new(hold()?)],
                abandoned: false,
                nudge: Some(nudge),
            }),
            wake: Arc::clone(wake),
        });
        let pipes = [
            Some(nonblocking(stdout.into())?),
            Some(nonblocking(stderr.into())?),
        ];
        let thread = Arc::clone(&output);
        std::thread::Builder::new()
            .name("airssys-child-io".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                thread.run(pipes, wakeup, exit);
                thread.lock().nudge = None;
            })?;
        Ok(output)
    }

    /// Whether the I/O thread still runs.
    #[cfg(test)]
    pub(super) fn thread_running(&self) -> bool {
        self.lock().nudge.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Takes up to `max` buffered bytes of `stream`.
    pub(super) fn take(&self, stream: Stream, max: usize) -> Taken {
        let mut state = self.lock();
        let buffer = &mut state.streams[stream as usize];
        let taken = if !buffer.bytes.is_empty() {
            let n = max.min(buffer.bytes.len());
            let bytes: Vec<u8> = buffer.bytes.drain(..n).collect();
            let left = buffer.bytes.len() as u64;
            buffer.hold.shrink_to(left);
            Taken::Bytes(bytes)
        } else if let Some(limit) = buffer.starved.take() {
            Taken::Starved(limit)
        } else if buffer.closed {
            return Taken::End;
        } else {
            return Taken::Nothing;
        };
        // Room was made, or the component heard of the limit: let the
        // thread try paused streams again.
        let mut paused = false;
        for buffer in &mut state.streams {
            paused |= std::mem::take(&mut buffer.paused);
        }
        if paused {
            state.wake_thread();
        }
        taken
    }

    /// Whether [`Output::take`] would answer something other than
    /// [`Taken::Nothing`].
    pub(super) fn is_ready(&self, stream: Stream) -> bool {
        let state = self.lock();
        let buffer = &state.streams[stream as usize];
        !buffer.bytes.is_empty() || buffer.starved.is_some() || buffer.closed
    }

    /// The handle is gone: the buffers are emptied (their budget given
    /// back) and the I/O thread ends.
    pub(super) fn abandon(&self) {
        let mut state = self.lock();
        state.abandoned = true;
        for buffer in &mut state.streams {
            buffer.bytes = Vec::new();
            buffer.hold.release_bytes();
            buffer.closed = true;
            buffer.starved = None;
        }
        state.wake_thread();
        drop(state);
        self.wake.notify();
    }

    /// The I/O thread.
    fn run(&self, mut pipes: [Option<File>; 2], wakeup: UnixStream, mut exit: Option<ExitWatch>) {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let wanted = {
                let state = self.lock();
                if state.abandoned {
                    return;
                }
                let wanted = |i: usize| pipes[i].is_some() && !state.streams[i].paused;
                [wanted(0), wanted(1)]
            };
            if pipes.iter().all(Option::is_none) && exit.is_none() {
                return;
            }
            let mut fds = Vec::with_capacity(4);
            fds.push(PollFd::new(&wakeup, PollFlags::IN));
            for (pipe, wanted) in pipes.iter().zip(wanted) {
                if let (Some(pipe), true) = (pipe, wanted) {
                    fds.push(PollFd::new(pipe, PollFlags::IN));
                }
            }
            if let Some(exit) = &exit {
                fds.push(PollFd::new(&exit.pidfd, PollFlags::IN));
            }
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                // Cannot wait (should not happen): end, the handle's drop
                // still ends the child.
                Err(_) => return,
            }
            let mut ready = fds.iter().map(|fd| !fd.revents().is_empty());
            let woken = ready.next().unwrap_or(false);
            let mut readable = [false; 2];
            for (i, wanted) in wanted.iter().enumerate() {
                if pipes[i].is_some() && *wanted {
                    readable[i] = ready.next().unwrap_or(false);
                }
            }
            let exited = exit.is_some() && ready.next().unwrap_or(false);
            drop(fds);
            if woken {
                drain(&wakeup);
            }
            for (i, pipe) in pipes.iter_mut().enumerate() {
                if readable[i] {
                    self.pump(i, pipe, &mut chunk);
                }
            }
            if exited && let Some(exit) = exit.take() {
                (exit.on_exit)();
                self.wake.notify();
            }
        }
    }

    /// Reads what `pipe` has into stream `i`, within the room the buffer
    /// and the budget give; `pipe` becomes `None` at its end.
    fn pump(&self, i: usize, pipe: &mut Option<File>, chunk: &mut [u8]) {
        let Some(file) = pipe else { return };
        let Some(room) = self.reserve(i) else { return };
        let read = loop {
            match file.read(&mut chunk[..room]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let mut state = self.lock();
        let buffer = &mut state.streams[i];
        match read {
            Ok(n) if n > 0 => {
                if !buffer.closed {
                    buffer.bytes.extend_from_slice(&chunk[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The end, or a failed pipe.
            _ => {
                buffer.closed = true;
                *pipe = None;
            }
        }
        let held = buffer.bytes.len() as u64;
        buffer.hold.shrink_to(held);
        drop(state);
        self.wake.notify();
    }

    /// Reserves room to read into stream `i`: `None` (and the stream
    /// paused) when its buffer is full or the budget has no room left.
    fn reserve(&self, i: usize) -> Option<usize> {
        let mut state = self.lock();
        let buffer = &mut state.streams[i];
        if buffer.closed {
            return None;
        }
        let room = PIPE_BUFFER.saturating_sub(buffer.bytes.len()).min(CHUNK);
        if room == 0 {
            buffer.paused = true;
            return None;
        }
        let refused = match buffer.hold.try_grow(room as u64) {
            Ok(()) => return Some(room),
            Err(refused) => refused,
        };
        // Read what still fits, if anything does.
        if let LimitExceeded::HeldBytes { limit, wanted, .. } = &refused {
            let held = wanted.saturating_sub(room as u64);
            let fits = usize::try_from(limit.saturating_sub(held)).unwrap_or(0);
            if fits > 0 && buffer.hold.try_grow(fits as u64).is_ok() {
                return Some(fits);
            }
        }
        buffer.paused = true;
        buffer.starved = Some(refused);
        drop(state);
        self.wake.notify();
        None
    }
}

impl State {
    fn wake_thread(&self) {
        if let Some(mut nudge) = self.nudge.as_ref() {
            // A full socket already holds a wake-up.
            let _ = nudge.write(&[1]);
        }
    }
}

impl Buffer {
    fn new(hold: Hold) -> Buffer {
        Buffer {
            bytes: Vec::new(),
            closed: false,
            paused: false,
            starved: None,
            hold,
        }
    }
}

fn nonblocking(fd: OwnedFd) -> io::Result<File> {
    rustix::io::ioctl_fionbio(&fd, true)?;
    Ok(File::from(fd))
}

/// Empties the wake-up socket.
fn drain(mut wakeup: &UnixStream) {
    let mut sink = [0u8; 64];
    while matches!(wakeup.read(&mut sink), Ok(n) if n > 0) {}
}
