//! `airssys:core/logging`, and the one path every record of a component
//! takes into the host's log.
//!
//! - Records go into `tracing` with target `airssys::component` and the
//!   fields `component` (its name), `target` and `stream`: `log` for the
//!   component's own records (`target` is the one it gave), `stdout` and
//!   `stderr` for its WASI output lines (see `host/wasi.rs`; `target` is
//!   the stream's name).
//! - `log` checks the request `log:write:<level>`, so a grant
//!   `log:write:warn` admits `warn` and `error` records only. stdout lines
//!   are `info` records and stderr lines `warn` records, shown under the
//!   same grants.
//! - Rate: a component may emit `limits.log_lines_per_second` records of
//!   at most `limits.log_bytes_per_second` bytes in all per second,
//!   counted across its instances and shared by `log`, stdout and stderr.
//!   A record beyond either is dropped (`log` answers `quota-exceeded`
//!   naming the key). Drops are never silent: a `warn` event of target
//!   `airssys::output` ("N records dropped by limits.x") says how many,
//!   when the next window starts and at the end of each call into the
//!   component.
//! - stdout and stderr become records line by line: a line ends at a line
//!   break, after [`MAX_LINE`] bytes, or at the end of the call into the
//!   component (a WASI `flush` does not end a line, so `eprintln!`'s
//!   separate writes of text and line break make one record).
//! - Whatever the grants, each instance keeps the last [`TAIL`] bytes
//!   written to stdout and to stderr in the current call; a trap error
//!   quotes them ([`InstanceLog::written_before`]), for the host only.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use airssys_contract::capability::{Action, Domain, GrantSet, Request};
use airssys_contract::guard::HostFnGuard;
use airssys_contract::text::printable;

use super::bindings::airssys::core::logging::{Error, Host, Level};
use super::state::HostState;
use crate::policy::ResolvedLimits;
use crate::rate::ComponentMeters;

/// Longest message accepted, in bytes.
const MAX_MESSAGE: usize = 64 * 1024;

/// The `tracing` target of the host's notes about a component's output
/// (records dropped by a limit, output without a grant).
pub(crate) const OUTPUT_TARGET: &str = "airssys::output";

static LOG: HostFnGuard = HostFnGuard::new(
    "airssys:core/logging#log",
    "log:write",
    Domain::Log,
    Action::Write,
);

pub(crate) fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn host_enabled(level: Level) -> bool {
    match level {
        Level::Trace => tracing::enabled!(target: "airssys::component", tracing::Level::TRACE),
        Level::Debug => tracing::enabled!(target: "airssys::component", tracing::Level::DEBUG),
        Level::Info => tracing::enabled!(target: "airssys::component", tracing::Level::INFO),
        Level::Warn => tracing::enabled!(target: "airssys::component", tracing::Level::WARN),
        Level::Error => tracing::enabled!(target: "airssys::component", tracing::Level::ERROR),
    }
}

/// Where a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// `logging.log`.
    Log,
    /// A WASI stdout line (an `info` record).
    Stdout,
    /// A WASI stderr line (a `warn` record).
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Log => "log",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Writes one record of `component` to `tracing`.
pub(crate) fn emit(component: &str, level: Level, stream: Stream, target: &str, message: &str) {
    let stream = stream.name();
    match level {
        Level::Trace => {
            tracing::trace!(target: "airssys::component", component, target, stream, "{message}")
        }
        Level::Debug => {
            tracing::debug!(target: "airssys::component", component, target, stream, "{message}")
        }
        Level::Info => {
            tracing::info!(target: "airssys::component", component, target, stream, "{message}")
        }
        Level::Warn => {
            tracing::warn!(target: "airssys::component", component, target, stream, "{message}")
        }
        Level::Error => {
            tracing::error!(target: "airssys::component", component, target, stream, "{message}")
        }
    }
}

