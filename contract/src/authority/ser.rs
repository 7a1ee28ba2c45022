//! Capabilities and domains serialized as their text.

use serde::Serializer;

use crate::capability::{Capability, Domain};

pub(super) fn cap<S: Serializer>(cap: &Capability, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(cap)
}

pub(super) fn caps<S: Serializer>(caps: &[Capability], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(caps.iter().map(ToString::to_string))
}

pub(super) fn domains<S: Serializer>(domains: &[Domain], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(domains.iter().map(|d| d.as_str()))
}
