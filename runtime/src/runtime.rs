//! [`Runtime`], its single-use [`RuntimeBuilder`], loaded components and
//! running instances.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use airssys_contract::capability::GrantSet;
use airssys_contract::manifest::Manifest;
use wasmtime::component::{ComponentNamedList, InstancePre, Lift, Linker, Lower, TypedFunc};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store, Trap};

use crate::audit::AuditLog;
use crate::broker::{Broker, BrokerConfig, Delivery, InProcessBroker, ReplyOutcome};
use crate::error::{BuildError, LimitExceeded, LoadError, RuntimeError};
use crate::extension::{Extensions, HostExtension};
use crate::grant::effective_grants;
use crate::host::bindings::airssys::core::types::KeyValue;
use crate::host::bindings::exports::airssys::core::{handler, lifecycle};
use crate::host::rate::ComponentMeters;
use crate::host::state::{ComponentInfo, HostState, Services};
use crate::identity::ComponentDigest;
use crate::loader;
use crate::policy::{Policy, ResolvedLimits};
use crate::storage::{MemoryStorage, RedbStorage, StorageBackend};

/// How often the epoch advances; the CPU time limit is enforced at this
/// granularity.
pub const DEFAULT_EPOCH_TICK: Duration = Duration::from_millis(10);

/// Default number of instances that may exist at once (pooling allocator).
pub const DEFAULT_MAX_INSTANCES: u32 = 128;

/// The name given to components without a manifest.
pub const UNANNOTATED_NAME: &str = "unannotated";

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
    /// How many `LoadedComponent`s are alive per component name: the
    /// broker forgets a name when its last one is dropped.
    loaded: Mutex<HashMap<String, usize>>,
    /// The digest each name was last loaded with (see `loader::Names`);
    /// locked only while `loaded` is.
    identities: Mutex<HashMap<String, ComponentDigest>>,
    _ticker: Ticker,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("policy", &self.shared.policy)
            .field("limits", &self.shared.base_limits)
            .finish_non_exhaustive()
    }
}

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

    /// Loads a component from a file. See [`Runtime::load`].
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] when the file cannot be read, otherwise as
    /// [`Runtime::load`].
    pub fn load_file(&self, path: &Path) -> Result<LoadedComponent, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.load(&bytes)
    }

    /// Loads a component: reads its manifest, checks its identity (the
    /// policy's `sha256` pin of its name; no other component loaded under
    /// the same name), checks its imports against the host's contract,
    /// computes its effective grant under the policy, compiles it and
    /// links it (once; instances are then cheap).
    ///
    /// The same file may be loaded any number of times; a different file
    /// under a name in use is refused until every [`LoadedComponent`] of
    /// that name is dropped. Components without a manifest all run as
    /// [`UNANNOTATED_NAME`], so the same holds for them.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] saying what to change: no manifest, an invalid
    /// manifest (a reserved name or one over a size limit included), a
    /// name pinned to another digest, a name another component holds,
    /// incompatible imports (every mismatch listed), required capabilities
    /// the policy does not grant (each named, with the policy line to
    /// add), invalid wasm, or imports this host does not provide.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        let shared = &self.shared;
        let manifest = loader::manifest(bytes, &shared.policy)?;
        let name = manifest
            .as_ref()
            .map_or(UNANNOTATED_NAME, |m| m.name.as_str())
            .to_owned();
        let digest = ComponentDigest::of(bytes);
        loader::check_pin(&name, &digest, &shared.policy)?;
        // Refused before compiling; claimed for good below.
        self.names(|names| names.check(&name, &digest))?;
        loader::check_imports(bytes, &name, shared.extensions.served())?;
        let (grants, config, env) = match &manifest {
            Some(m) => (
                effective_grants(m, &shared.policy)?,
                shared.policy.config_for(&name),
                shared.policy.env_for(&name),
            ),
            None => (GrantSet::default(), Default::default(), Default::default()),
        };
        let subscriptions = crate::broker::subscriptions(&name, &shared.policy, &grants)?;
        let limits = shared.policy.limits_for(&name, shared.base_limits);
        warn_if_over_storage_quota(shared.services.storage.as_ref(), &name, &limits);
        let mounts = match &manifest {
            Some(_) => crate::fs::Mounts::open(
                &name,
                &shared.policy.mounts_for(&name),
                &grants,
                &*shared.mount_probe,
            )?,
            None => crate::fs::Mounts::default(),
        };
        let core_instances = crate::pool::check_core_instances(&name, bytes, &limits)?;
        let component = match &shared.compile_cache {
            Some(cache) => cache.component(&shared.engine, bytes),
            None => wasmtime::component::Component::new(&shared.engine, bytes),
        }
        .map_err(|e| LoadError::Invalid(format!("{e:?}")))?;
        crate::pool::admit(&name, &component, core_instances, &limits)?;
        let pre = shared.linker.instantiate_pre(&component).map_err(|e| LoadError::Unlinkable {
            component: name.clone(),
            message: format!(
                "component `{name}` imports something this host does not provide: {}; this host \
                 provides the airssys contract ({}){} and WASI 0.2 (deny-all)",
                link_failure(&e),
                contract_packages(),
                extension_packages(&shared.extensions),
            ),
        })?;
        let lifecycle = lifecycle::GuestIndices::new(&pre).ok();
        let handler = handler::GuestIndices::new(&pre).ok();
        if handler.is_none() && !subscriptions.is_empty() {
            return Err(LoadError::Subscription {
                component: name.clone(),
                message: format!(
                    "component `{name}` is subscribed to topics by the policy but does not \
                     export `airssys:core/handler`, so it cannot receive messages; remove its \
                     `subscribe` entries or export the handler"
                ),
            });
        }
        // Claimed before the broker hears of the name, so a refused
        // component never touches the registration of the one it imitates.
        self.names(|names| names.claim(&name, digest))?;
        shared.services.broker.register(
            &name,
            crate::broker::Subscriber::new(subscriptions, grants.clone())
                .max_message_bytes(crate::broker::message_bound(limits.memory_bytes)),
        );
        let (programs, process_notices) = match &manifest {
            Some(_) => (
                shared.policy.programs_for(&name),
                shared.policy.process_notices(&name, &grants),
            ),
            None => Default::default(),
        };
        for notice in &process_notices {
            tracing::warn!(target: "airssys::load", component = name.as_str(), "{notice}");
        }
        tracing::info!(
            target: "airssys::load",
            component = name.as_str(),
            sha256 = %digest,
            grants = %grants.allows().iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            denies = grants.denies().len(),
            process_notices = %process_notices.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            "component loaded"
        );
        let net =
            crate::host::NetComponent::new(&name, &shared.policy, manifest.is_some(), &limits);
        for note in net.load_notes(&grants) {
            if note.narrows {
                tracing::warn!(target: "airssys::load", component = name.as_str(), "{}", note.text);
            } else {
                tracing::info!(target: "airssys::load", component = name.as_str(), "{}", note.text);
            }
        }
        let info = Arc::new(ComponentInfo {
            name,
            manifest,
            grants,
            config,
            env,
            limits,
            mounts,
            children: Default::default(),
            net,
            programs,
        });
        Ok(LoadedComponent {
            inner: Arc::new(Loaded {
                shared: Arc::clone(shared),
                info,
                pre,
                lifecycle,
                handler,
                process_notices,
            }),
        })
    }
}

