//! Shares of wasmtime's pooling allocator: what one instance of a
//! component holds of the runtime-wide pool (core instances, linear
//! memories, tables), checked against the component's own maxima at load
//! time, so that one component cannot take the pool its neighbours
//! instantiate from. How many instances of it may be alive at once is
//! counted at instantiation (`limits.max_instances`, see `runtime.rs`).
//!
//! - Memories and tables come from wasmtime's own
//!   [`Component::resources_required`] (exact: it walks the flattened
//!   instantiation plan).
//! - Core instances are counted in the binary before it is compiled:
//!   every core `instantiate` the component (and any component nested in
//!   it) declares. A nested component instantiated several times is
//!   counted once, so the count can be low; the engine-wide ceiling
//!   ([`configure`]: the largest `max_core_instances` of the policy) is
//!   the backstop wasmtime enforces exactly.

use wasmtime::PoolingAllocationConfig;
use wasmtime::component::Component;

use crate::error::LoadError;
use crate::policy::ResolvedLimits;

/// What one instance of a component takes from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Needs {
    /// Core (module) instances.
    pub(crate) core_instances: u32,
    /// Linear memories.
    pub(crate) memories: u32,
    /// Tables.
    pub(crate) tables: u32,
}

/// One maximum: what, its key under `limits`, needed, allowed.
type Check = (&'static str, &'static str, u32, u32);

fn check(component: &str, checks: &[Check]) -> Result<(), LoadError> {
    for &(what, key, needed, limit) in checks {
        if needed > limit {
            return Err(LoadError::PoolLimit {
                component: component.to_owned(),
                what,
                key,
                needed,
                limit,
            });
        }
    }
    Ok(())
}

/// Before compiling: counts the core instances one instance of the
/// component in `bytes` declares and checks them against
/// `limits.max_core_instances` (wasmtime itself would refuse a component
/// over the engine-wide ceiling while compiling it, with a message that
/// names no policy key).
///
/// # Errors
///
/// [`LoadError::PoolLimit`] naming `max_core_instances`.
pub(crate) fn check_core_instances(
    name: &str,
    bytes: &[u8],
    limits: &ResolvedLimits,
) -> Result<u32, LoadError> {
    let count = core_instances(bytes);
    check_core_count(name, count, limits)?;
    Ok(count)
}

/// Checks a count of core instances found by [`check_core_instances`]
/// against `limits.max_core_instances` (a reloaded policy's limits).
///
/// # Errors
///
/// [`LoadError::PoolLimit`] naming `max_core_instances`.
pub(crate) fn check_core_count(
    name: &str,
    count: u32,
    limits: &ResolvedLimits,
) -> Result<(), LoadError> {
    check(
        name,
        &[(
            "core instances",
            "max_core_instances",
            count,
            limits.max_core_instances,
        )],
    )
}

/// After compiling: checks the memories and tables one instance of
/// `component` needs against its `limits`, and logs its whole share
/// (`tracing` target `airssys::load`).
///
/// # Errors
///
/// [`LoadError::PoolLimit`] naming `max_memories` or `max_tables`.
pub(crate) fn admit(
    name: &str,
    component: &Component,
    core_instances: u32,
    limits: &ResolvedLimits,
) -> Result<(), LoadError> {
    let (memories, tables) = component
        .resources_required()
        .map_or((0, 0), |r| (r.num_memories, r.num_tables));
    let needs = Needs {
        core_instances,
        memories,
        tables,
    };
    tracing::info!(
        target: "airssys::load",
        component = name,
        max_instances = limits.max_instances,
        core_instances = needs.core_instances,
        max_core_instances = limits.max_core_instances,
        memories = needs.memories,
        max_memories = limits.max_memories,
        tables = needs.tables,
        max_tables = limits.max_tables,
        "instance pool share: up to {} instances alive; each needs {}/{} core instances, {}/{} \
         memories, {}/{} tables",
        limits.max_instances,
        needs.core_instances,
        limits.max_core_instances,
        needs.memories,
        limits.max_memories,
        needs.tables,
        limits.max_tables,
    );
    check(
        name,
        &[
            (
                "linear memories",
                "max_memories",
                memories,
                limits.max_memories,
            ),
            ("tables", "max_tables", tables, limits.max_tables),
        ],
    )
}

/// Core `instantiate`s declared anywhere in the binary.
fn core_instances(bytes: &[u8]) -> u32 {
    let mut count = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        // An unreadable binary was refused by `Component::new` already.
        let Ok(wasmparser::Payload::InstanceSection(reader)) = payload else {
            continue;
        };
        let instantiations = reader
            .into_iter()
            .filter(|i| matches!(i, Ok(wasmparser::Instance::Instantiate { .. })))
            .count();
        count = count.saturating_add(u32::try_from(instantiations).unwrap_or(u32::MAX));
    }
    count
}

/// The most core instances any one instance may hold, over every
/// component the policy can load: the engine-wide ceiling.
pub(crate) fn core_instance_ceiling(limits: &[ResolvedLimits]) -> u32 {
    limits
        .iter()
        .map(|l| l.max_core_instances)
        .max()
        .unwrap_or(0)
        .max(1)
}

/// Sizes the pool for `instances` component instances: on average each
/// may hold 8 core instances, 2 memories and 4 tables (a Rust
/// `wasm32-wasip2` component holds 3, 1 and 2), and no single instance
/// more than `core_instances` core instances. Memories and tables per
/// instance have no engine-wide ceiling: each component's are counted
/// exactly at load ([`admit`]).
pub(crate) fn configure(instances: u32, core_instances: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances);
    pool.total_core_instances(instances.saturating_mul(8));
    pool.total_memories(instances.saturating_mul(2));
    pool.total_tables(instances.saturating_mul(4));
    pool.max_core_instances_per_component(core_instances);
    pool
}
