//! The well-behaved neighbour: the `probe` fixture, loaded beside a
//! hostile component, must keep answering.

use std::time::{Duration, Instant};

use airssys_runtime::{Instance, Runtime};

/// Policy lines that let the neighbour load; append them to a test's
/// policy.
pub(crate) const NEIGHBOUR_POLICY: &str = r#"
[components.probe]
grants = ["kv:read:data/*", "kv:write:data/*", "log:write:info"]
"#;

/// How long a neighbour's request may take while a hostile component
/// misbehaves beside it. Generous (a debug build on a loaded 2-core
/// machine answers in milliseconds): it tells "still serving" from "held
/// by the hostile component", not fast from slow.
pub(crate) const SERVING: Duration = Duration::from_secs(5);

/// A running `probe` instance.
pub(crate) struct Neighbour {
    instance: Instance,
    round: u32,
}

impl Neighbour {
    /// Loads and starts the neighbour in `runtime` (whose policy includes
    /// [`NEIGHBOUR_POLICY`]).
    pub(crate) fn start(runtime: &Runtime) -> Neighbour {
        Neighbour {
            instance: crate::support::instance(runtime, "probe"),
            round: 0,
        }
    }

    /// Asserts the neighbour stores and reads back a value within
    /// [`SERVING`].
    pub(crate) fn assert_serves(&mut self) {
        self.round += 1;
        let started = Instant::now();
        let set = crate::support::ask(&mut self.instance, &format!("set:data/n={}", self.round));
        assert_eq!(set, "ok", "the neighbour's write failed");
        let got = crate::support::ask(&mut self.instance, "get:data/n");
        assert!(
            got.contains(&self.round.to_string()),
            "the neighbour read back {got:?}"
        );
        let took = started.elapsed();
        assert!(
            took < SERVING,
            "the neighbour took {took:?} to answer (more than {SERVING:?}): the host is held"
        );
    }
}

/// Runs `neighbour.assert_serves()` on another thread while `hostile`
/// runs on this one, and returns what `hostile` returned: the neighbour
/// is checked *during* the attack, not only after it.
pub(crate) fn while_serving<T>(runtime: &Runtime, hostile: impl FnOnce() -> T) -> T {
    let mut neighbour = Neighbour::start(runtime);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let checker = scope.spawn(|| {
            let mut rounds = 0;
            while !stop.load(std::sync::atomic::Ordering::Acquire) || rounds == 0 {
                neighbour.assert_serves();
                rounds += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            rounds
        });
        // A panicking attack (a failed assertion) must still stop the
        // checker, or the scope would wait for it forever.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hostile));
        stop.store(true, std::sync::atomic::Ordering::Release);
        let rounds = checker.join().expect("the neighbour kept serving");
        let out = out.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        assert!(rounds > 0);
        out
    })
}
