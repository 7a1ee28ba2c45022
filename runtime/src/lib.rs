//! The airssys host runtime: loads WebAssembly components, checks them
//! against the contract and the host policy, and runs them with every host
//! call guarded by capabilities.
//!
//! - [`Runtime`] / [`RuntimeBuilder`]: a wasmtime engine (pooling
//!   allocator, epoch interruption, no component-model concurrency) with
//!   the contract's host functions and deny-all WASI linked.
//! - [`Policy`]: which capabilities each component may be granted, deny
//!   rules, `init` configuration, environment and limits (TOML or builder).
//! - [`LoadedComponent`]: a component that passed the load-time checks
//!   (manifest, interface compatibility, required capabilities), linked
//!   once through `InstancePre`; [`Instance`]: one running instance.
//! - [`broker`]: messaging between components ([`Broker`], in process by
//!   default); delivered by [`Instance::deliver_pending`] and
//!   [`Runtime::run_until_idle`].
//! - [`storage`]: the key-value backends (redb file, in memory).
//! - [`AuditLog`]: every capability decision as a `tracing` event and,
//!   optionally, a JSON line.
//! - [`Server`]: the components as a long-lived service: a pool of
//!   instances per component on their own threads, bounded request
//!   queues, continuous message delivery, restarts, policy reload,
//!   metrics and a graceful shutdown.
//! - [`HostExtension`]: a host service of the embedder's own (its WIT,
//!   `bindgen!` host traits implemented on [`HostState`], guarded with
//!   `#[airssys::host_fn]`), linked and checked next to the contract.
//!
//! # Examples
//!
//! ```no_run
//! use airssys_runtime::{Policy, Runtime};
//!
//! let policy = Policy::from_toml_str(r#"
//!     [components.counter]
//!     grants = ["kv:read:counter/*", "kv:write:counter/*", "log:write"]
//! "#)?;
//! let runtime = Runtime::builder().policy(policy).storage_path("state.redb").build()?;
//! let counter = runtime.load_file("counter.wasm".as_ref())?;
//! let mut instance = counter.instantiate()?;
//! let reply = instance.request("host", b"increment")?;
//! # let _ = reply;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use airssys_contract as contract;

mod audit;
pub mod broker;
mod compile_cache;
mod error;
mod extension;
mod fs;
mod grant;
mod host;
mod identity;
pub mod linked;
mod loader;
pub mod policy;
mod pool;
mod rate;
mod runtime;
pub mod server;
pub mod storage;
mod sync;

pub use audit::{
    AuditDecision, AuditLineKind, AuditLog, AuditRecord, DecidingRule, DroppedDenials,
};
pub use broker::{Broker, BrokerConfig, InProcessBroker};
pub use compile_cache::CacheError;
pub use error::{
    BuildError, LimitExceeded, LoadError, MissingCapability, MissingReason, RuntimeError,
};
pub use extension::HostExtension;
pub use fs::{MountProbe, NameMatching, SystemMountProbe};
pub use host::state::HostState;
pub use identity::{ComponentDigest, InvalidDigest, UNANNOTATED_NAME};
pub use policy::{
    DigestPin, Limits, Policy, PolicyBuilder, PolicyError, ResolvedLimits, RuleOrigin, SignedBy,
};
pub use runtime::{
    DEFAULT_EPOCH_TICK, DEFAULT_MAX_INSTANCES, DeliveryFailure, DeliveryKind, DeliveryOutcome,
    DeliveryRecord, DeliveryReport, Export, HandlerError, Instance, LoadedComponent, Runtime,
    RuntimeBuilder, UndeclaredGrant,
};
pub use server::{
    ComponentReload, ComponentSource, ComponentState, ComponentStatus, ReloadReport, ServeError,
    Server, ServerConfig, ShutdownReport,
};
/// The wasmtime this runtime is built on, for an embedder's `bindgen!`
/// and [`HostExtension::link`] (same version, no second copy).
pub use wasmtime;
