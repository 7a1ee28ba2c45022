//! Stage timings of an expansion, printed to stderr when the environment
//! variable `AIRSSYS_MACRO_TIMING` is set (for measuring build cost; see
//! `benches-build/compare.sh`).

use std::time::Instant;

/// Runs `f`, printing how long it took when timing is on.
pub(crate) fn stage<T>(name: &str, f: impl FnOnce() -> T) -> T {
    if std::env::var_os("AIRSSYS_MACRO_TIMING").is_none() {
        return f();
    }
    let start = Instant::now();
    let out = f();
    eprintln!(
        "airssys-macros: {name}: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    out
}
