//! Hostile probes: storage.
