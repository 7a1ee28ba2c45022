//! Hostile probes: pool.