/// Warns when `component` already stores more than its quota: data
/// written under a larger quota, or before each entry was charged its
/// names and overhead (see `docs/decisions/containment-storage.md`). It
/// keeps its data and may read, delete and shrink it; writes that grow it
/// are refused until it is back under the limit.
fn warn_if_over_storage_quota(
    storage: &dyn StorageBackend,
    component: &str,
    limits: &ResolvedLimits,
) {
    let Ok(used) = storage.usage(component) else {
        return;
    };
    if used > limits.storage_bytes {
        tracing::warn!(
            target: "airssys::load",
            component,
            used,
            limit = limits.storage_bytes,
            "component `{component}` stores {used} bytes, more than its storage quota of {} \
             bytes (`limits.storage_bytes`; each entry is charged its component name, bucket, \
             key and value bytes plus {} bytes): it can read, delete and shrink its entries, \
             but writes that grow them are refused until it is under the limit; raise \
             `limits.storage_bytes` in the policy to keep writing",
            limits.storage_bytes,
            crate::storage::ENTRY_OVERHEAD,
        );
    }
}

impl Runtime {
    /// Runs `f` on the names in use, both maps locked (in this order).
    fn names<T>(&self, f: impl FnOnce(&mut loader::Names<'_>) -> T) -> T {
        let mut counts = self.shared.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let mut digests = self
            .shared
            .identities
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        f(&mut loader::Names {
            counts: &mut counts,
            digests: &mut digests,
        })
    }
}

/// `, and its own extensions (example:greeter@0.1.0)`, or nothing.
fn extension_packages(extensions: &Extensions) -> String {
    let names: Vec<String> = extensions.served().iter().map(|s| s.name()).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(", its own extensions ({})", names.join(", "))
    }
}

