//! [`RuntimeBuilder`]: configures the engine, links the host, opens the
//! storage and starts the epoch ticker, once.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy};

use super::dispatch::{DeliveryHook, DeliveryRecord};
use super::ticker::Ticker;
use super::{DEFAULT_EPOCH_TICK, DEFAULT_MAX_INSTANCES, Runtime, Shared};
use crate::audit::{AuditHook, AuditLog, AuditRecord};
use crate::broker::{Broker, BrokerConfig, InProcessBroker};
use crate::error::BuildError;
use crate::extension::{Extensions, HostExtension};
use crate::host::state::{HostState, Services};
use crate::policy::{Policy, ResolvedLimits};
use crate::storage::{MemoryStorage, RedbStorage, StorageBackend};

/// Where storage lives.
enum StorageChoice {
    Memory,
    Path(PathBuf),
    Backend(Arc<dyn StorageBackend>),
}

/// Builds a [`Runtime`]; used once. Everything is denied until the policy
/// grants it.
#[must_use]
pub struct RuntimeBuilder {
    policy: Policy,
    storage: StorageChoice,
    durable: bool,
    audit: AuditLog,
    audit_hooks: Vec<AuditHook>,
    delivery_hooks: Vec<DeliveryHook>,
    limits: ResolvedLimits,
    tick: Duration,
    max_instances: u32,
    pooling: bool,
    broker: Option<Arc<dyn Broker>>,
    extensions: Vec<HostExtension>,
    /// PEM bundles of extra TLS roots.
    tls_roots: Vec<Vec<u8>>,
    mount_probe: Arc<dyn crate::fs::MountProbe>,
    /// Where compiled components are cached (`None`: compile every load).
    compile_cache: Option<PathBuf>,
}

impl std::fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("policy", &self.policy)
            .field("limits", &self.limits)
            .field("extensions", &self.extensions)
            .field("audit_hooks", &self.audit_hooks.len())
            .field("delivery_hooks", &self.delivery_hooks.len())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with an empty (deny-all) policy, in-memory storage and
    /// the default limits.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            policy: Policy::default(),
            storage: StorageChoice::Memory,
            durable: true,
            audit: AuditLog::tracing_only(),
            audit_hooks: Vec::new(),
            delivery_hooks: Vec::new(),
            limits: ResolvedLimits::default(),
            tick: DEFAULT_EPOCH_TICK,
            max_instances: DEFAULT_MAX_INSTANCES,
            pooling: true,
            broker: None,
            extensions: Vec::new(),
            tls_roots: Vec::new(),
            mount_probe: Arc::new(crate::fs::SystemMountProbe),
            compile_cache: None,
        }
    }
}

