//! Hostile probes: output.