/// wasmtime's link error in words a person can act on: the interface it
/// names and, when a function or type of it is what fails, that one
/// (never wasmtime's bare "function implementation is missing").
fn link_failure(error: &wasmtime::Error) -> String {
    let causes: Vec<String> = error.chain().map(|c| c.to_string()).collect();
    let mut text = causes.first().cloned().unwrap_or_default();
    let export = causes.iter().find_map(|c| {
        let (name, _) = c.strip_prefix("instance export `")?.split_once('`')?;
        Some(name.to_owned())
    });
    if let Some(export) = export {
        if causes
            .iter()
            .any(|c| c.ends_with("implementation is missing"))
        {
            text.push_str(&format!(" (this host does not provide `{export}` in it)"));
        } else {
            text.push_str(&format!(" (this host's `{export}` has a different type)"));
        }
    }
    text
}

fn contract_packages() -> String {
    let resolve = airssys_contract::contract::Contract::embedded().resolve();
    resolve
        .packages
        .iter()
        .map(|(_, p)| p.name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
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

    /// Builds the runtime: configures the engine, links the host and
    /// starts the epoch ticker thread.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the engine, storage or audit file cannot be set
    /// up, or a [`HostExtension`] cannot be linked.
    pub fn build(self) -> Result<Runtime, BuildError> {
        let compile_cache = match &self.compile_cache {
            Some(dir) => Some(crate::compile_cache::CompileCache::open(dir)?),
            None => None,
        };
        let engine =
            Engine::new(&self.engine_config()).map_err(|e| BuildError::Engine(format!("{e:?}")))?;
        let tls = crate::host::TlsRoots::from_pem(&self.tls_roots).map_err(BuildError::TlsRoots)?;
        let mut linker = Linker::new(&engine);
        crate::host::link(&mut linker).map_err(|e| BuildError::Link(format!("{e:?}")))?;
        let mut extensions = Extensions::install(self.extensions, &mut linker)?;
        // Every instance's guards reach the handle namers through the
        // shared services.
        let handle_names = std::mem::take(&mut extensions.handle_names);
        let storage: Arc<dyn StorageBackend> = match self.storage {
            StorageChoice::Memory => Arc::new(MemoryStorage::new()),
            StorageChoice::Path(path) => Arc::new(RedbStorage::open(&path)?.durable(self.durable)),
            StorageChoice::Backend(backend) => backend,
        };
        let ticker = Ticker::start(engine.clone(), self.tick);
        Ok(Runtime {
            shared: Arc::new(Shared {
                engine,
                linker,
                policy: self.policy,
                services: Arc::new(Services {
                    storage,
                    audit: self.audit,
                    broker: self
                        .broker
                        .unwrap_or_else(|| Arc::new(InProcessBroker::new(BrokerConfig::default()))),
                    tls,
                    handle_names,
                    meters: Default::default(),
                }),
                base_limits: self.limits,
                tick: self.tick,
                extensions,
                mount_probe: self.mount_probe,
                compile_cache,
                loaded: Mutex::default(),
                identities: Mutex::default(),
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

/// Advances the engine's epoch every tick until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("airssys-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the epoch thread: time limits will not be enforced");
        }
        Ticker { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A component that passed every load-time check, compiled and linked:
/// instantiate it as often as needed. Cheap to clone.
#[derive(Clone)]
pub struct LoadedComponent {
    inner: Arc<Loaded>,
}

struct Loaded {
    shared: Arc<Shared>,
    info: Arc<ComponentInfo>,
    pre: InstancePre<HostState>,
    lifecycle: Option<lifecycle::GuestIndices>,
    handler: Option<handler::GuestIndices>,
    /// What the operator should know about its process rights.
    process_notices: Vec<crate::policy::ProcessNotice>,
}

impl Drop for Loaded {
    /// Unloading: once the last `LoadedComponent` of a name is gone, the
    /// broker forgets its subscriptions and mailbox (see
    /// docs/messaging.md, "Unloading").
    fn drop(&mut self) {
        let name = &self.info.name;
        let last = {
            let mut loaded = self.shared.loaded.lock().unwrap_or_else(|p| p.into_inner());
            match loaded.get_mut(name.as_str()) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                _ => {
                    loaded.remove(name.as_str());
                    true
                }
            }
        };
        if last {
            self.shared.services.meters.forget(name);
            self.shared.services.audit.forget(name);
            let dropped = self.shared.services.broker.unregister(name);
            if dropped > 0 {
                tracing::warn!(
                    target: "airssys::load",
                    component = name.as_str(),
                    dropped,
                    "component unloaded with undelivered entries in its mailbox; they are dropped \
                     and queued requests answered with an error"
                );
            }
        }
    }
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("name", &self.inner.info.name)
            .finish_non_exhaustive()
    }
}

impl LoadedComponent {
    /// The name the component runs under: its manifest name, or
    /// [`UNANNOTATED_NAME`].
    pub fn name(&self) -> &str {
        &self.inner.info.name
    }

    /// The component's manifest (`None` for an unannotated component).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.inner.info.manifest.as_ref()
    }

    /// The effective grant: manifest ∩ policy, minus policy denies.
    pub fn grants(&self) -> &GrantSet {
        &self.inner.info.grants
    }

    /// The limits that apply to each instance.
    pub fn limits(&self) -> ResolvedLimits {
        self.inner.info.limits
    }

    /// What the operator should know about the component's process rights
    /// (each also logged as a warning when it loaded): programs it may run
    /// with any arguments — full code execution as the host user — and
    /// `env:read` grants that no longer pass variables to children. See
    /// docs/policy.md, "Programs".
    pub fn process_notices(&self) -> &[crate::policy::ProcessNotice] {
        &self.inner.process_notices
    }

    /// Creates an instance and calls its `init` export (when it has one)
    /// with the configuration from the policy.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Instantiate`] when the instance cannot be created,
    /// [`RuntimeError::Init`] when `init` returns an error, or a limit or
    /// trap error raised during start-up.
    pub fn instantiate(&self) -> Result<Instance, RuntimeError> {
        let loaded = &self.inner;
        let services = &loaded.shared.services;
        let live = Live::enter(services.meters.of(&loaded.info.name), &loaded.info)?;
        services.audit.limit_denials(
            &loaded.info.name,
            loaded.info.limits.audit_denials_per_second,
        );
        let mut state = HostState::new(
            Arc::clone(&loaded.info),
            Arc::clone(&loaded.shared.services),
        );
        state.extensions = loaded.shared.extensions.instance_states(&loaded.info.name);
        let mut store = Store::new(&loaded.shared.engine, state);
        store.limiter(|state| state as &mut dyn wasmtime::ResourceLimiter);
        store.epoch_deadline_trap();
        // Undone in `Drop for Instance`.
        loaded
            .shared
            .services
            .broker
            .set_running(&loaded.info.name, true);
        let mut instance = Instance {
            store,
            instance: None,
            lifecycle: None,
            handler: None,
            delivery: Dispatch::default(),
            loaded: Arc::clone(loaded),
            poisoned: false,
            stopped: false,
            _live: live,
        };
        instance.arm();
        let created = loaded.pre.instantiate(&mut instance.store);
        instance.report_drops();
        let created = created.map_err(|e| {
            instance.classify(e, |component, message| RuntimeError::Instantiate {
                component,
                message,
            })
        })?;
        instance.lifecycle = match &loaded.lifecycle {
            Some(indices) => Some(
                indices
                    .load(&mut instance.store, &created)
                    .map_err(|e| instance.trap(e))?,
            ),
            None => None,
        };
        instance.handler = match &loaded.handler {
            Some(indices) => Some(
                indices
                    .load(&mut instance.store, &created)
                    .map_err(|e| instance.trap(e))?,
            ),
            None => None,
        };
        instance.instance = Some(created);
        instance.init()?;
        Ok(instance)
    }
}

/// A typed export of one [`Instance`], found once with
/// [`Instance::export`].
pub struct Export<P, R> {
    func: TypedFunc<P, R>,
}

impl<P, R> std::fmt::Debug for Export<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

/// What a component's handler returned as its error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The component refused the message or caller.
    #[error("denied: {0}")]
    Denied(String),
    /// The payload was not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl From<handler::Error> for HandlerError {
    fn from(error: handler::Error) -> HandlerError {
        match error {
            handler::Error::Denied(m) => HandlerError::Denied(m),
            handler::Error::InvalidInput(m) => HandlerError::InvalidInput(m),
            handler::Error::Other(m) => HandlerError::Other(m),
        }
    }
}

/// A running instance of a [`LoadedComponent`], with its own store,
/// handles and limits. Dropping it calls the component's `shutdown`
/// (unless it trapped); [`Instance::shutdown`] does so explicitly.
pub struct Instance {
    store: Store<HostState>,
    instance: Option<wasmtime::component::Instance>,
    lifecycle: Option<lifecycle::Guest>,
    handler: Option<handler::Guest>,
    /// Delivery state reused between passes (see `deliver_pending`).
    delivery: Dispatch,
    loaded: Arc<Loaded>,
    /// The instance trapped; wasmtime refuses further calls.
    poisoned: bool,
    stopped: bool,
    /// Counts the instance against `limits.max_instances` until dropped
    /// (after `Drop for Instance` has run `shutdown`).
    _live: Live,
}

/// One live instance of a component, counted against its
/// `limits.max_instances` until dropped.
struct Live(Arc<ComponentMeters>);

impl Live {
    fn enter(meters: Arc<ComponentMeters>, info: &ComponentInfo) -> Result<Live, RuntimeError> {
        let limit = info.limits.max_instances;
        meters
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| {
                RuntimeError::Limit(LimitExceeded::Instances {
                    component: info.name.clone(),
                    limit,
                })
            })?;
        Ok(Live(meters))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("component", &self.loaded.info.name)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// The component's name.
    pub fn name(&self) -> &str {
        &self.loaded.info.name
    }

    /// Sends a request to the component's `handler.handle-request` export,
    /// as if from the component `source`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NoSuchExport`] when the component has no handler;
    /// a limit or trap error when the call fails. The component's own
    /// error is the inner `Err`.
    pub fn request(
        &mut self,
        source: &str,
        payload: &[u8],
    ) -> Result<Result<Vec<u8>, HandlerError>, RuntimeError> {
        let Some(handler) = self.handler.clone() else {
            return Err(self.no_export("airssys:core/handler@1.0.0#handle-request"));
        };
        self.enter()?;
        let result = handler.call_handle_request(&mut self.store, &source.to_owned(), payload);
        self.finish(result).map(|r| r.map_err(HandlerError::from))
    }

    /// Looks up the exported function `name` (inside the exported
    /// interface `interface`, e.g. `my:pkg/api@1.0.0`, or at the top level
    /// when `None`) and checks its type, once; call it with
    /// [`Instance::invoke`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NoSuchExport`] when there is no such export of that
    /// type.
    pub fn export<P, R>(
        &mut self,
        interface: Option<&str>,
        name: &str,
    ) -> Result<Export<P, R>, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync,
    {
        let export = match interface {
            Some(i) => format!("{i}#{name}"),
            None => name.to_owned(),
        };
        let Some(instance) = self.instance else {
            return Err(self.no_export(&export));
        };
        let index = match interface {
            Some(i) => instance
                .get_export_index(&mut self.store, None, i)
                .and_then(|parent| instance.get_export_index(&mut self.store, Some(&parent), name)),
            None => instance.get_export_index(&mut self.store, None, name),
        };
        let Some(index) = index else {
            return Err(self.no_export(&export));
        };
        let func = instance
            .get_typed_func::<P, R>(&mut self.store, &index)
            .map_err(|e| RuntimeError::NoSuchExport {
                component: self.name().to_owned(),
                export,
                message: format!("{e}"),
            })?;
        Ok(Export { func })
    }

    /// Calls an export found with [`Instance::export`] on this instance.
    ///
    /// # Errors
    ///
    /// A limit or trap error when the call fails.
    pub fn invoke<P, R>(&mut self, export: &Export<P, R>, params: P) -> Result<R, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync,
    {
        self.enter()?;
        let result = export.func.call(&mut self.store, params);
        self.finish(result)
    }

    /// Looks up and calls an export in one step: [`Instance::export`]
    /// then [`Instance::invoke`].
    ///
    /// # Errors
    ///
    /// As [`Instance::export`] and [`Instance::invoke`].
    pub fn call<P, R>(
        &mut self,
        interface: Option<&str>,
        name: &str,
        params: P,
    ) -> Result<R, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync,
    {
        let export = self.export(interface, name)?;
        self.invoke(&export, params)
    }

    /// Calls the component's `shutdown` export (when it has one) and drops
    /// the instance.
    ///
    /// # Errors
    ///
    /// A limit or trap error raised by `shutdown`.
    pub fn shutdown(mut self) -> Result<(), RuntimeError> {
        self.stop()
    }

    fn init(&mut self) -> Result<(), RuntimeError> {
        let Some(lifecycle) = self.lifecycle.clone() else {
            return Ok(());
        };
        let config: Vec<KeyValue> = self
            .loaded
            .info
            .config
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        self.enter()?;
        let result = lifecycle.call_init(&mut self.store, &config);
        match self.finish(result)? {
            Ok(()) => Ok(()),
            Err(error) => Err(RuntimeError::Init {
                component: self.name().to_owned(),
                message: match error {
                    lifecycle::Error::Denied(m) => format!("denied: {m}"),
                    lifecycle::Error::InvalidConfig(m) => format!("invalid configuration: {m}"),
                    lifecycle::Error::Other(m) => m,
                },
            }),
        }
    }

    fn stop(&mut self) -> Result<(), RuntimeError> {
        if self.stopped || self.poisoned {
            return Ok(());
        }
        self.stopped = true;
        let Some(lifecycle) = self.lifecycle.clone() else {
            return Ok(());
        };
        self.enter()?;
        let result = lifecycle.call_shutdown(&mut self.store);
        self.finish(result)
    }

    /// Sets the time limit for the next call into the guest.
    fn arm(&mut self) {
        let tick = self.loaded.shared.tick.as_nanos().max(1);
        let limit = self.loaded.info.limits.cpu_time.as_nanos();
        // One extra tick: the current one may be about to end.
        let ticks = u64::try_from(limit.div_ceil(tick))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.store.set_epoch_deadline(ticks);
        // `poll` waits no longer than the same limit (see host/poll.rs).
        let now = std::time::Instant::now();
        self.store.data_mut().call_deadline = now.checked_add(self.loaded.info.limits.cpu_time);
    }

    fn enter(&mut self) -> Result<(), RuntimeError> {
        if self.poisoned {
            return Err(RuntimeError::Trap {
                component: self.name().to_owned(),
                message: "the instance trapped earlier and cannot be called again; instantiate \
                          the component anew"
                    .to_owned(),
            });
        }
        self.arm();
        Ok(())
    }

    fn finish<T>(&mut self, result: wasmtime::Result<T>) -> Result<T, RuntimeError> {
        self.report_drops();
        result.map_err(|e| self.trap(e))
    }

    /// Ends the unfinished stdout and stderr lines of the call, and says
    /// what the component's rate limits dropped (log records, output
    /// lines, audit records of refusals) since the last time: at the end
    /// of every call, so no drop goes unsaid.
    fn report_drops(&self) {
        let state = self.store.data();
        state.log.end_of_call();
        state.services.audit.report_dropped(&state.info.name);
    }

    fn trap(&mut self, error: wasmtime::Error) -> RuntimeError {
        self.classify(error, |component, message| RuntimeError::Trap {
            component,
            message,
        })
    }

    /// Turns a wasmtime error into the limit it reports, or `other`.
    fn classify(
        &mut self,
        error: wasmtime::Error,
        other: impl FnOnce(String, String) -> RuntimeError,
    ) -> RuntimeError {
        self.poisoned = true;
        if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
            return RuntimeError::Limit(limit.clone());
        }
        if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return RuntimeError::Limit(LimitExceeded::CpuTime {
                component: self.name().to_owned(),
                limit: self.loaded.info.limits.cpu_time,
            });
        }
        // The cause first ("wasm `unreachable` instruction executed"),
        // then wasmtime's report with the wasm backtrace.
        let cause = error.root_cause().to_string();
        other(self.name().to_owned(), format!("{cause}\n{error:?}"))
    }

    fn no_export(&self, export: &str) -> RuntimeError {
        RuntimeError::NoSuchExport {
            component: self.name().to_owned(),
            export: export.to_owned(),
            message: "the component does not export it".to_owned(),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(component = self.name(), %error, "shutdown failed");
        }
        let broker = &self.loaded.shared.services.broker;
        broker.set_running(&self.loaded.info.name, false);
    }
}

// ---- Message delivery (see docs/messaging.md) -------------------------------

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages the handler accepted.
    pub delivered: usize,
    /// Failed deliveries (handler error or trap), each retried later.
    pub failed: usize,
    /// Messages sent to the dead-letter topic after the last attempt.
    pub dead_lettered: usize,
    /// Requests answered (with a reply or the handler's error).
    pub answered: usize,
    /// Requests dropped because the requester gave up or timed out.
    pub expired: usize,
}

