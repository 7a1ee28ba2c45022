//! Same-run ratios for the benches: a baseline and the airssys path timed
//! interleaved, so both see the same machine.

use std::time::{Duration, Instant};

/// Least rounds measured, and the time after which no new round starts
/// once that many are done.
const MIN_ROUNDS: usize = 60;
const BUDGET: Duration = Duration::from_millis(1500);
/// Most rounds measured, whatever the time.
const MAX_ROUNDS: usize = 5000;

/// What [`measure`] found, per run of each closure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ratio {
    /// The baseline's best round.
    pub(crate) base: Duration,
    /// The airssys path's best round.
    pub(crate) ours: Duration,
    /// `ours / base` of the best rounds.
    pub(crate) best: f64,
    /// The median over rounds of `ours / base` within the round.
    pub(crate) paired_median: f64,
    /// Rounds measured.
    pub(crate) rounds: usize,
}

/// Times `base` and `ours` in alternating rounds of `batch` runs each
/// (which goes first alternates too) for about [`BUDGET`], and reports the
/// best round of each and the median of the ratios within rounds.
///
/// On a shared machine other work slows some rounds down: the best round
/// is the estimate least disturbed, and the paired median shows whether
/// the two agree (a burst of load slows both halves of a round alike).
pub(crate) fn measure(batch: u32, mut base: impl FnMut(), mut ours: impl FnMut()) -> Ratio {
    let batch = batch.max(1);
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        start.elapsed() / batch
    };
    let started = Instant::now();
    let mut best = [Duration::MAX; 2];
    let mut ratios = Vec::new();
    while ratios.len() < MIN_ROUNDS || (started.elapsed() < BUDGET && ratios.len() < MAX_ROUNDS) {
        let (b, o) = if ratios.len() % 2 == 0 {
            let b = time(&mut base);
            (b, time(&mut ours))
        } else {
            let o = time(&mut ours);
            (time(&mut base), o)
        };
        best[0] = best[0].min(b);
        best[1] = best[1].min(o);
        ratios.push(o.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE));
    }
    ratios.sort_by(f64::total_cmp);
    Ratio {
        base: best[0],
        ours: best[1],
        best: best[1].as_secs_f64() / best[0].as_secs_f64(),
        paired_median: ratios[ratios.len() / 2],
        rounds: ratios.len(),
    }
}
