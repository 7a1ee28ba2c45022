//! Hostile probes: filesystem.
