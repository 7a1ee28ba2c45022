//! Hostile probes: messaging.
