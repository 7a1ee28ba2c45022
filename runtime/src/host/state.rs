//! The per-store host state: who is calling, what it was granted, its
//! handles, its WASI context, and the memory limiter.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use airssys_contract::capability::{Action, Domain, GrantSet, Request, Rule};
use airssys_contract::guard::{DecisionCache, GuardContext, GuardEvent, Outcome};
use airssys_contract::manifest::Manifest;
use wasmtime::ResourceLimiter;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::audit::{AuditLog, Decided, DecidingRule};
use crate::error::LimitExceeded;
use crate::host::budget::Budget;
use crate::policy::ResolvedLimits;
use crate::storage::StorageBackend;
use crate::sync::Notifier;

/// What every instance of one loaded component shares: computed once at
/// load time.
#[derive(Debug)]
pub(crate) struct ComponentInfo {
    /// The name the component runs under (its manifest name).
    pub(crate) name: String,
    /// The manifest, when the component carries one.
    pub(crate) manifest: Option<Manifest>,
    /// The effective grant, compiled once.
    pub(crate) grants: GrantSet,
    /// Configuration for `init`, from the policy.
    pub(crate) config: BTreeMap<String, String>,
    /// Environment offered by the policy (filtered by `env:read` per call).
    pub(crate) env: BTreeMap<String, String>,
    /// Limits.
    pub(crate) limits: ResolvedLimits,
    /// The filesystem roots the policy mounts, opened once at load time.
    pub(crate) mounts: crate::fs::Mounts,
    /// The running child processes of every instance, for
    /// `limits.max_children`.
    pub(crate) children: crate::host::process::Children,
    /// The network service's state: the policy's own address rules and
    /// the running operations of every instance
    /// (`limits.max_net_in_flight`).
    pub(crate) net: crate::host::NetComponent,
    /// The policy's program rules for the component (argument lists,
    /// variables it may pass, rlimits), by program path.
    pub(crate) programs: BTreeMap<String, crate::policy::ProgramRule>,
    /// Where each rule of `grants` is written in the policy, for audit
    /// records.
    pub(crate) origins: crate::grant::GrantOrigins,
}

/// Services shared by every component of one runtime.
pub(crate) struct Services {
    pub(crate) storage: Arc<dyn StorageBackend>,
    pub(crate) audit: AuditLog,
    /// Queues messages and requests between components.
    pub(crate) broker: Arc<dyn crate::broker::Broker>,
    /// The roots `net:http` over TLS trusts.
    pub(crate) tls: crate::host::TlsRoots,
    /// How handles of the extensions' resources are named, for `{self}`.
    pub(crate) handle_names: crate::host::handles::HandleNames,
    /// What the instances of each component share: log budget, live count.
    pub(crate) meters: crate::rate::Meters,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

/// The data of one `Store`: one running instance — who is calling, what
/// it was granted, its handles and WASI context, and the state of each
/// [`HostExtension`](crate::HostExtension).
///
/// An embedder implements the `Host` traits `bindgen!` generates for its
/// own WIT on this type (see [`HostExtension`](crate::HostExtension)); it
/// implements [`GuardContext`], so `#[airssys::host_fn]` guards check the
/// calling component's grants and write to the runtime's audit log.
pub struct HostState {
    pub(crate) info: Arc<ComponentInfo>,
    pub(crate) services: Arc<Services>,
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    /// Bytes of linear memory in use across the instance's memories.
    memory_in_use: u64,
    /// When the current call into the guest reaches its time limit (set
    /// with the epoch deadline); `poll` never waits past it.
    pub(crate) call_deadline: Option<std::time::Instant>,
    /// Per-instance state of the host extensions, one value per type
    /// (empty, and never allocated, without extensions).
    pub(crate) extensions: Vec<Box<dyn Any + Send>>,
    /// Allow decisions of the guards, cached for this instance (the grants
    /// in `info` never change for its life).
    decisions: DecisionCache,
    /// Results the host holds for this instance and operations pending
    /// (`limits.held_bytes`, `limits.max_pending`).
    pub(crate) budget: Budget,
    /// What the instance sends to the log: `log` records, stdout, stderr.
    pub(crate) log: Arc<crate::host::logging::InstanceLog>,
    /// Notified by every completion of the instance's pending operations
    /// (a reply filled, a network operation ended, child output); its
    /// `poll` sleeps on it. Handed to each operation as it starts, so
    /// nothing reaches for a process-wide signal.
    pub(crate) wake: Arc<Notifier>,
}

impl HostState {
    pub(crate) fn new(info: Arc<ComponentInfo>, services: Arc<Services>) -> HostState {
        let log = Arc::new(crate::host::logging::InstanceLog::new(
            &info.name,
            &info.grants,
            services.meters.of(&info.name),
            &info.limits,
        ));
        let wasi = crate::host::wasi::deny_all(&log);
        let mut table = ResourceTable::new();
        table.set_max_capacity(info.limits.max_handles as usize);
        let budget = Budget::new(&info.name, &info.limits);
        HostState {
            info,
            services,
            table,
            budget,
            log,
            wasi,
            memory_in_use: 0,
            call_deadline: None,
            extensions: Vec::new(),
            decisions: DecisionCache::new(),
            wake: Arc::default(),
        }
    }

    /// The calling component's name (its manifest name).
    pub fn component_name(&self) -> &str {
        &self.info.name
    }