impl RuntimeBuilder {
    /// The host policy (default: empty, so nothing is granted).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Stores data in a redb file at `path` (created if missing).
    pub fn storage_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.storage = StorageChoice::Path(path.into());
        self
    }

    /// Keeps data in memory only (the default; lost when the runtime
    /// drops).
    pub fn in_memory_storage(mut self) -> Self {
        self.storage = StorageChoice::Memory;
        self
    }

    /// Uses a custom storage backend.
    pub fn storage_backend(mut self, backend: Arc<dyn StorageBackend>) -> Self {
        self.storage = StorageChoice::Backend(backend);
        self
    }

    /// Whether redb commits wait for the disk (default `true`). See
    /// [`RedbStorage::durable`].
    pub fn durable_storage(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Where audit records go besides `tracing`.
    pub fn audit(mut self, audit: AuditLog) -> Self {
        self.audit = audit;
        self
    }

    /// Limits for components the policy sets none for.
    pub fn default_limits(mut self, limits: ResolvedLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How often the epoch ticks (default 10 ms): the granularity of the
    /// time limit.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// Instances that may exist at once with the pooling allocator
    /// (default 128).
    pub fn max_instances(mut self, count: u32) -> Self {
        self.max_instances = count.max(1);
        self
    }

    /// Uses a custom message broker (default: an [`InProcessBroker`] with
    /// [`BrokerConfig::default`]).
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.broker = Some(broker);
        self
    }

    /// Uses an [`InProcessBroker`] with these bounds.
    pub fn broker_config(mut self, config: BrokerConfig) -> Self {
        self.broker = Some(Arc::new(InProcessBroker::new(config)));
        self
    }

    /// Adds a host service of the embedder's own: its host functions are
    /// linked next to the contract's, its WIT joins the load-time
    /// compatibility check, and its per-instance state is created with
    /// each instance. See [`HostExtension`].
    pub fn extension(mut self, extension: HostExtension) -> Self {
        self.extensions.push(extension);
        self
    }

    /// Whether to use wasmtime's pooling allocator (default `true`).
    pub fn pooling(mut self, pooling: bool) -> Self {
        self.pooling = pooling;
        self
    }

    /// Trusts the certificates of a PEM bundle as extra roots for
    /// `net:http` over TLS (https), beside the Mozilla roots built in
    /// (`webpki-roots`); for hosts behind a private CA. May be called
    /// more than once. Certificate verification itself is never turned
    /// off. A bundle without a `CERTIFICATE` section, or a certificate
    /// that cannot be a trust anchor, fails [`build`](Self::build) with
    /// [`BuildError::TlsRoots`].
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_roots.push(pem.into());
        self
    }

    /// How mounted directories are probed for the way they compare names
    /// (default: [`SystemMountProbe`](crate::SystemMountProbe)). A mount
    /// into which one of a component's `fs` deny rules reaches must match
    /// names byte for byte, or the component is refused at load time; a
    /// test or an embedder that knows its filesystems can decide here.
    pub fn mount_probe(mut self, probe: Arc<dyn crate::fs::MountProbe>) -> Self {
        self.mount_probe = probe;
        self
    }

    /// Keeps compiled components in `dir` (keyed by the component's
    /// SHA-256, the wasmtime version and the engine settings, each entry
    /// checksummed), so loading the same component again skips the
    /// compile. The directory is created with mode 0700 when missing; one
    /// that another user could write to fails [`build`](Self::build) with
    /// [`BuildError::CompileCache`], as its entries run with the host's
    /// rights. A corrupt entry is recompiled and rewritten. Default: no
    /// cache.
    pub fn compile_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.compile_cache = Some(dir.into());
        self
    }

    /// Calls `hook` with every audit record: each capability decision of a
    /// guarded host call ([`AuditRecord::Decision`]: component, host
    /// function, request, deciding rule and its pattern, the policy line
    /// where known) and each count of refusals the component's
    /// `limits.audit_denials_per_second` kept out
    /// ([`AuditRecord::RateLimited`]). May be called more than once.
    ///
    /// The hook runs on the thread of the call it reports, inside the
    /// host call, so it should be quick (hand the record to a channel for
    /// anything slow); it must not call into the same instance. Records of
    /// allowed calls are made only when someone takes them, so a hook
    /// costs each allowed call one record.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use airssys_runtime::{AuditRecord, Runtime};
    ///
    /// let runtime = Runtime::builder()
    ///     .on_audit(|record| {
    ///         if let AuditRecord::Decision(decision) = record
    ///             && !decision.is_allowed()
    ///         {
    ///             eprintln!("{} refused: {}", decision.component, decision.rule);
    ///         }
    ///     })
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_audit(mut self, hook: impl Fn(&AuditRecord<'_>) + Send + Sync + 'static) -> Self {
        self.audit_hooks.push(Box::new(hook));
        self
    }

    /// Calls `hook` with what became of every entry a delivery pass
    /// ([`Instance::deliver_pending`](crate::Instance::deliver_pending))
    /// takes from a mailbox: a message handled, retried or dead-lettered,
    /// a request answered or expired ([`DeliveryRecord`]). May be called
    /// more than once. The hook runs on the delivering thread, after the
    /// handler returned; it must not call into the same instance.
    pub fn on_delivery(
        mut self,
        hook: impl Fn(&DeliveryRecord<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.delivery_hooks.push(Box::new(hook));
        self
    }

    /// Builds the runtime: configures the engine, links the host, opens
    /// the storage and starts the epoch ticker thread.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the engine, storage or audit file cannot be set
    /// up, or a [`HostExtension`] cannot be linked.
    pub fn build(mut self) -> Result<Runtime, BuildError> {
        let compile_cache = match &self.compile_cache {
            Some(dir) => Some(crate::compile_cache::CompileCache::open(dir)?),
            None => None,
        };
        let engine = Engine::new(&self.engine_config()).map_err(BuildError::Engine)?;
        let tls = crate::host::TlsRoots::from_pem(&self.tls_roots).map_err(BuildError::TlsRoots)?;
        let (linker, mut extensions) = link(&engine, std::mem::take(&mut self.extensions))?;
        let storage = open_storage(self.storage, self.durable)?;
        let mut audit = self.audit;
        audit.add_hooks(self.audit_hooks);
        let services = Services {
            storage,
            audit,
            broker: self
                .broker
                .unwrap_or_else(|| Arc::new(InProcessBroker::new(BrokerConfig::default()))),
            tls,
            // Every instance's guards reach the handle namers here.
            handle_names: std::mem::take(&mut extensions.handle_names),
            meters: Default::default(),
        };
        let ticker = Ticker::start(engine.clone(), self.tick);
        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linker,
                policy: self.policy,
                services: Arc::new(services),
                base_limits: self.limits,
                tick: self.tick,
                extensions,
                mount_probe: self.mount_probe,
                compile_cache,
                names: Mutex::default(),
                delivery_hooks: self.delivery_hooks,
                _ticker: ticker,
            }),
        })
    }

    fn engine_config(&self) -> Config {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // On by default when compiled in, and it makes every component call
        // 2-3x slower; nothing here needs it.
        config.concurrency_support(false);
        if self.pooling {
            // No instance may hold more core instances than the largest
            // share any component of the policy is allowed (see pool.rs).
            let ceiling =
                crate::pool::core_instance_ceiling(&self.policy.every_limits(self.limits));
            let pool = crate::pool::configure(self.max_instances, ceiling);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        config
    }
}

/// A linker with the contract's host functions, deny-all WASI and the
/// embedder's extensions.
fn link(
    engine: &Engine,
    extensions: Vec<HostExtension>,
) -> Result<(Linker<HostState>, Extensions), BuildError> {
    let mut linker = Linker::new(engine);
    crate::host::link(&mut linker).map_err(BuildError::Link)?;
    let extensions = Extensions::install(extensions, &mut linker)?;
    Ok((linker, extensions))
}

/// The storage backend chosen.
fn open_storage(
    choice: StorageChoice,
    durable: bool,
) -> Result<Arc<dyn StorageBackend>, BuildError> {
    Ok(match choice {
        StorageChoice::Memory => Arc::new(MemoryStorage::new()),
        StorageChoice::Path(path) => Arc::new(RedbStorage::open(&path)?.durable(durable)),
        StorageChoice::Backend(backend) => backend,
    })
}
