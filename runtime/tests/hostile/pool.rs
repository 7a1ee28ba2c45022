//! Hostile probes: the shared instance pool. One component may hold only
//! its own share of the runtime's pooling allocator: at most
//! `limits.max_instances` instances alive, each with at most
//! `limits.max_core_instances` core instances, `limits.max_memories`
//! memories and `limits.max_tables` tables (checked when it loads), so
//! its neighbours can still instantiate.

use airssys_runtime::{LimitExceeded, LoadError, Policy, Runtime, RuntimeError};

use crate::neighbour::{NEIGHBOUR_POLICY, Neighbour};
use crate::support::{fixture, runtime_with};

/// A runtime whose pool holds 8 instances.
fn pool_of_eight(policy: &str) -> Runtime {
    Runtime::builder()
        .policy(Policy::from_toml_str(policy).expect("valid policy"))
        .in_memory_storage()
        .max_instances(8)
        .build()
        .expect("runtime")
}

/// A component instantiated until its cap is refused with the limit,
/// while the pool still has room for the neighbour; dropping one of its
/// instances gives the slot back.
#[test]
fn one_component_cannot_take_the_pool() {
    let runtime = pool_of_eight(&format!(
        "[components.limitprobe]\nlimits = {{ max_instances = 4 }}\n{NEIGHBOUR_POLICY}"
    ));
    let hostile = runtime
        .load(fixture("limitprobe"))
        .expect("limitprobe loads");
    let mut held = Vec::new();
    let error = loop {
        match hostile.instantiate() {
            Ok(instance) => held.push(instance),
            Err(error) => break error,
        }
        assert!(held.len() <= 8, "no limit stopped the component");
    };
    assert_eq!(held.len(), 4);
    assert!(
        matches!(
            &error,
            RuntimeError::Limit(LimitExceeded::Instances { limit: 4, .. })
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("limits.max_instances"),
        "{error}"
    );
    // The pool still serves the neighbour, several times over.
    let mut neighbours: Vec<Neighbour> = (0..3).map(|_| Neighbour::start(&runtime)).collect();
    for neighbour in &mut neighbours {
        neighbour.assert_serves();
    }
    // A dropped instance no longer counts.
    held.pop();
    held.push(hostile.instantiate().expect("a slot was given back"));
    // Loading the component again shares its count.
    let again = runtime.load(fixture("limitprobe")).expect("loads again");
    assert!(matches!(
        again.instantiate(),
        Err(RuntimeError::Limit(LimitExceeded::Instances { .. }))
    ));
}

/// The load-time error for a component whose instances need more of
/// `what` than its policy allows.
fn refused_at_load(limits: &str) -> LoadError {
    let runtime = runtime_with(&format!(
        "[components.limitprobe]\nlimits = {{ {limits} }}\n{NEIGHBOUR_POLICY}"
    ));
    let error = runtime
        .load(fixture("limitprobe"))
        .expect_err("refused at load");
    // The neighbour is unaffected.
    Neighbour::start(&runtime).assert_serves();
    error
}

/// A component needing more memories, tables or core instances per
/// instance than its policy allows is refused at load, naming the key.
#[test]
fn a_component_needing_more_than_its_share_is_refused_at_load() {
    for (limits, key) in [
        ("max_memories = 0", "max_memories"),
        ("max_tables = 1", "max_tables"),
        ("max_core_instances = 2", "max_core_instances"),
    ] {
        let error = refused_at_load(limits);
        assert!(
            matches!(&error, LoadError::PoolLimit { key: k, .. } if *k == key),
            "{limits}: {error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains(&format!("`limits.{key}` allows")) && text.contains("per instance"),
            "{text}"
        );
    }
}

/// The defaults admit what a Rust `wasm32-wasip2` component needs (the
/// figures in docs/runtime.md): 1 memory, 2 tables, 3 core instances.
#[test]
fn a_rust_component_needs_one_memory_two_tables_three_core_instances() {
    let needs = |limits: &str| match refused_at_load(limits) {
        LoadError::PoolLimit { needed, .. } => needed,
        other => panic!("{other:?}"),
    };
    assert_eq!(needs("max_memories = 0"), 1);
    assert_eq!(needs("max_tables = 0"), 2);
    assert_eq!(needs("max_core_instances = 0"), 3);
}

/// A component of three core instances with a memory each is refused by
/// the default `max_memories` (2), before anything is instantiated.
#[test]
fn the_default_share_refuses_a_many_memory_component() {
    let wasm = wat::parse_str(
        r#"(component
            (core module $m (memory 1))
            (core instance (instantiate $m))
            (core instance (instantiate $m))
            (core instance (instantiate $m)))"#,
    )
    .expect("valid component");
    let runtime = runtime_with("allow_unannotated = true\n");
    let error = runtime.load(&wasm).expect_err("three memories");
    assert!(
        matches!(
            &error,
            LoadError::PoolLimit {
                key: "max_memories",
                needed: 3,
                limit: 2,
                ..
            }
        ),
        "{error:?}"
    );
}
