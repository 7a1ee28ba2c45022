//! Hostile probes: network.
