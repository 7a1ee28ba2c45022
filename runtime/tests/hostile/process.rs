//! Hostile probes: process.
