//! Hostile probes: identity.