impl DeliveryReport {
    /// Whether the pass found any work.
    pub fn is_empty(&self) -> bool {
        *self == DeliveryReport::default()
    }

    fn add(&mut self, other: DeliveryReport) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.dead_lettered += other.dead_lettered;
        self.answered += other.answered;
        self.expired += other.expired;
    }
}

impl Runtime {
    /// Delivers queued messages and requests to `instances`, round-robin,
    /// at most `batch` entries per instance per turn, until no instance has
    /// anything left (a message that keeps failing ends in its dead-letter
    /// topic, so this terminates).
    ///
    /// # Errors
    ///
    /// The first trap or limit error of a handler; the message that caused
    /// it stays queued (its attempt counted) for a new instance.
    pub fn run_until_idle(
        &self,
        instances: &mut [Instance],
        batch: usize,
    ) -> Result<DeliveryReport, RuntimeError> {
        let mut total = DeliveryReport::default();
        loop {
            let mut round = DeliveryReport::default();
            for instance in instances.iter_mut() {
                round.add(instance.deliver_pending(batch)?);
            }
            if round.is_empty() {
                return Ok(total);
            }
            total.add(round);
        }
    }
}

impl Instance {
    /// Delivers up to `max` queued entries of this component's mailbox:
    /// messages to `handler.handle-message` (a failure is retried up to
    /// [`BrokerConfig::max_attempts`] times, then the message goes to
    /// `airssys.dead-letter.<component>`), requests to
    /// `handler.handle-request` (the answer fills the requester's
    /// pending reply). A message larger than the component can take
    /// ([`crate::broker::message_bound`] of its `limits.memory_bytes`) is
    /// dead-lettered without a call: a fresh instance would fail on it too.
    ///
    /// The entries are taken from the broker as one batch
    /// ([`Broker::take_batch`]) and handed to the handler one call each, in
    /// order, through a handle to the export looked up once per instance;
    /// topic, source and payload are shared with the broker, not copied,
    /// until they are written into the guest's memory. Every handler call
    /// (retries included) and every message dead-lettered for its size
    /// counts against `max`; whatever the pass does not
    /// reach goes back to the head of the mailbox in its order.
    ///
    /// # Errors
    ///
    /// A trap or limit error of a handler. The instance is then unusable;
    /// the failed message stays at the head of the mailbox for the next
    /// instance of the component.
    pub fn deliver_pending(&mut self, max: usize) -> Result<DeliveryReport, RuntimeError> {
        let mut report = DeliveryReport::default();
        if self.poisoned || max == 0 {
            return Ok(report);
        }
        let loaded = Arc::clone(&self.loaded);
        let broker = loaded.shared.services.broker.as_ref();
        let name = loaded.info.name.as_str();
        let mut batch = std::mem::take(&mut self.delivery.batch);
        broker.take_batch(name, max, &mut batch);
        let max_attempts = broker.config().max_attempts;
        let max_message_bytes = crate::broker::message_bound(loaded.info.limits.memory_bytes);
        let mut calls = 0;
        let mut failure = None;
        while let Some(delivery) = batch.pop_front() {
            if calls == max {
                batch.push_front(delivery);
                break;
            }
            calls += 1;
            match delivery {
                Delivery::Message { envelope, .. } if envelope.size() > max_message_bytes => {
                    // Every fresh instance would hit its memory limit too:
                    // no attempt, straight to the dead letters (a broker
                    // that checks `Subscriber::max_message_bytes` never
                    // queues it). Counted against `max` as a call.
                    report.dead_lettered += 1;
                    let error = DeliveryFailure::TooLarge {
                        size: envelope.size(),
                        limit: max_message_bytes,
                    };
                    dead_letter(broker, name, envelope, &error);
                }
                Delivery::Message { envelope, attempts } => {
                    let error = match self.call_handle_message(&envelope) {
                        Ok(()) => {
                            report.delivered += 1;
                            continue;
                        }
                        Err(e) => e,
                    };
                    report.failed += 1;
                    let attempts = attempts.saturating_add(1);
                    if attempts < max_attempts {
                        // Retried next, ahead of the rest of the batch.
                        batch.push_front(Delivery::Message { envelope, attempts });
                    } else {
                        report.dead_lettered += 1;
                        dead_letter(broker, name, envelope, &error);
                    }
                    if let DeliveryFailure::Trap(error) = error {
                        failure = Some(error);
                        break;
                    }
                }
                Delivery::Request {
                    source,
                    payload,
                    reply,
                } => {
                    if !reply.is_wanted() {
                        report.expired += 1;
                        continue;
                    }
                    report.answered += 1;
                    match self.request(&source, &payload) {
                        Ok(Ok(bytes)) => reply.fill(ReplyOutcome::Reply(bytes)),
                        Ok(Err(error)) => reply.fill(ReplyOutcome::Remote(error.to_string())),
                        Err(error) => {
                            reply.fill(ReplyOutcome::Remote(format!(
                                "component `{name}` failed while handling the request"
                            )));
                            failure = Some(error);
                            break;
                        }
                    };
                }
            }
        }
        if !batch.is_empty() {
            broker.requeue_front_all(name, &mut batch);
        }
        self.delivery.batch = batch;
        match failure {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    fn call_handle_message(
        &mut self,
        envelope: &crate::broker::Envelope,
    ) -> Result<(), DeliveryFailure> {
        let func = match self.delivery.handle_message {
            Some(func) => func,
            None => {
                let func = self.find_handle_message().map_err(DeliveryFailure::Trap)?;
                self.delivery.handle_message = Some(func);
                func
            }
        };
        let message = WireMessage {
            topic: Arc::clone(&envelope.topic),
            source: Arc::clone(&envelope.source),
            payload: Arc::clone(&envelope.payload),
        };
        self.enter().map_err(DeliveryFailure::Trap)?;
        let result = func.call(&mut self.store, (message,));
        match self.finish(result) {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(error),)) => Err(DeliveryFailure::Handler(HandlerError::from(error))),
            Err(error) => Err(DeliveryFailure::Trap(error)),
        }
    }

