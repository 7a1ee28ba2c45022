//! The criterion settings every bench shares (`runtime/benches/*`,
//! `cli/benches/serve.rs`): short warm-up and measurement, so a whole
//! bench run stays in minutes; `-- --warm-up-time N --measurement-time N`
//! overrides them.

use std::time::Duration;

use criterion::Criterion;

/// Criterion with the shared settings and `sample_size` samples.
pub(crate) fn criterion(sample_size: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(sample_size)
}
