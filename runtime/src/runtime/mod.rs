//! [`Runtime`]: the engine, the linked host and the services every
//! component of one runtime shares. The rest of this directory, one
//! concept per file:
//!
//! - `builder.rs`: [`RuntimeBuilder`], which configures the engine, links
//!   the host and starts the epoch ticker (`ticker.rs`);
//! - `load.rs`: [`Runtime::load`], the load-time checks as named steps;
//! - `loaded.rs`: [`LoadedComponent`], a component that passed them, and
//!   what unloading it does;
//! - `instance.rs`: [`Instance`], one running instance, and calls into it;
//! - `dispatch.rs`: message delivery ([`Instance::deliver_pending`],
//!   [`Runtime::run_until_idle`]) and the delivery hooks.

mod builder;
mod dispatch;
mod instance;
mod load;
mod loaded;
mod ticker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Linker;

pub use self::builder::RuntimeBuilder;
pub use self::dispatch::{
    DeliveryFailure, DeliveryKind, DeliveryOutcome, DeliveryRecord, DeliveryReport,
};
pub use self::instance::{Export, HandlerError, Instance};
pub(crate) use self::load::Rebound;
pub use self::loaded::{LoadedComponent, UndeclaredGrant};
use crate::broker::Broker;
use crate::extension::Extensions;
use crate::host::state::{HostState, Services};
use crate::loader::Names;
use crate::policy::{Policy, ResolvedLimits};
use crate::storage::StorageBackend;

/// How often the epoch advances; the CPU time limit is enforced at this
/// granularity.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);

/// Default number of instances that may exist at once (pooling allocator).
pub const DEFAULT_MAX_INSTANCES: u32 = 128;

/// The airssys host: a wasmtime engine with the contract's host functions
/// and deny-all WASI linked, a host [`Policy`], storage and an audit log.
///
/// # Examples
///
/// ```no_run
/// use airssys_runtime::{Policy, Runtime};
///
/// let policy = Policy::from_toml_file("policy.toml".as_ref())?;
/// let runtime = Runtime::builder()
///     .policy(policy)
///     .storage_path("state.redb")
///     .build()?;
/// let counter = runtime.load_file("counter.wasm".as_ref())?;
/// let mut instance = counter.instantiate()?;
/// let reply = instance.request("cli", b"increment")?;
/// instance.shutdown()?;
/// # let _ = reply;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    shared: Arc<Shared>,
}

/// What the runtime, its loaded components and their instances share.
struct Shared {
    engine: Engine,
    linker: Linker<HostState>,
    policy: Policy,
    services: Arc<Services>,
    base_limits: ResolvedLimits,
    tick: Duration,
    /// The embedder's own host services.
    extensions: Extensions,
    /// How mounted directories compare names (see `crate::fs::probe`).
    mount_probe: Arc<dyn crate::fs::MountProbe>,
    /// Where compiled components are kept, if anywhere.
    compile_cache: Option<crate::compile_cache::CompileCache>,
    /// The names in use, each with its count of live `LoadedComponent`s,
    /// its digest and its mailbox notifier: the broker forgets a name
    /// when its last `LoadedComponent` is dropped.
    names: Mutex<Names>,
    /// The embedder's delivery hooks ([`RuntimeBuilder::on_delivery`]).
    delivery_hooks: Vec<dispatch::DeliveryHook>,
    _ticker: ticker::Ticker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("policy", &self.shared.policy)
            .field("limits", &self.shared.base_limits)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The broker that carries messages between this runtime's components.
    pub fn broker(&self) -> &Arc<dyn Broker> {
        &self.shared.services.broker
    }

    /// The host policy.
    pub fn policy(&self) -> &Policy {
        &self.shared.policy
    }

    /// The storage backend shared by every component.
    pub fn storage(&self) -> &Arc<dyn StorageBackend> {
        &self.shared.services.storage
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// The audit log (for the server's reload records).
    pub(crate) fn audit_log(&self) -> &crate::audit::AuditLog {
        &self.shared.services.audit
    }

    /// Flushes the storage backend and the audit log's sink (at a
    /// server's shutdown); each failure as text.
    pub(crate) fn flush(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Err(error) = self.shared.services.storage.flush() {
            errors.push(format!("storage flush failed: {error}"));
        }
        if let Err(error) = self.shared.services.audit.flush() {
            errors.push(format!("audit log flush failed: {error}"));
        }
        errors
    }
}