/// What one instance sends to the log: its component's shared window and
/// per-second limits, and its stdout and stderr (whether they are shown,
/// and the unfinished line of each).
#[derive(Debug)]
pub(crate) struct InstanceLog {
    component: String,
    meters: Arc<ComponentMeters>,
    /// Records, bytes.
    per_second: [u64; 2],
    /// stdout, stderr.
    outputs: [Output; 2],
}

/// One of the instance's WASI output streams.
#[derive(Debug, Default)]
struct Output {
    /// Whether the component holds `log:write` for the stream's level.
    shown: bool,
    /// Bytes of an unfinished line.
    partial: Mutex<Vec<u8>>,
    /// Whether the host said that the stream is dropped for want of a
    /// grant.
    told: AtomicBool,
    /// The last [`TAIL`] bytes written during the current call, shown or
    /// not: what a trap error quotes.
    tail: Mutex<Tail>,
    /// Whether `tail` may hold bytes: set after each write's bytes are in
    /// it, cleared when a call's start forgets them. A call into a
    /// component that wrote nothing takes neither lock (twice per call).
    tail_written: AtomicBool,
    /// Whether `partial` may hold bytes: set after each write's bytes are
    /// in it, cleared when the call's end emits them.
    partial_written: AtomicBool,
}

/// Bytes a stream kept for a trap error, per instance and stream.
pub(crate) const TAIL: usize = 4 * 1024;

/// The last [`TAIL`] bytes of a stream in the current call.
#[derive(Debug, Default)]
struct Tail {
    bytes: VecDeque<u8>,
    /// Whether earlier bytes were let go.
    cut: bool,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        let keep = &bytes[bytes.len().saturating_sub(TAIL)..];
        self.cut |= keep.len() < bytes.len();
        self.bytes.extend(keep);
        let over = self.bytes.len().saturating_sub(TAIL);
        if over > 0 {
            self.bytes.drain(..over);
            self.cut = true;
        }
    }
}

/// The policy keys of the two quotas, in [`InstanceLog::per_second`]
/// order.
const KEYS: [&str; 2] = ["log_lines_per_second", "log_bytes_per_second"];

/// Longest line of stdout or stderr kept before it is emitted anyway.
pub(crate) const MAX_LINE: usize = 64 * 1024;

impl InstanceLog {
    pub(crate) fn new(
        component: &str,
        grants: &GrantSet,
        meters: Arc<ComponentMeters>,
        limits: &ResolvedLimits,
    ) -> InstanceLog {
        let output = |level: Level| Output {
            shown: Request::new(Domain::Log, Action::Write, level_name(level))
                .is_ok_and(|r| grants.check(&r).is_allowed()),
            ..Output::default()
        };
        InstanceLog {
            component: component.to_owned(),
            meters,
            per_second: [limits.log_lines_per_second, limits.log_bytes_per_second],
            outputs: [output(Level::Info), output(Level::Warn)],
        }
    }

    /// Charges one record of `bytes` bytes: `true` when it may be emitted.
    fn admit(&self, bytes: usize) -> bool {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let charge = self.meters.log.charge(self.per_second, [1, bytes]);
        if let Some(dropped) = charge.ended {
            self.say_dropped(dropped);
        }
        charge.admitted
    }