    /// The calling component's effective grant.
    pub fn component_grants(&self) -> &GrantSet {
        &self.info.grants
    }

    /// The instance's state of type `T`, made by a
    /// [`HostExtension::instance_state`](crate::HostExtension::instance_state);
    /// `None` when no extension provides a `T`.
    pub fn extension<T: 'static>(&self) -> Option<&T> {
        self.extensions.iter().find_map(|s| s.downcast_ref::<T>())
    }

    /// The instance's state of type `T`, mutably. See
    /// [`HostState::extension`].
    pub fn extension_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.extensions
            .iter_mut()
            .find_map(|s| s.downcast_mut::<T>())
    }

    /// The instance's resource table, for the resources of an extension's
    /// interfaces (`bindgen!`'s `with: { .. }` types).
    pub fn resource_table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    pub(crate) fn name(&self) -> &str {
        &self.info.name
    }

    /// Adds a host handle to the instance's table; a full table
    /// (`limits.max_handles`) is a [`LimitExceeded::Handles`], which each
    /// interface turns into its own limit error. Any other table failure
    /// traps.
    pub(crate) fn push<T: Send + 'static>(
        &mut self,
        value: T,
    ) -> wasmtime::Result<Result<Resource<T>, LimitExceeded>> {
        match self.table.push(value) {
            Ok(handle) => Ok(Ok(handle)),
            Err(wasmtime::component::ResourceTableError::Full) => Ok(Err(self.handle_limit())),
            Err(e) => Err(e.into()),
        }
    }

    /// The error of a full handle table.
    pub(crate) fn handle_limit(&self) -> LimitExceeded {
        LimitExceeded::Handles {
            component: self.info.name.clone(),
            limit: self.info.limits.max_handles,
        }
    }

    /// Checks a request silently (no audit): for `@capability none`
    /// functions that only filter by grants.
    pub(crate) fn is_granted(&self, domain: Domain, action: Action, resource: &str) -> bool {
        Request::new(domain, action, resource)
            .is_ok_and(|r| self.info.grants.check(&r).is_allowed())
    }

    /// Whether a listing (`list-dir`, `list-keys`) leaves out `resource`:
    /// a deny rule covers it for one of `actions`, or it is no valid
    /// request (then no rule can be checked, so it is hidden). Silent, like
    /// [`HostState::is_granted`]; a resource merely not granted is not
    /// hidden.
    pub(crate) fn hidden_by_deny(
        &self,
        domain: Domain,
        actions: &[Action],
        resource: &str,
    ) -> bool {
        actions
            .iter()
            .any(|&action| match Request::new(domain, action, resource) {
                Ok(r) => matches!(self.info.grants.check(&r).rule, Rule::Deny(_)),
                Err(_) => true,
            })
    }
}

impl GuardContext for HostState {
    fn component(&self) -> &str {
        &self.info.name
    }

    fn grants(&self) -> &GrantSet {
        &self.info.grants
    }

    fn handle_name(&self, resource: &str, rep: u32) -> Option<&str> {
        self.services.handle_names.name(&self.table, resource, rep)
    }

    /// Inlined into the guards: an allow nobody listens to costs a few
    /// loads, not a call.
    #[inline(always)]
    fn record(&self, event: &GuardEvent<'_>) {
        // Recording costs allocations: skip it on the allow path unless
        // someone listens.
        if matches!(event.outcome, Outcome::Allowed(_)) && !self.services.audit.records_allowed() {
            return;
        }
        self.record_decision(event);
    }

    /// Inlined into the guards: an allow nobody listens to is not even
    /// built.
    #[inline(always)]
    fn records_allowed(&self) -> bool {
        self.services.audit.records_allowed()
    }

    fn decisions(&self) -> Option<&DecisionCache> {
        Some(&self.decisions)
    }
}

impl HostState {
    /// Writes a guard decision to the audit log.
    #[inline(never)]
    fn record_decision(&self, event: &GuardEvent<'_>) {
        let audit = &self.services.audit;
        let info = &self.info;
        let (rule, origin) = match event.outcome {
            Outcome::Allowed(d) | Outcome::Refused(d) => match d.rule {
                Rule::Allow(i) => (
                    info.grants
                        .allows()
                        .get(i)
                        .map_or(DecidingRule::NoGrant, DecidingRule::Grant),
                    info.origins.allow(i),
                ),
                Rule::Deny(i) => (
                    info.grants
                        .denies()
                        .get(i)
                        .map_or(DecidingRule::NoGrant, DecidingRule::DenyRule),
                    info.origins.deny(i),
                ),
                Rule::NoGrant => (DecidingRule::NoGrant, None),
            },
            Outcome::OutsideScope(scope) => (DecidingRule::OutsideScope(scope), None),
            Outcome::Invalid => (DecidingRule::Invalid, None),
        };
        audit.record(&Decided {
            component: &info.name,
            function: event.function,
            domain: event.domain,
            action: event.action,
            resource: event.resource,
            rule,
            origin,
        });
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Largest table a component may grow to, in elements.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current) as u64;
        let wanted = self.memory_in_use.saturating_add(grow);
        let limit = self.info.limits.memory_bytes;
        if wanted > limit {
            // Trap at once with a typed error, so the caller learns which
            // limit was hit instead of a guest "out of memory" abort.
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                component: self.info.name.clone(),
                limit,
                wanted,
            }));
        }
        self.memory_in_use = wanted;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
