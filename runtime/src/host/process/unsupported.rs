//! Child processes need a Unix host (sessions, process groups, rlimits,
//! one thread polling a child's pipes): elsewhere `spawn` answers `other`
//! after its checks, and nothing runs.

pub(super) mod child {
    use std::io;

    use super::super::super::bindings::airssys::ext::process::Signal;
    use super::super::check::Launch;

    /// How a child ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[allow(dead_code)] // no child ends here
    pub(in crate::host::process) enum Ended {
        /// It exited with this code.
        Code(i32),
        /// A signal with this number ended it.
        Signaled(u32),
    }

    /// Never made on this platform.
    #[derive(Debug)]
    pub(in crate::host::process) struct Process;

    /// Never made on this platform.
    pub(in crate::host::process) struct Started {
        pub(in crate::host::process) process: Process,
        pub(in crate::host::process) stdout: std::process::ChildStdout,
        pub(in crate::host::process) stderr: std::process::ChildStderr,
    }

    impl Process {
        pub(in crate::host::process) fn start(_launch: &Launch) -> io::Result<Started> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "child processes are supported on Unix hosts only",
            ))
        }
        pub(in crate::host::process) fn poll(&mut self) -> io::Result<Option<Ended>> {
            Ok(None)
        }
        pub(in crate::host::process) fn signal(&self, _signal: Signal) -> io::Result<()> {
            Ok(())
        }
        pub(in crate::host::process) fn end(&mut self) {}
    }
}

pub(super) mod output {
    use std::io;
    use std::sync::Arc;

    use crate::error::LimitExceeded;
    use crate::host::budget::Budget;

    /// Bytes of one stream buffered before the child is made to wait.
    pub(crate) const PIPE_BUFFER: usize = 64 * 1024;

    /// Which output stream.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(in crate::host::process) enum Stream {
        /// Standard output.
        Stdout,
        /// Standard error.
        Stderr,
    }

    impl Stream {
        pub(in crate::host::process) fn name(self) -> &'static str {
            match self {
                Stream::Stdout => "standard output",
                Stream::Stderr => "standard error",
            }
        }
    }

    /// Never made on this platform.
    #[derive(Debug)]
    pub(in crate::host::process) struct Output;

    /// What a read of a stream finds.
    #[derive(Debug)]
    #[allow(dead_code)]
    pub(in crate::host::process) enum Taken {
        Bytes(Vec<u8>),
        End,
        Nothing,
        Starved(LimitExceeded),
    }

    /// Never made on this platform.
    pub(in crate::host::process) struct ExitWatch;

    impl Output {
        pub(in crate::host::process) fn start(
            _stdout: std::process::ChildStdout,
            _stderr: std::process::ChildStderr,
            _exit: Option<ExitWatch>,
            _budget: &Budget,
            _wake: &Arc<crate::sync::Notifier>,
        ) -> io::Result<Arc<Output>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub(in crate::host::process) fn take(&self, _stream: Stream, _max: usize) -> Taken {
            Taken::End
        }
        pub(in crate::host::process) fn is_ready(&self, _stream: Stream) -> bool {
            true
        }
        pub(in crate::host::process) fn abandon(&self) {}
    }
}
