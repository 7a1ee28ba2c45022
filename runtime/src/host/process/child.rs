//! The child process itself: started by the path that was checked, in a
//! session (and process group) of its own with the policy's rlimits; its
//! exit read without reaping it, so its process id (and group id) stays
//! its own until the host kills the group and reaps it.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};

use rustix::process::{Pid, Signal as Sig, WaitId, WaitIdOptions};

use super::super::bindings::airssys::ext::process::Signal;
use super::check::Launch;
use crate::policy::ChildLimits;

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// It exited with this code.
    Code(i32),
    /// A signal with this number ended it.
    Signaled(u32),
}

/// A started child and the group it leads.
///
/// The child is reaped only once its group has been killed (when it is
/// seen to have ended, or by [`Process::end`]): until then it is at worst
/// a zombie holding its id, which is also its group's, so `kill(-id)`
/// reaches its own group and nothing else.
#[derive(Debug)]
pub(super) struct Process {
    child: std::process::Child,
    pid: Pid,
    ended: Option<Ended>,
    reaped: bool,
}

/// A child just started: the process and its output pipes.
pub(super) struct Started {
    pub(super) process: Process,
    pub(super) stdout: ChildStdout,
    pub(super) stderr: ChildStderr,
}

impl Process {
    /// Starts `launch`: the resolved path (no second lookup), `argv[0]` the
    /// path the component asked for, exactly the checked arguments and
    /// environment, `/` as working directory, empty standard input, output
    /// piped, in a new session with the policy's rlimits.
    ///
    /// # Errors
    ///
    /// The `spawn` error, as the standard library reports it.
    pub(super) fn start(launch: &Launch) -> io::Result<Started> {
        let mut command = Command::new(&launch.resolved);
        command
            .arg0(&launch.program)
            .args(&launch.args)
            .env_clear()
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        confine(&mut command, launch.rlimits);
        let mut child = command.spawn()?;
        let Some(pid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("the child's process id is out of range"));
        };
        let mut process = Process {
            child,
            pid,
            ended: None,
            reaped: false,
        };
        match (process.child.stdout.take(), process.child.stderr.take()) {
            (Some(stdout), Some(stderr)) => Ok(Started {
                process,
                stdout,
                stderr,
            }),
            // Piped output always gives the pipes; dropping `process` would
            // end the child.
            _ => Err(io::Error::other("the child's output pipes are missing")),
        }
    }

    /// The child's process id.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // for the pidfd
    pub(super) fn pid(&self) -> Pid {
        self.pid
    }

    /// How the child ended, once it has (never waits). The first time the
    /// end is seen, whatever the child left running in its group is killed
    /// (a child's group lives no longer than the child), then the child is
    /// reaped: an ended child holds no process slot.
    pub(super) fn poll(&mut self) -> io::Result<Option<Ended>> {
        if self.ended.is_none() && !self.reaped {
            // `NOWAIT`: still unreaped, so the group id is still its own
            // for the kill.
            let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
            if let Some(status) = rustix::process::waitid(WaitId::Pid(self.pid), options)? {
                self.ended = Some(match (status.exit_status(), status.terminating_signal()) {
                    (Some(code), _) => Ended::Code(code),
                    (None, Some(signal)) => Ended::Signaled(signal.unsigned_abs()),
                    (None, None) => Ended::Code(-1),
                });
                self.end();
            }
        }
        Ok(self.ended)
    }

    /// Sends `signal` to the child (its group leader only).
    pub(super) fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        let signal = match signal {
            Signal::Terminate => Sig::TERM,
            Signal::Kill => Sig::KILL,
            Signal::Interrupt => Sig::INT,
        };
        // Unreaped, so the id is still this child's.
        rustix::process::kill_process(self.pid, signal).map_err(io::Error::from)
    }

    /// Kills the child's group (the child and everything it started that
    /// stayed in its session) and reaps the child. Idempotent.
    pub(super) fn end(&mut self) {
        if self.reaped {
            return;
        }
        self.kill_group();
        if let Ok(status) = self.child.wait() {
            self.ended.get_or_insert_with(|| ended(status));
        }
        self.reaped = true;
    }

    fn kill_group(&self) {
        if !self.reaped {
            // ESRCH: the group is empty already.
            let _ = rustix::process::kill_process_group(self.pid, Sig::KILL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.end();
    }
}

fn ended(status: std::process::ExitStatus) -> Ended {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ended::Code(code),
        (None, Some(signal)) => Ended::Signaled(signal.unsigned_abs()),
        (None, None) => Ended::Code(-1),
    }
}

/// Puts the child, between `fork` and `exec`, in a new session — so in a
/// new process group it leads, with no controlling terminal (it cannot
/// open the operator's `/dev/tty`) — and applies `limits`.
///
/// This is the runtime's one `unsafe` block: the standard library's
/// `CommandExt::setsid` is unstable, and rlimits set from outside after
/// the spawn (`prlimit`) would race with the child's first `fork`. See
/// docs/decisions/containment-process.md.
#[allow(unsafe_code)]
fn confine(command: &mut Command, limits: ChildLimits) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit, setsid};

    // Never above the host's own hard limit, which the child inherits and
    // could not raise: the policy can only lower it.
    let within = |resource: Resource, soft: Option<u64>, hard: Option<u64>| {
        let host = getrlimit(resource).maximum;
        let clamp = |v: Option<u64>| v.map(|v| host.map_or(v, |h| v.min(h)));
        (resource, clamp(soft), clamp(hard))
    };
    let cpu_hard = limits.cpu_seconds.map(|s| s.saturating_add(1));
    let address_space = limits.address_space_bytes;
    let limits = [
        within(Resource::Nproc, limits.processes, limits.processes),
        within(Resource::Cpu, limits.cpu_seconds, cpu_hard),
        within(Resource::As, address_space, address_space),
    ];
    // SAFETY: the closure runs in the forked child before `exec`, where
    // only async-signal-safe work is allowed. It makes raw system calls
    // through rustix (`setsid`, `setrlimit`) on a copied array: no
    // allocation, no lock, no shared state; errors become `io::Error`
    // from a raw OS code, which allocates nothing either.
    unsafe {
        command.pre_exec(move || {
            setsid()?;
            for (resource, current, maximum) in limits {
                if current.is_some() {
                    setrlimit(resource, Rlimit { current, maximum })?;
                }
            }
            Ok(())
        });
    }
}
