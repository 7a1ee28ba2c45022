//! The output of `airssys serve` while it serves: every line (the
//! components' log records, the audit hook's refusals, the host's own
//! messages) goes through one bounded queue to one writer thread, so a
//! blocked stdout or stderr (a full pipe nobody reads) never holds the
//! thread that logged, nor the lock of a neighbour.
//!
//! - The queue holds at most [`MAX_LINES`] lines and [`MAX_BYTES`] bytes.
//!   Component log records may fill [`LOG_SHARE`] of it; the rest is kept
//!   for audit records and the host's messages, so a component logging
//!   a lot cannot crowd out the refusals.
//! - Within that, no component crowds out another: a line of a component
//!   that does not fit pushes out the oldest queued lines of the same
//!   kind of the component holding the most (lines weighed with their
//!   bytes, [`weight`]), as long as that one still holds more than the
//!   pushing component then does; a host message pushes out the heaviest
//!   component's lines. A flooding component thus loses its own lines,
//!   never a neighbour's below its fair part.
//! - A line that does not fit is dropped and counted by kind
//!   ([`Kind`]): [`dropped`] gives the totals (`GET /metrics`), and once
//!   the output takes lines again one line on stderr says how many of
//!   each kind were dropped while it was blocked, after the lines queued
//!   meanwhile.
//! - Lines come out in the order they were queued; [`Output::finish`]
//!   waits (within a bound) for the queue to empty.
//! - Without a running queue (`airssys run`, or before `serve` starts one)
//!   [`line`] prints at once, as `println!`/`eprintln!` do.
//! - The `--audit FILE` file of `serve` and `run` has a second queue of
//!   its own, written by a thread of its own ([`AuditFile`]).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use airssys_runtime::AuditLineKind;

/// Lines the queue holds at most.
pub(crate) const MAX_LINES: usize = 8 * 1024;
/// Bytes of text the queue holds at most.
pub(crate) const MAX_BYTES: usize = 8 * 1024 * 1024;
/// The share of [`MAX_LINES`] and [`MAX_BYTES`] component log records may
/// use, in quarters: beyond it only audit records and host messages are
/// queued.
pub(crate) const LOG_SHARE: usize = 3;

/// Where a line goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// What a line is, for the queue's shares and the drop counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A component's log record or output line, or a runtime note about
    /// it.
    Log,
    /// A capability decision of the audit hook.
    Audit,
    /// The host's own messages (listening, ready, reloads, shutdown,
    /// errors).
    Host,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Log, Kind::Audit, Kind::Host];

    fn index(self) -> usize {
        match self {
            Kind::Log => 0,
            Kind::Audit => 1,
            Kind::Host => 2,
        }
    }

    /// Its name in `/metrics` (`kind="..."`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Audit => "audit",
            Kind::Host => "host",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Kind::Log => "component log record(s)",
            Kind::Audit => "audit record(s)",
            Kind::Host => "host message(s)",
        }
    }
}

/// One queued line, its line break included.
struct Line {
    stream: Stream,
    kind: Kind,
    /// The component it is of, if any (host messages have none).
    source: Option<Arc<str>>,
    text: String,
}

/// What one component holds in the queue, of one kind.
#[derive(Default, Clone, Copy)]
struct Held {
    lines: usize,
    bytes: usize,
}

#[derive(Default)]
struct State {
    lines: VecDeque<Line>,
    bytes: usize,
    /// What each component holds in `lines`, by [`Kind::index`] and name.
    held: [HashMap<Arc<str>, Held>; 3],
    /// Drops not yet said on the output, by [`Kind::index`].
    unreported: [u64; 3],
    /// Whether the writer holds lines it took and has not written yet.
    writing: bool,
    /// Whether [`Output::finish`] was called: no more lines are taken.
    closed: bool,
}

/// The queue shared by the callers and the writer thread.
struct Queue {
    state: Mutex<State>,
    /// Lines (or drops to report) arrived, or the queue closed.
    arrived: Condvar,
    /// The writer wrote everything and waits.
    idle: Condvar,
    /// Drops since the start, by [`Kind::index`].
    dropped: [AtomicU64; 3],
    max_lines: usize,
    max_bytes: usize,
    /// The line(s) saying what was dropped since the last batch:
    /// [`take_note`] for the output, [`audit_file_note`] for the audit
    /// file.
    note: fn(&mut State) -> Vec<Line>,
}

