//! Hostile probes: time.
