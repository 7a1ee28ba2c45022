//! [`LoadedComponent`]: a component that passed the load-time checks, and
//! what unloading it (dropping its last copy) does.

use std::sync::Arc;

use airssys_contract::capability::{Capability, GrantSet};
use airssys_contract::manifest::Manifest;
use wasmtime::component::InstancePre;

use super::Shared;
use super::instance::Instance;
use crate::error::RuntimeError;
use crate::host::bindings::exports::airssys::core::{handler, lifecycle};
use crate::host::state::{ComponentInfo, HostState};
use crate::policy::{ProcessNotice, ResolvedLimits, RuleOrigin};
use crate::sync::{Notifier, lock};

/// A grant of the component's own policy table that its manifest declares
/// nothing to overlap, so the load drops it (see
/// [`LoadedComponent::undeclared_grants`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeclaredGrant {
    /// The granted pattern, as the policy wrote it.
    pub grant: Capability,
    /// Where the policy wrote it; `None` for a rule added in code (a
    /// [`PolicyBuilder`](crate::PolicyBuilder) or the CLI's `--grant`).
    pub origin: Option<RuleOrigin>,
}

impl UndeclaredGrant {
    /// The warning the load logs, naming `component`, the grant, where it
    /// is written and how to fix it.
    pub fn message(&self, component: &str) -> String {
        let origin = match &self.origin {
            Some(origin) => format!(" ({origin})"),
            None => String::new(),
        };
        format!(
            "the grant `{}` to `{component}`{origin} has no effect: the component's manifest \
             declares no pattern it overlaps, so the load drops it; declare it in `requires` or \
             `optional` of the component, or remove the grant",
            self.grant
        )
    }
}

/// A component that passed every load-time check, compiled and linked:
/// instantiate it as often as needed. Cheap to clone.
#[derive(Clone)]
pub struct LoadedComponent {
    pub(super) inner: Arc<Loaded>,
}

/// What every copy of a [`LoadedComponent`] and its instances share.
pub(super) struct Loaded {
    pub(super) shared: Arc<Shared>,
    pub(super) info: Arc<ComponentInfo>,
    pub(super) pre: InstancePre<HostState>,
    pub(super) lifecycle: Option<lifecycle::GuestIndices>,
    pub(super) handler: Option<handler::GuestIndices>,
    /// What the operator should know about its process rights.
    pub(super) process_notices: Vec<ProcessNotice>,
    /// Policy grants the manifest declares nothing to overlap.
    pub(super) undeclared_grants: Vec<UndeclaredGrant>,
    /// Notified by the broker whenever it queues something for the
    /// component (the same for every copy of the name).
    pub(super) mailbox: Arc<Notifier>,
    /// The component's SHA-256 (checked against a new policy's pin on
    /// reload).
    pub(super) digest: crate::identity::ComponentDigest,
    /// Core instances one instance creates (checked against a new
    /// policy's `limits.max_core_instances` on reload).
    pub(super) core_instances: u32,
}

impl Drop for Loaded {
    /// Unloading: once the last `LoadedComponent` of a name is gone, the
    /// broker forgets its subscriptions and mailbox (see
    /// docs/messaging.md, "Unloading").
    fn drop(&mut self) {
        let name = self.info.name.as_str();
        if !lock(&self.shared.names).release(name) {
            return;
        }
        let services = &self.shared.services;
        services.meters.forget(name);
        services.audit.forget(name);
        let dropped = services.broker.unregister(name);
        if dropped > 0 {
            tracing::warn!(
                target: "airssys::load",
                component = name,
                dropped,
                "component unloaded with undelivered entries in its mailbox; they are dropped \
                 and queued requests answered with an error"
            );
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
    pub(super) fn new(loaded: Loaded) -> LoadedComponent {
        LoadedComponent {
            inner: Arc::new(loaded),
        }
    }

    /// The name the component runs under: its manifest name, or
    /// [`UNANNOTATED_NAME`](crate::UNANNOTATED_NAME).
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
    pub fn process_notices(&self) -> &[ProcessNotice] {
        &self.inner.process_notices
    }

    /// The grants of the component's own `[components.<name>]` policy
    /// table that no capability of its manifest overlaps (each also logged
    /// as a warning, target `airssys::policy`, when it loaded). The
    /// effective grant is the manifest ∩ the policy, so these grant
    /// nothing: declare them in the manifest's `requires` or `optional`,
    /// or remove them from the policy. `[defaults]` grants are not listed
    /// (they are meant for many components); empty for an unannotated
    /// component.
    pub fn undeclared_grants(&self) -> &[UndeclaredGrant] {
        &self.inner.undeclared_grants
    }

    /// The notifier the broker notifies whenever it queues something for
    /// this component (a message, a request, an entry put back): a server
    /// loop reads [`Notifier::generation`], delivers with
    /// [`Instance::deliver_pending`], and when nothing was there sleeps in
    /// [`Notifier::wait`] instead of polling.
    pub fn mailbox_notifier(&self) -> &Arc<Notifier> {
        &self.inner.mailbox
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
        Instance::start(&self.inner)
    }
}