    /// The end of a call into the component: emits the unfinished lines of
    /// stdout and stderr and says how many records were dropped since the
    /// last time.
    pub(crate) fn end_of_call(&self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.flush(stream);
        }
        if let Some(dropped) = self.meters.log.take_dropped() {
            self.say_dropped(dropped);
        }
    }

    /// The start of a call into the component: forgets what it wrote in
    /// earlier calls, so a trap error quotes the failed call's output only.
    pub(crate) fn start_of_call(&self) {
        for output in &self.outputs {
            // A write racing this (from another thread) lands before or
            // after the reset, as it would without the flag: its flag is
            // set after its bytes, so the next start sees it.
            // A plain load first: no atomic write while nothing was written.
            if output.tail_written.load(Ordering::Acquire)
                && output.tail_written.swap(false, Ordering::AcqRel)
            {
                *crate::sync::lock(&output.tail) = Tail::default();
            }
        }
    }

    /// What the component wrote to stderr and stdout in the current call
    /// (the last [`TAIL`] bytes of each, whatever its grants), for the
    /// error of a trap or a limit (`event`, as in "the component wrote
    /// before {event}"): labelled, one line of the output per line, control
    /// and bidirectional characters escaped; `None` when it wrote nothing.
    /// The text goes to the host only, never to another component.
    pub(crate) fn written_before(&self, event: &str) -> Option<String> {
        let mut text = String::new();
        for (name, output) in [("stderr", &self.outputs[1]), ("stdout", &self.outputs[0])] {
            let tail = crate::sync::lock(&output.tail);
            if tail.bytes.is_empty() {
                continue;
            }
            let bytes: Vec<u8> = tail.bytes.iter().copied().collect();
            let written = String::from_utf8_lossy(&bytes);
            if tail.cut {
                let _ = write!(
                    text,
                    "\n  {name}: (earlier output cut; the last {TAIL} bytes)"
                );
            }
            for line in written.trim_matches('\n').split('\n') {
                let _ = write!(text, "\n  {name}: {}", printable(line));
            }
        }
        (!text.is_empty()).then(|| format!("the component wrote before {event}:{text}"))
    }

    fn say_dropped(&self, dropped: [u64; 2]) {
        let component = self.component.as_str();
        for ((count, key), per_second) in dropped.into_iter().zip(KEYS).zip(self.per_second) {
            if count == 0 {
                continue;
            }
            let limit = format!("limits.{key}");
            tracing::warn!(
                target: OUTPUT_TARGET,
                component,
                dropped = count,
                limit = limit.as_str(),
                "{count} records of component `{component}` dropped by {limit} ({per_second} per \
                 second)"
            );
        }
    }

    /// The `quota-exceeded` text of a dropped `log` record.
    fn refusal(&self) -> String {
        let [lines, bytes] = self.per_second;
        format!(
            "log rate limit reached: component `{}` may emit {lines} records and {bytes} bytes \
             per second (stdout and stderr lines included); the record was dropped (raise \
             `limits.log_lines_per_second` or `limits.log_bytes_per_second` in the policy)",
            self.component
        )
    }

    fn output(&self, stream: Stream) -> &Output {
        match stream {
            Stream::Stderr => &self.outputs[1],
            Stream::Log | Stream::Stdout => &self.outputs[0],
        }
    }

    /// Bytes the component wrote to `stream` (stdout or stderr): each
    /// complete line, and each [`MAX_LINE`] bytes without a line break,
    /// is a record.
    pub(crate) fn write(&self, stream: Stream, bytes: &[u8]) {
        let output = self.output(stream);
        crate::sync::lock(&output.tail).push(bytes);
        output.tail_written.store(true, Ordering::Release);
        if !output.shown {
            self.tell_not_shown(stream);
            return;
        }
        let mut partial = crate::sync::lock(&output.partial);
        // In pieces, so no line grows past `MAX_LINE` whatever one write
        // carries.
        for piece in bytes.chunks(MAX_LINE) {
            partial.extend_from_slice(piece);
            while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = partial.drain(..=end).collect();
                self.line(stream, &line[..line.len() - 1]);
            }
            if partial.len() >= MAX_LINE {
                let line = std::mem::take(&mut *partial);
                self.line(stream, &line);
            }
        }
        output.partial_written.store(true, Ordering::Release);
    }

    /// Emits the unfinished line of `stream`, if any.
    fn flush(&self, stream: Stream) {
        let output = self.output(stream);
        if !output.partial_written.load(Ordering::Acquire)
            || !output.partial_written.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let mut partial = crate::sync::lock(&output.partial);
        if !partial.is_empty() {
            let line = std::mem::take(&mut *partial);
            self.line(stream, &line);
        }
    }

    fn line(&self, stream: Stream, line: &[u8]) {
        if !self.admit(line.len()) {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let (level, target) = match stream {
            Stream::Stderr => (Level::Warn, "stderr"),
            Stream::Log | Stream::Stdout => (Level::Info, "stdout"),
        };
        emit(&self.component, level, stream, target, &text);
    }

    /// Says once per instance and stream that the output is dropped.
    fn tell_not_shown(&self, stream: Stream) {
        if self.output(stream).told.swap(true, Ordering::Relaxed) {
            return;
        }
        let (name, level) = match stream {
            Stream::Stderr => ("stderr", "warn"),
            Stream::Log | Stream::Stdout => ("stdout", "info"),
        };
        let component = self.component.as_str();
        tracing::warn!(
            target: OUTPUT_TARGET,
            component,
            stream = name,
            "component `{component}` writes to {name}, which the host shows as `{level}` log \
             records, but holds no `log:write:{level}` grant: its {name} is dropped (grant \
             `log:write:{level}` to see it)"
        );
    }
}