impl Queue {
    fn new(max_lines: usize, max_bytes: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            arrived: Condvar::new(),
            idle: Condvar::new(),
            dropped: Default::default(),
            max_lines,
            max_bytes,
            note: |state| take_note(state).into_iter().collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Queues `text` (a line break is added) of component `source` (none:
    /// the host's) or, when it does not fit in `kind`'s share and pushes
    /// out no heavier component's lines ([`Queue::push_out`]), drops and
    /// counts it. Never waits for the output.
    fn push(&self, stream: Stream, kind: Kind, source: Option<&str>, mut text: String) {
        text.push('\n');
        let mut state = self.lock();
        let (lines, bytes) = match kind {
            Kind::Log => (
                self.max_lines / 4 * LOG_SHARE,
                self.max_bytes / 4 * LOG_SHARE,
            ),
            Kind::Audit | Kind::Host => (self.max_lines, self.max_bytes),
        };
        let fits = |state: &State| {
            state.lines.len() < lines && state.bytes + text.len() <= bytes && text.len() <= bytes
        };
        if !state.closed && !fits(&state) && text.len() <= bytes {
            let need = Held {
                lines: (state.lines.len() + 1).saturating_sub(lines),
                bytes: (state.bytes + text.len()).saturating_sub(bytes),
            };
            self.push_out(&mut state, kind, source, need, text.len());
        }
        if state.closed || !fits(&state) {
            self.count_dropped(&mut state, kind, 1);
            return;
        }
        state.bytes += text.len();
        let source = source.map(|name| {
            let held = &mut state.held[kind.index()];
            let key = held
                .get_key_value(name)
                .map_or_else(|| Arc::from(name), |(n, _)| Arc::clone(n));
            let held = held.entry(Arc::clone(&key)).or_default();
            held.lines += 1;
            held.bytes += text.len();
            key
        });
        state.lines.push_back(Line {
            stream,
            kind,
            source,
            text,
        });
        self.arrived.notify_one();
    }

    fn count_dropped(&self, state: &mut State, kind: Kind, n: u64) {
        state.unreported[kind.index()] += n;
        self.dropped[kind.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Makes room (`need`) for a line of `bytes` bytes of `kind` from
    /// `source` by dropping the oldest queued lines of the component that
    /// holds the most of that kind (any kind for a host message), while
    /// it still holds more than `source` would with the line: a flooding
    /// component loses its own lines, not its neighbours'.
    fn push_out(
        &self,
        state: &mut State,
        kind: Kind,
        source: Option<&str>,
        need: Held,
        bytes: usize,
    ) {
        let per_line = (self.max_bytes / self.max_lines.max(1)).max(1);
        let weight = |held: Held| weight(held, per_line);
        let mine = source
            .and_then(|name| state.held[kind.index()].get(name).copied())
            .unwrap_or_default();
        let mine = weight(Held {
            lines: mine.lines + 1,
            bytes: mine.bytes + bytes,
        });
        // Refusals beyond their reserved quarter use the log part: a log
        // line may push them out too (the heaviest component's), down to
        // the quarter, or one component's refusals could fill the whole
        // queue and leave its neighbours' log lines no room at all.
        let audit = &state.held[Kind::Audit.index()];
        let beyond_reserve = if kind == Kind::Log {
            let lines: usize = audit.values().map(|h| h.lines).sum();
            lines.saturating_sub(self.max_lines - self.max_lines / 4 * LOG_SHARE)
        } else {
            0
        };
        let Some((victim, mut left)) = Kind::ALL
            .into_iter()
            .filter(|k| {
                kind == Kind::Host || *k == kind || (*k == Kind::Audit && beyond_reserve > 0)
            })
            .flat_map(|k| state.held[k.index()].iter().map(move |(n, h)| ((k, n), h)))
            .filter(|((_, n), _)| Some(&***n) != source)
            .max_by_key(|(_, held)| weight(**held))
            .map(|((k, n), held)| ((k, Arc::clone(n)), *held))
        else {
            return;
        };
        // The pusher is the heaviest itself (a flooder's own line): no
        // scan, the line is dropped.
        if weight(left) <= mine {
            return;
        }
        // The victim's oldest lines, from the front: the scan stops at
        // the first one taken; when one line does not make room (a long
        // line, or a log line where refusals fill the queue), the rest
        // is taken in one pass from there, not one shift of the queue per
        // line.
        let mut freed = Held::default();
        let mut dropped = 0;
        let most = if kind == Kind::Log && victim.0 == Kind::Audit {
            u64::try_from(beyond_reserve).unwrap_or(u64::MAX)
        } else {
            u64::MAX
        };
        let is_victim =
            |line: &Line| line.kind == victim.0 && line.source.as_deref() == Some(&*victim.1);
        let wanted = |freed: &Held, left: &Held, dropped: u64| {
            (freed.lines < need.lines || freed.bytes < need.bytes)
                && weight(*left) > mine
                && dropped < most
        };
        let take = |line: &Line, freed: &mut Held, left: &mut Held, dropped: &mut u64| {
            let wanted = wanted(freed, left, *dropped);
            if wanted && is_victim(line) {
                freed.lines += 1;
                freed.bytes += line.text.len();
                left.lines -= 1;
                left.bytes -= line.text.len();
                *dropped += 1;
            }
            wanted
        };
        if let Some(at) = state.lines.iter().position(is_victim)
            && take(&state.lines[at], &mut freed, &mut left, &mut dropped)
        {
            state.lines.remove(at);
            if wanted(&freed, &left, dropped) {
                let mut rest = state.lines.split_off(at);
                rest.retain(|line| {
                    let before = dropped;
                    take(line, &mut freed, &mut left, &mut dropped);
                    dropped == before
                });
                state.lines.append(&mut rest);
            }
        }
        state.bytes -= freed.bytes;
        if left.lines == 0 {
            state.held[victim.0.index()].remove(&victim.1);
        } else {
            state.held[victim.0.index()].insert(Arc::clone(&victim.1), left);
        }
        self.count_dropped(state, victim.0, dropped);
    }

    /// The writer's loop: takes every queued line and writes them, with
    /// one line saying what was dropped since the last batch; ends when
    /// closed and empty.
    fn write_all(&self, stdout: &mut dyn Write, stderr: &mut dyn Write) {
        loop {
            let batch = {
                let mut state = self.lock();
                state.writing = false;
                while state.lines.is_empty() && state.unreported.iter().all(|n| *n == 0) {
                    self.idle.notify_all();
                    if state.closed {
                        return;
                    }
                    state = self
                        .arrived
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                state.writing = true;
                state.bytes = 0;
                state.held.iter_mut().for_each(HashMap::clear);
                let mut batch = std::mem::take(&mut state.lines);
                // The output took the last batch: what was dropped while
                // it was blocked is said after what was queued meanwhile.
                batch.extend((self.note)(&mut state));
                batch
            };
            // Writes outside the lock: a blocked output holds this thread
            // only.
            let mut used = [false; 2];
            for line in batch {
                let (out, at): (&mut dyn Write, usize) = match line.stream {
                    Stream::Stdout => (&mut *stdout, 0),
                    Stream::Stderr => (&mut *stderr, 1),
                };
                // A closed output (EPIPE) loses the line, as `println!`'s
                // callers would have; nothing else can be done with it.
                let _ = out.write_all(line.text.as_bytes());
                used[at] = true;
            }
            if used[0] {
                let _ = stdout.flush();
            }
            if used[1] {
                let _ = stderr.flush();
            }
        }
    }

    /// Closes the queue and waits until the writer wrote everything, at
    /// most `within`; false when the output stayed blocked.
    fn finish(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut state = self.lock();
        state.closed = true;
        self.arrived.notify_all();
        while !state.lines.is_empty() || state.writing || state.unreported.iter().any(|n| *n > 0) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .idle
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    fn dropped(&self) -> [u64; 3] {
        self.dropped.each_ref().map(|n| n.load(Ordering::Relaxed))
    }
}

/// What `held` weighs: its bytes, each line counted as at least
/// `per_line` bytes (the queue's bytes per line), so many short lines
/// weigh as much as few long ones.
fn weight(held: Held, per_line: usize) -> usize {
    held.bytes.max(held.lines.saturating_mul(per_line))
}

/// The line saying what was dropped since the last such line, if
/// anything was; resets the count.
fn take_note(state: &mut State) -> Option<Line> {
    let dropped = std::mem::take(&mut state.unreported);
    let parts: Vec<String> = Kind::ALL
        .iter()
        .filter(|k| dropped[k.index()] > 0)
        .map(|k| format!("{} {}", dropped[k.index()], k.words()))
        .collect();
    if parts.is_empty() {
        return None;
    }
    Some(Line {
        stream: Stream::Stderr,
        kind: Kind::Host,
        source: None,
        text: format!(
            "airssys: the output was blocked (stdout or stderr not read fast enough): {} \
             dropped; the output queue holds {MAX_LINES} lines and {} MiB, component logs at \
             most {LOG_SHARE}/4 of it (read stdout and stderr as they come, or send them to a \
             file; counters: airssys_output_dropped_total in GET /metrics)\n",
            parts.join(", "),
            MAX_BYTES >> 20
        ),
    })
}

/// The process's queue, once [`Output::start`] ran.
static QUEUE: OnceLock<Arc<Queue>> = OnceLock::new();

/// The running queue and its writer thread; [`Output::finish`] flushes it.
pub(crate) struct Output {
    queue: Arc<Queue>,
}

impl Output {
    /// Starts the queue and its writer thread for the whole process: from
    /// now on [`line`] queues. `None` when it already runs or the thread
    /// cannot start (then [`line`] keeps printing at once).
    pub(crate) fn start() -> Option<Output> {
        let queue = Arc::new(Queue::new(MAX_LINES, MAX_BYTES));
        let writer = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("airssys-output".to_owned())
            .spawn(move || {
                writer.write_all(&mut std::io::stdout(), &mut std::io::stderr());
            })
            .ok()?;
        QUEUE.set(Arc::clone(&queue)).ok()?;
        Some(Output { queue })
    }

    /// The process's running queue, if [`Output::start`] started one.
    pub(crate) fn running() -> Option<Output> {
        QUEUE.get().map(|queue| Output {
            queue: Arc::clone(queue),
        })
    }

    /// Writes everything queued, waiting at most `within` for a blocked
    /// output (the process is exiting: it holds nothing else); lines
    /// queued later are dropped and counted.
    pub(crate) fn finish(self, within: Duration) -> bool {
        self.queue.finish(within)
    }
}

/// Prints `text` and a line break on `stream`: through the queue when
/// one runs (never waiting for the output), else at once.
pub(crate) fn line(stream: Stream, kind: Kind, text: String) {
    component_line(stream, kind, None, text);
}

/// [`line`] for a line of component `source` (a log record, an audit
/// record of its call): in the queue, a component holding more than its
/// neighbours loses its own lines first.
pub(crate) fn component_line(stream: Stream, kind: Kind, source: Option<&str>, text: String) {
    match (QUEUE.get(), stream) {
        (Some(queue), _) => queue.push(stream, kind, source, text),
        (None, Stream::Stdout) => println!("{text}"),
        (None, Stream::Stderr) => eprintln!("{text}"),
    }
}

/// Lines dropped since the start, by kind.
pub(crate) fn dropped() -> [(Kind, u64); 3] {
    let counts = QUEUE.get().map_or([0; 3], |q| q.dropped());
    Kind::ALL.map(|k| (k, counts[k.index()]))
}

/// The drop counters in Prometheus' text format.
pub(crate) fn metrics_text() -> String {
    let mut text = String::from(
        "# HELP airssys_output_dropped_total Lines dropped because stdout or stderr was blocked \
         and the output queue was full, by kind.\n\
         # TYPE airssys_output_dropped_total counter\n",
    );
    for (kind, count) in dropped() {
        text.push_str(&format!(
            "airssys_output_dropped_total{{kind=\"{}\"}} {count}\n",
            kind.name()
        ));
    }
    text
}

/// The queue of the `--audit FILE` file, once [`AuditFile::open`] ran.
static AUDIT_FILE: OnceLock<Arc<Queue>> = OnceLock::new();

/// The `--audit FILE` file of `serve` and `run`: a second queue, of the
/// same bounds, whose writer thread alone writes the file. A file that
/// takes records slowly or not at all (a FIFO nobody reads, a full
/// pipe, a stalled disk) holds that thread only, never a component's
/// call.
///
/// - Records of allowed calls may fill [`LOG_SHARE`] of the queue; the
///   rest is kept for refusals and the other records (policy reloads,
///   refusals a rate limit kept out), so a component making many
///   allowed calls cannot crowd out the refusals.
/// - A record that does not fit is dropped and counted
///   ([`audit_file_metrics_text`]); when the file takes records again,
///   one JSON record `{"time_ms":..,"not_written":{"allowed":N,
///   "refused":N,"other":N},"reason":..}` follows what was queued
///   meanwhile, and one line on stderr says the same.
pub(crate) struct AuditFile {
    queue: Arc<Queue>,
}

impl AuditFile {
    /// Opens `path` for appending (created if missing), starts its
    /// writer thread, and returns the runtime's audit log writing to it.
    ///
    /// # Errors
    ///
    /// The file cannot be opened, the thread cannot start, or an audit
    /// file already runs.
    pub(crate) fn open(path: &std::path::Path) -> std::io::Result<airssys_runtime::AuditLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let queue = Arc::new(Queue {
            note: audit_file_note,
            ..Queue::new(MAX_LINES, MAX_BYTES)
        });
        let writer = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("airssys-audit-file".to_owned())
            .spawn(move || {
                writer.write_all(&mut std::io::BufWriter::new(file), &mut HostLines);
            })?;
        AUDIT_FILE
            .set(Arc::clone(&queue))
            .map_err(|_| std::io::Error::other("an audit file is already open"))?;
        Ok(airssys_runtime::AuditLog::to_lines(
            move |kind, component, line| {
                let kind = match kind {
                    AuditLineKind::Allowed => Kind::Log,
                    AuditLineKind::Refused => Kind::Audit,
                    _ => Kind::Host,
                };
                queue.push(Stream::Stdout, kind, Some(component), line);
            },
        ))
    }

    /// The process's audit file, if [`AuditFile::open`] opened one.
    pub(crate) fn running() -> Option<AuditFile> {
        AUDIT_FILE.get().map(|queue| AuditFile {
            queue: Arc::clone(queue),
        })
    }

    /// Writes every queued record, waiting at most `within` for a file
    /// that stays blocked (the process is exiting); records made later
    /// are dropped and counted.
    pub(crate) fn finish(self, within: Duration) -> bool {
        self.queue.finish(within)
    }
}

/// What the audit file's writer writes on "stderr": each line goes to the
/// output as a host message ([`line`]), through the output queue when
/// one runs.
struct HostLines;

impl Write for HostLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        line(
            Stream::Stderr,
            Kind::Host,
            text.trim_end_matches('\n').to_owned(),
        );
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The audit file's note on what it dropped since the last one: a JSON
/// record in the file and a line on stderr; resets the count.
fn audit_file_note(state: &mut State) -> Vec<Line> {
    let dropped = std::mem::take(&mut state.unreported);
    if dropped.iter().all(|n| *n == 0) {
        return Vec::new();
    }
    let [allowed, refused, other] =
        [Kind::Log, Kind::Audit, Kind::Host].map(|k| dropped[k.index()]);
    let reason = format!(
        "the audit file did not take records fast enough; its queue holds {MAX_LINES} records \
         and {} MiB, records of allowed calls at most {LOG_SHARE}/4 of it",
        MAX_BYTES >> 20
    );
    let time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let record = serde_json::json!({
        "time_ms": time_ms,
        "not_written": { "allowed": allowed, "refused": refused, "other": other },
        "reason": reason,
    });
    vec![
        Line {
            stream: Stream::Stdout,
            kind: Kind::Host,
            source: None,
            text: format!("{record}\n"),
        },
        Line {
            stream: Stream::Stderr,
            kind: Kind::Host,
            source: None,
            text: format!(
                "airssys: the audit file was blocked: {refused} refused call(s), {allowed} \
                 allowed call(s), {other} other record(s) not written; {reason} (let the \
                 audit file be read or written as records come; counters: \
                 airssys_audit_file_dropped_total in GET /metrics)\n"
            ),
        },
    ]
}

/// The audit file's drop counters in Prometheus' text format (zero when
/// no audit file is open).
pub(crate) fn audit_file_metrics_text() -> String {
    let counts = AUDIT_FILE.get().map_or([0; 3], |q| q.dropped());
    let mut text = String::from(
        "# HELP airssys_audit_file_dropped_total Audit records not written to the --audit file \
         because it was blocked and its queue was full, by what they record.\n\
         # TYPE airssys_audit_file_dropped_total counter\n",
    );
    for (kind, record) in [
        (Kind::Log, "allowed"),
        (Kind::Audit, "refused"),
        (Kind::Host, "other"),
    ] {
        text.push_str(&format!(
            "airssys_audit_file_dropped_total{{record=\"{record}\"}} {}\n",
            counts[kind.index()]
        ));
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A writer that keeps what it wrote; with a gate `open`, each write
    /// first blocks until it receives a unit.
    struct Gated {
        open: Option<mpsc::Receiver<()>>,
        written: Arc<Mutex<String>>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(open) = &self.open {
                let _ = open.recv();
            }
            self.written
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(buf));
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A queue of `lines` lines whose stdout and stderr write once per unit
    /// sent on the returned sender (both into one text), returned once its
    /// writer has taken `first` (of `kind`, to stdout) and blocks on it.
    fn gated(
        lines: usize,
        kind: Kind,
        first: &str,
    ) -> (Arc<Queue>, mpsc::Sender<()>, Arc<Mutex<String>>) {
        let queue = Arc::new(Queue::new(lines, MAX_BYTES));
        let (open, gate) = mpsc::channel();
        let written = Arc::new(Mutex::new(String::new()));
        // One gate for both streams: stderr is a second writer that never
        // blocks but records into the same text.
        let writer = Arc::clone(&queue);
        let (out, err) = (Arc::clone(&written), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut stdout = Gated {
                open: Some(gate),
                written: out,
            };
            let mut stderr = Gated {
                open: None,
                written: err,
            };
            writer.write_all(&mut stdout, &mut stderr);
        });
        queue.push(Stream::Stdout, kind, None, first.to_owned());
        while !queue.lock().writing {
            std::thread::yield_now();
        }
        (queue, open, written)
    }

    #[test]
    fn a_blocked_output_drops_and_counts_logs_and_keeps_room_for_audit_records() {
        // The writer takes the first line and blocks on it.
        let (queue, open, written) = gated(8, Kind::Log, "first");
        // Logs fill their share (6 of 8), then are dropped without waiting.
        for i in 0..100 {
            queue.push(Stream::Stdout, Kind::Log, None, format!("log {i}"));
        }
        assert_eq!(queue.lock().lines.len(), 6);
        assert_eq!(queue.dropped(), [94, 0, 0]);
        // Audit records still fit, in the reserved share.
        queue.push(Stream::Stdout, Kind::Audit, None, "DENY one".to_owned());
        queue.push(Stream::Stdout, Kind::Audit, None, "DENY two".to_owned());
        queue.push(Stream::Stdout, Kind::Audit, None, "DENY three".to_owned());
        assert_eq!(queue.dropped(), [94, 1, 0]);
        // The output flows again: everything queued comes out in order,
        // then one line says what was dropped.
        for _ in 0..10 {
            let _ = open.send(());
        }
        drop(open);
        assert!(queue.finish(Duration::from_secs(10)));
        let text = written.lock().unwrap().clone();
        let expected: Vec<String> = ["first".to_owned()]
            .into_iter()
            .chain((0..6).map(|i| format!("log {i}")))
            .chain(["DENY one".to_owned(), "DENY two".to_owned()])
            .collect();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..expected.len()], expected, "{text}");
        assert_eq!(lines.len(), expected.len() + 1, "{text}");
        assert!(
            lines[expected.len()].contains("94 component log record(s), 1 audit record(s) dropped"),
            "{text}"
        );
    }

    #[test]
    fn the_drop_note_follows_what_was_queued_while_the_output_was_blocked() {
        let (queue, open, written) = gated(4, Kind::Host, "a");
        for i in 0..5 {
            queue.push(Stream::Stdout, Kind::Host, None, format!("b{i}"));
        }
        assert_eq!(queue.dropped(), [0, 0, 1]);
        // The writer writes `a`, then takes b0..b3 and blocks on b0.
        let _ = open.send(());
        while !queue.lock().lines.is_empty() {
            std::thread::yield_now();
        }
        queue.push(Stream::Stdout, Kind::Host, None, "c".to_owned());
        drop(open);
        assert!(queue.finish(Duration::from_secs(10)));
        let text = written.lock().unwrap().clone();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..5], ["a", "b0", "b1", "b2", "b3"], "{text}");
        assert!(lines[5].contains("1 host message(s) dropped"), "{text}");
        assert_eq!(lines[6], "c", "{text}");
    }

    #[test]
    fn the_bytes_are_bounded_too() {
        let queue = Queue::new(100, 1000);
        // Logs may hold 750 bytes: seven lines of 101.
        for _ in 0..10 {
            queue.push(Stream::Stdout, Kind::Log, None, "x".repeat(100));
        }
        assert_eq!(queue.lock().lines.len(), 7);
        assert_eq!(queue.dropped(), [3, 0, 0]);
        // Audit records may use the rest: two more.
        for _ in 0..3 {
            queue.push(Stream::Stderr, Kind::Audit, None, "y".repeat(100));
        }
        assert_eq!(queue.lock().bytes, 909);
        assert_eq!(queue.dropped(), [3, 1, 0]);
    }

    /// The red-team review's hole (session 10): component logs shared one
    /// part of the queue, first come first kept, so one component logging
    /// without pause while the output was slow took all of it and every
    /// neighbour's record was dropped; a component making refused calls in
    /// a loop did the same to its neighbours' `DENY` lines and the host's
    /// messages. Now a line that does not fit pushes out the oldest lines
    /// of the component holding the most, while that one holds more.
    #[test]
    fn a_flooding_component_loses_its_own_lines_not_its_neighbours() {
        let (queue, open, written) = gated(16, Kind::Log, "first");
        let push = |kind: Kind, source: &str, text: String| {
            let stream = if kind == Kind::Log {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            queue.push(stream, kind, Some(source), text);
        };
        // The flooder fills the log part (12 of 16) and goes on.
        for i in 0..100 {
            push(Kind::Log, "chatty", format!("chatty {i}"));
        }
        assert_eq!(queue.lock().lines.len(), 12);
        // Its neighbours' records are kept, each pushing out one of the
        // flooder's oldest ...
        push(Kind::Log, "quiet", "quiet 0".to_owned());
        push(Kind::Log, "quiet", "quiet 1".to_owned());
        push(Kind::Log, "calm", "calm 0".to_owned());
        // ... while the flooder's own new records are dropped.
        push(Kind::Log, "chatty", "chatty late".to_owned());
        assert_eq!(queue.dropped(), [88 + 3 + 1, 0, 0]);
        // Refusals: the flooder's fill the queue, a neighbour's still
        // get in, and so does the host's message.
        for i in 0..100 {
            push(Kind::Audit, "chatty", format!("DENY chatty {i}"));
        }
        push(Kind::Audit, "quiet", "DENY quiet".to_owned());
        queue.push(Stream::Stderr, Kind::Host, None, "host says".to_owned());
        for _ in 0..100 {
            let _ = open.send(());
        }
        drop(open);
        assert!(queue.finish(Duration::from_secs(10)));
        let text = written.lock().unwrap().clone();
        let lines: Vec<&str> = text.lines().collect();
        for kept in ["quiet 0", "quiet 1", "calm 0", "DENY quiet", "host says"] {
            assert!(lines.contains(&kept), "`{kept}` was dropped:\n{text}");
        }
        assert!(!lines.contains(&"chatty late"), "{text}");
        // Order kept: the flooder's newest records that stayed come
        // before its neighbours' (its oldest were pushed out).
        let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
        assert!(
            at("chatty 11") < at("quiet 0") && at("quiet 0") < at("calm 0"),
            "{text}"
        );
        assert!(!lines.contains(&"chatty 0"), "{text}");
        // Everything dropped is counted and said (the host's message
        // pushed out one more of the flooder's records, its heaviest).
        let [log, audit, host] = queue.dropped();
        assert_eq!((log, host), (93, 0), "{text}");
        assert!(audit > 0, "{text}");
        assert!(lines.last().unwrap().contains("dropped"), "{text}");
    }

    /// A lone component still has the whole log part, and a neighbour
    /// holding less than the flooder keeps its lines: a push-out stops once
    /// the flooder holds no more than the neighbour would.
    #[test]
    fn a_push_out_never_takes_a_neighbour_below_the_pusher() {
        let (queue, open, _written) = gated(16, Kind::Log, "first");
        for i in 0..6 {
            queue.push(Stream::Stdout, Kind::Log, Some("a"), format!("a {i}"));
        }
        for i in 0..6 {
            queue.push(Stream::Stdout, Kind::Log, Some("b"), format!("b {i}"));
        }
        assert_eq!(queue.lock().lines.len(), 12);
        // `a` holds 6, as many as `b`: neither pushes the other out.
        queue.push(Stream::Stdout, Kind::Log, Some("a"), "a 6".to_owned());
        queue.push(Stream::Stdout, Kind::Log, Some("b"), "b 6".to_owned());
        assert_eq!(queue.dropped(), [2, 0, 0]);
        // A third one gets in, taking from the heaviest.
        queue.push(Stream::Stdout, Kind::Log, Some("c"), "c 0".to_owned());
        assert_eq!(queue.dropped(), [3, 0, 0]);
        assert_eq!(queue.lock().lines.len(), 12);
        assert!(queue.lock().lines.iter().any(|l| l.text == "c 0\n"));
        drop(open);
    }

    /// A huge line pushes out no neighbour holding less than it weighs,
    /// and a line larger than the whole log part is dropped at once.
    #[test]
    fn a_huge_line_pushes_out_no_lighter_neighbour() {
        let queue = Queue::new(100, 1000);
        for _ in 0..2 {
            queue.push(Stream::Stdout, Kind::Log, Some("a"), "x".repeat(99));
        }
        queue.push(Stream::Stdout, Kind::Log, Some("b"), "y".repeat(600));
        queue.push(Stream::Stdout, Kind::Log, Some("b"), "y".repeat(2000));
        assert_eq!(queue.lock().lines.len(), 2);
        assert_eq!(queue.dropped(), [2, 0, 0]);
        // Many components, one short line each: they get in while there
        // is room, then by pushing out the heaviest (`a`'s long lines),
        // then none pushes out a peer holding as much as it would.
        for i in 0..200 {
            queue.push(
                Stream::Stdout,
                Kind::Log,
                Some(&format!("c{i}")),
                "z".to_owned(),
            );
        }
        let held: Vec<String> = queue
            .lock()
            .lines
            .iter()
            .map(|l| l.source.as_deref().unwrap_or_default().to_owned())
            .collect();
        let first: Vec<String> = (0..75).map(|i| format!("c{i}")).collect();
        assert_eq!(held, first);
        assert_eq!(queue.dropped(), [2 + 2 + 125, 0, 0]);
    }

    /// Session 10's review of its own additions: refusals may fill the
    /// whole queue, so one component refused in a loop while the output
    /// (or the audit file) was slow held every line, and a neighbour's log
    /// line (allowed call, for the audit file), which may use only 3/4,
    /// found no room and no line of its kind to push out: it was dropped.
    /// Now refusals beyond their reserved quarter count as lines of the
    /// log part: the heaviest component's are pushed out, the quarter is
    /// kept.
    #[test]
    fn refusals_filling_the_queue_leave_a_neighbours_log_lines_room() {
        let (queue, open, written) = gated(16, Kind::Host, "first");
        for i in 0..100 {
            queue.push(
                Stream::Stderr,
                Kind::Audit,
                Some("chatty"),
                format!("DENY chatty {i}"),
            );
        }
        assert_eq!(queue.lock().lines.len(), 16);
        queue.push(
            Stream::Stdout,
            Kind::Log,
            Some("quiet"),
            "quiet 0".to_owned(),
        );
        queue.push(
            Stream::Stdout,
            Kind::Log,
            Some("quiet"),
            "quiet 1".to_owned(),
        );
        let held = |name: &str| {
            queue
                .lock()
                .lines
                .iter()
                .filter(|l| l.source.as_deref() == Some(name))
                .count()
        };
        assert_eq!(held("quiet"), 2, "the neighbour's log lines were dropped");
        // Many neighbours: the refusals keep their reserved quarter.
        for i in 0..100 {
            queue.push(
                Stream::Stdout,
                Kind::Log,
                Some(&format!("n{i}")),
                "n".to_owned(),
            );
        }
        assert_eq!(held("chatty"), 4, "the refusals' quarter");
        assert_eq!(queue.lock().lines.len(), 12);
        // The flooder's next refusals take back what is free, no more.
        queue.push(
            Stream::Stderr,
            Kind::Audit,
            Some("chatty"),
            "DENY late".to_owned(),
        );
        assert_eq!(held("chatty"), 5);
        for _ in 0..100 {
            let _ = open.send(());
        }
        drop(open);
        assert!(queue.finish(Duration::from_secs(10)));
        let text = written.lock().unwrap().clone();
        // The flooder lost its oldest refusals, no neighbour's line of
        // another kind.
        assert!(text.contains("quiet 1\nn\n"), "{text}");
        assert!(text.contains("DENY chatty 15\nquiet 1\n"), "{text}");
        assert!(!text.contains("DENY chatty 11\n"), "{text}");
        assert!(text.contains("DENY late\n"), "{text}");
    }

    #[test]
    fn the_audit_file_keeps_room_for_refusals_and_says_what_it_dropped() {
        let queue = Queue {
            note: audit_file_note,
            ..Queue::new(8, MAX_BYTES)
        };
        // Allowed calls fill their share (6 of 8), refusals the rest.
        for i in 0..10 {
            queue.push(Stream::Stdout, Kind::Log, Some("a"), format!("allowed {i}"));
        }
        for i in 0..3 {
            queue.push(
                Stream::Stdout,
                Kind::Audit,
                Some("a"),
                format!("refused {i}"),
            );
        }
        assert_eq!(queue.dropped(), [4, 1, 0]);
        let note = (queue.note)(&mut queue.lock());
        assert_eq!(note.len(), 2);
        assert_eq!(note[0].stream, Stream::Stdout);
        let record: serde_json::Value = serde_json::from_str(&note[0].text).unwrap();
        assert_eq!(
            record["not_written"],
            serde_json::json!({"allowed": 4, "refused": 1, "other": 0})
        );
        assert_eq!(note[1].stream, Stream::Stderr);
        assert!(
            note[1]
                .text
                .contains("1 refused call(s), 4 allowed call(s), 0 other record(s) not written"),
            "{}",
            note[1].text
        );
        // Said once.
        assert!((queue.note)(&mut queue.lock()).is_empty());
    }

    #[test]
    fn finish_gives_up_on_an_output_that_stays_blocked() {
        let (queue, open, _written) = gated(4, Kind::Log, "stuck");
        assert!(!queue.finish(Duration::from_millis(200)));
        drop(open);
    }
}
