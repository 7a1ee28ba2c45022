//! `airssys:core/types`: type definitions only.

use super::bindings::airssys::core::types::Host;
use super::state::HostState;

impl Host for HostState {}