impl Host for HostState {
    fn enabled(&mut self, level: Level) -> wasmtime::Result<bool> {
        Ok(host_enabled(level) && self.is_granted(Domain::Log, Action::Write, level_name(level)))
    }

    fn log(
        &mut self,
        level: Level,
        target: String,
        message: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        if let Err(denial) = LOG.authorize(self, &[level_name(level)]) {
            return Ok(Err(Error::Denied(denial.into_message())));
        }
        if message.len() > MAX_MESSAGE || target.len() > 256 {
            return Ok(Err(Error::InvalidInput(format!(
                "a log record may carry at most {MAX_MESSAGE} bytes of message and 256 of target"
            ))));
        }
        if !self.log.admit(message.len() + target.len()) {
            return Ok(Err(Error::QuotaExceeded(self.log.refusal())));
        }
        emit(self.name(), level, Stream::Log, &target, &message);
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::{TAIL, Tail};
    use airssys_contract::text::printable;

    #[test]
    fn the_tail_keeps_the_last_bytes_only() {
        let mut tail = Tail::default();
        tail.push(b"first\n");
        assert!(!tail.cut);
        for _ in 0..3 {
            tail.push(&[b'x'; TAIL]);
        }
        tail.push(b"last");
        assert_eq!(tail.bytes.len(), TAIL);
        assert!(tail.cut);
        assert!(tail.bytes.iter().rev().take(4).eq(b"tsal".iter()));
    }

    #[test]
    fn a_call_quotes_only_what_was_written_since_its_start() {
        use super::{GrantSet, InstanceLog, ResolvedLimits, Stream};
        let log = InstanceLog::new(
            "c",
            &GrantSet::default(),
            std::sync::Arc::default(),
            &ResolvedLimits::default(),
        );
        let quoted = |log: &InstanceLog| log.written_before("the trap");
        log.start_of_call();
        assert_eq!(quoted(&log), None);
        log.write(Stream::Stdout, b"first call");
        log.end_of_call();
        let first = quoted(&log).expect("the first call's output");
        assert!(first.contains("first call"), "{first}");
        // A call that writes nothing quotes nothing of the one before.
        log.start_of_call();
        assert_eq!(quoted(&log), None);
        log.end_of_call();
        // Written between calls (another thread): the next start forgets it.
        log.write(Stream::Stderr, b"between");
        log.start_of_call();
        assert_eq!(quoted(&log), None);
        log.write(Stream::Stderr, b"third call");
        let third = quoted(&log).expect("the third call's output");
        assert!(
            third.contains("third call") && !third.contains("between"),
            "{third}"
        );
    }

    #[test]
    fn component_text_is_escaped() {
        assert_eq!(
            printable("a\r\u{1b}[2J\u{202e}b"),
            "a\\r\\u{1b}[2J\\u{202e}b"
        );
    }
}