    /// The typed `handle-message` export, looked up once per instance.
    fn find_handle_message(&mut self) -> Result<HandleMessage, RuntimeError> {
        const EXPORT: &str = "airssys:core/handler@1.0.0#handle-message";
        let (Some(instance), Some(_)) = (self.instance, &self.handler) else {
            return Err(self.no_export(EXPORT));
        };
        let index = instance
            .get_export_index(&mut self.store, None, "airssys:core/handler@1.0.0")
            .and_then(|parent| {
                instance.get_export_index(&mut self.store, Some(&parent), "handle-message")
            });
        let Some(index) = index else {
            return Err(self.no_export(EXPORT));
        };
        instance
            .get_typed_func(&mut self.store, index)
            .map_err(|e| RuntimeError::NoSuchExport {
                component: self.name().to_owned(),
                export: EXPORT.to_owned(),
                message: format!("{e}"),
            })
    }
}

/// `handler.handle-message` with the message lowered straight from the
/// broker's shared buffers.
type HandleMessage = TypedFunc<(WireMessage,), (Result<(), handler::Error>,)>;

/// The WIT `message` record, lowered from shared parts: passing it clones
/// three `Arc`s, never the bytes.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lower)]
#[component(record)]
struct WireMessage {
    topic: Arc<str>,
    source: Arc<str>,
    payload: Arc<[u8]>,
}

