//! An embedder's `tracing` subscriber runs on the thread of the call that
//! logs: a subscriber that writes synchronously to an output nobody reads
//! holds the component's call (past its time limit) until the output
//! takes the line. The advice of docs/runtime.md ("Your subscriber must
//! not block"), a lossy non-blocking writer, keeps calls within their
//! limits; its snippet is this file's `non_blocking_subscriber`, kept
//! equal to the page's by the last test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use support::{ask, instance, runtime_with};

// doc:start
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};

/// A subscriber whose writes never wait for `output`: records go through
/// a bounded queue (8,192 lines) to one writer thread; when the queue is
/// full they are dropped and counted, not waited for.
fn non_blocking_subscriber(
    output: impl std::io::Write + Send + 'static,
) -> (
    impl tracing::Subscriber + Send + Sync,
    ErrorCounter,
    WorkerGuard,
) {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(8_192)
        .finish(output);
    // `dropped.dropped_lines()`: say it, export it as a metric.
    let dropped = writer.error_counter();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // Keep `guard` until exit: dropping it flushes the queue (within 1 s).
    (subscriber, dropped, guard)
}
// doc:end

/// An output that takes nothing until it is opened: a full pipe nobody
/// reads.
#[derive(Clone, Default)]
struct Blocked(Arc<(Mutex<bool>, Condvar)>);

impl Blocked {
    fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
}

impl Write for Blocked {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (open, opened) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The two subscribers are installed one after the other (thread-scoped
/// dispatchers coming and going in parallel can leave `tracing`'s
/// interest cache at "off").
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const POLICY: &str = "[components.limitprobe]\ngrants = [\"log:write\"]\nlimits = { \
                      log_lines_per_second = 100000, cpu_time_ms = 500 }\n";

/// The hazard: a subscriber writing synchronously to a blocked output
/// holds the logging call until the output takes the line, far past the
/// call's time limit (500 ms here).
#[test]
fn a_blocking_subscriber_holds_the_call_past_its_time_limit() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = runtime_with(POLICY);
    let output = Blocked::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let output = output.clone();
            move || output.clone()
        })
        .finish();
    let opener = {
        let output = output.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            output.open();
        })
    };
    let started = Instant::now();
    let reply = tracing::subscriber::with_default(subscriber, || {
        let mut probe = instance(&runtime, "limitprobe");
        ask(&mut probe, "log-flood:10")
    });
    let held = started.elapsed();
    opener.join().unwrap();
    assert_eq!(reply, "ok 10, quota-exceeded 0, other 0");
    // Held until the output opened: the time limit does not reach a host
    // call that waits on the embedder's writer.
    assert!(held >= Duration::from_secs(3), "held {held:?}");
}

/// The advice: with a lossy non-blocking writer, the same output blocked
/// for good holds nothing; the records beyond the queue are counted.
#[test]
fn a_lossy_non_blocking_writer_keeps_calls_within_their_limits() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = runtime_with(&POLICY.replace("cpu_time_ms = 500", "cpu_time_ms = 10000"));
    let output = Blocked::default();
    let (subscriber, dropped, guard) = non_blocking_subscriber(output.clone());
    let (send, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reply = tracing::subscriber::with_default(subscriber, || {
            let mut probe = instance(&runtime, "limitprobe");
            ask(&mut probe, "log-flood:20000")
        });
        let _ = send.send(reply);
    });
    let reply = answered
        .recv_timeout(Duration::from_secs(60))
        .expect("the logging call did not end while the output was blocked");
    assert_eq!(reply, "ok 20000, quota-exceeded 0, other 0");
    assert!(
        dropped.dropped_lines() > 20_000 - 8_192 - 2,
        "{} dropped",
        dropped.dropped_lines()
    );
    // Let the writer thread end.
    output.open();
    drop(guard);
}

/// The snippet in docs/runtime.md is the function above, as written.
#[test]
fn the_snippet_in_the_runtime_page_is_the_one_tested_here() {
    let source = include_str!("blocked_output.rs");
    let tested = source
        .split("// doc:start\n")
        .nth(1)
        .and_then(|rest| rest.split("// doc:end").next())
        .unwrap();
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/runtime.md"),
    )
    .unwrap();
    let block = page
        .split("<!-- tested: runtime/tests/blocked_output.rs -->\n```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/runtime.md holds the snippet after its marker");
    assert_eq!(block, tested);
}