/// What an instance keeps between delivery passes.
#[derive(Default)]
struct Dispatch {
    /// The typed `handle-message` export, once looked up.
    handle_message: Option<HandleMessage>,
    /// The batch being delivered; kept to reuse its allocation.
    batch: std::collections::VecDeque<Delivery>,
}

/// Why a message was not delivered.
enum DeliveryFailure {
    /// The handler returned an error; the instance is fine.
    Handler(HandlerError),
    /// The call trapped or hit a limit; the instance is unusable.
    Trap(RuntimeError),
    /// The message is larger than the component can take; not tried.
    TooLarge {
        /// Its topic and payload bytes.
        size: usize,
        /// Half the component's `limits.memory_bytes`.
        limit: usize,
    },
}

impl std::fmt::Display for DeliveryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryFailure::Handler(e) => write!(f, "handler error: {e}"),
            DeliveryFailure::Trap(e) => write!(f, "{e}"),
            DeliveryFailure::TooLarge { size, limit } => write!(
                f,
                "a message of {size} bytes (topic and payload) is larger than the component can \
                 take: {limit} bytes, half its `limits.memory_bytes`"
            ),
        }
    }
}

/// Sends a message the component did not handle to its dead-letter topic
/// (source and payload kept; [`Broker::dead_letter`]). Without a
/// subscriber that takes it, the message is dropped with a warning.
fn dead_letter(
    broker: &dyn Broker,
    component: &str,
    envelope: crate::broker::Envelope,
    error: &DeliveryFailure,
) {
    let why = match error {
        DeliveryFailure::TooLarge { .. } => "message dead-lettered without a delivery attempt",
        _ => "message dead-lettered after its last delivery attempt",
    };
    tracing::warn!(
        target: "airssys::messaging",
        component,
        topic = &*envelope.topic,
        source = &*envelope.source,
        %error,
        "{why}"
    );
    if broker.dead_letter(component, envelope) == 0 {
        tracing::warn!(
            target: "airssys::messaging",
            component,
            dead_letter_topic = crate::broker::dead_letter_topic(component).as_str(),
            "no subscriber of the dead-letter topic took the message; it is dropped"
        );
    }
}
