//! [`Runtime::load`]: the load-time checks, as named steps.

use std::path::Path;
use std::sync::Arc;

use airssys_contract::capability::{Capability, GrantSet};
use airssys_contract::manifest::Manifest;
use wasmtime::component::{Component, InstancePre};

use super::loaded::{Loaded, LoadedComponent, UndeclaredGrant};
use super::{Runtime, Shared};
use crate::error::LoadError;
use crate::extension::Extensions;
use crate::grant::{GrantOrigins, effective_grants};
use crate::host::bindings::exports::airssys::core::{handler, lifecycle};
use crate::host::state::{ComponentInfo, HostState};
use crate::identity::{ComponentDigest, UNANNOTATED_NAME};
use crate::loader;
use crate::policy::{Policy, ProcessNotice, ResolvedLimits, RuleOrigin};
use crate::storage::StorageBackend;
use crate::sync::lock;

/// Who the component is: its manifest, the name it runs under, its
/// digest.
struct Identity {
    manifest: Option<Manifest>,
    name: String,
    digest: ComponentDigest,
    /// The component's signature as read at load, for a reload's
    /// `signed_by` check.
    signature: loader::SignatureState,
}

/// What the policy gives the component.
struct Rights {
    grants: GrantSet,
    config: std::collections::BTreeMap<String, String>,
    env: std::collections::BTreeMap<String, String>,
    subscriptions: Vec<Capability>,
    limits: ResolvedLimits,
    mounts: crate::fs::Mounts,
}

/// The compiled, linked component and its typed exports.
struct Linked {
    pre: InstancePre<HostState>,
    lifecycle: Option<lifecycle::GuestIndices>,
    handler: Option<handler::GuestIndices>,
    /// Core instances one instance creates (checked against
    /// `limits.max_core_instances`).
    core_instances: u32,
}

impl Runtime {
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
        let identity = identify(shared, bytes)?;
        loader::check_imports(bytes, &identity.name, shared.extensions.served())?;
        let policy = &shared.policy;
        let rights = rights(shared, policy, &identity)?;
        let linked = compile_and_link(shared, bytes, &identity.name, &rights)?;
        put_in_force(shared, policy, identity, rights, linked)
    }
}

/// Reads the manifest and checks the name: the policy's pin, and that no
/// other file holds it (refused before compiling; claimed for good in
/// [`claim`]).
fn identify(shared: &Shared, bytes: &[u8]) -> Result<Identity, LoadError> {
    let manifest = loader::manifest(bytes, &shared.policy)?;
    let name = manifest
        .as_ref()
        .map_or(UNANNOTATED_NAME, |m| m.name.as_str())
        .to_owned();
    let digest = ComponentDigest::of(bytes);
    loader::check_pin(&name, &digest, &shared.policy)?;
    loader::check_signature(&name, bytes, &shared.policy)?;
    lock(&shared.names).check(&name, &digest)?;
    let signature = loader::SignatureState::of(bytes);
    Ok(Identity {
        signature,
        manifest,
        name,
        digest,
    })
}

/// The effective grant, configuration, subscriptions, limits and mounts
/// the policy gives the component.
fn rights(shared: &Shared, policy: &Policy, identity: &Identity) -> Result<Rights, LoadError> {
    let name = identity.name.as_str();
    let (grants, config, env) = match &identity.manifest {
        Some(m) => (
            effective_grants(m, policy)?,
            policy.config_for(name),
            policy.env_for(name),
        ),
        None => (GrantSet::default(), Default::default(), Default::default()),
    };
    let subscriptions = crate::broker::admission::subscriptions(name, policy, &grants)?;
    let limits = policy.limits_for(name, shared.base_limits);
    warn_if_over_storage_quota(shared.services.storage.as_ref(), name, &limits);
    let mounts = match &identity.manifest {
        Some(_) => crate::fs::Mounts::open(
            name,
            &policy.mounts_for(name),
            &grants,
            &*shared.mount_probe,
        )?,
        None => crate::fs::Mounts::default(),
    };
    Ok(Rights {
        grants,
        config,
        env,
        subscriptions,
        limits,
        mounts,
    })
}

/// Compiles the component within its pool share, links it once and finds
/// its lifecycle and handler exports.
fn compile_and_link(
    shared: &Shared,
    bytes: &[u8],
    name: &str,
    rights: &Rights,
) -> Result<Linked, LoadError> {
    let limits = &rights.limits;
    let core_instances = crate::pool::check_core_instances(name, bytes, limits)?;
    let component = match &shared.compile_cache {
        Some(cache) => cache.component(&shared.engine, bytes),
        None => Component::new(&shared.engine, bytes),
    }
    .map_err(|e| LoadError::Invalid {
        message: format!("{e:?}"),
        source: Some(e.into_boxed_dyn_error()),
    })?;
    crate::pool::admit(name, &component, core_instances, limits)?;
    let pre = shared
        .linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Unlinkable {
            component: name.to_owned(),
            message: format!(
                "component `{name}` imports something this host does not provide: {}; this host \
                 provides the airssys contract ({}){} and WASI 0.2 (deny-all)",
                link_failure(&e),
                contract_packages(),
                extension_packages(&shared.extensions),
            ),
            source: Some(e),
        })?;
    let lifecycle = lifecycle::GuestIndices::new(&pre).ok();
    let handler = handler::GuestIndices::new(&pre).ok();
    if handler.is_none() && !rights.subscriptions.is_empty() {
        return Err(LoadError::Subscription {
            component: name.to_owned(),
            message: format!(
                "component `{name}` is subscribed to topics by the policy but does not export \
                 `airssys:core/handler`, so it cannot receive messages; remove its `subscribe` \
                 entries or export the handler"
            ),
            refused: Vec::new(),
        });
    }
    Ok(Linked {
        pre,
        lifecycle,
        handler,
        core_instances,
    })
}

/// Claims the name and registers the component with the broker; returns
/// the name's mailbox notifier. Claimed before the broker hears of the
/// name, so a refused component never touches the registration of the
/// one it imitates.
fn claim(
    shared: &Shared,
    identity: &Identity,
    rights: &Rights,
) -> Result<Arc<crate::sync::Notifier>, LoadError> {
    let name = identity.name.as_str();
    let mailbox = lock(&shared.names).claim(name, identity.digest)?;
    shared.services.broker.register(
        name,
        crate::broker::Subscriber::new(rights.subscriptions.clone(), rights.grants.clone())
            .max_message_bytes(crate::broker::message_bound(rights.limits.memory_bytes))
            .notifier(Arc::clone(&mailbox)),
    );
    Ok(mailbox)
}

/// Logs what was loaded and what the operator should know of its process
/// rights; returns those notices.
fn announce(policy: &Policy, identity: &Identity, rights: &Rights) -> Vec<ProcessNotice> {
    let (name, grants) = (identity.name.as_str(), &rights.grants);
    let process_notices = match &identity.manifest {
        Some(_) => policy.process_notices(name, grants),
        None => Vec::new(),
    };
    for notice in &process_notices {
        tracing::warn!(target: "airssys::load", component = name, "{notice}");
    }
    tracing::info!(
        target: "airssys::load",
        component = name,
        sha256 = %identity.digest,
        grants = %grants.allows().iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        denies = grants.denies().len(),
        process_notices = %process_notices.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        "component loaded"
    );
    process_notices
}

/// The grants of the component's own `[components.<name>]` table that no
/// capability of its manifest overlaps: the effective grant drops them, so
/// they give nothing. Each is logged as a warning (target
/// `airssys::policy`). `[defaults]` grants are meant for many components
/// and are not listed; an unannotated component has no manifest to
/// compare with.
fn undeclared_grants(policy: &Policy, identity: &Identity) -> Vec<UndeclaredGrant> {
    let (Some(manifest), Some(own)) = (&identity.manifest, policy.component(&identity.name)) else {
        return Vec::new();
    };
    let file = policy.source();
    let undeclared: Vec<UndeclaredGrant> = own
        .grants
        .iter()
        .filter(|rule| {
            let grant = &rule.capability;
            !manifest
                .capabilities()
                .any(|m| m.is_subset_of(grant) || grant.is_subset_of(m))
        })
        .map(|rule| UndeclaredGrant {
            grant: rule.capability.clone(),
            origin: rule.line.map(|line| RuleOrigin {
                file: file.map(Path::to_path_buf),
                line,
            }),
        })
        .collect();
    for undeclared in &undeclared {
        tracing::warn!(
            target: "airssys::policy",
            component = identity.name.as_str(),
            grant = %undeclared.grant,
            "{}",
            undeclared.message(&identity.name)
        );
    }
    undeclared
}

/// The last steps of a load (and of a reload's commit): claim the name,
/// announce, and put the component together under its rights.
fn put_in_force(
    shared: &Arc<Shared>,
    policy: &Policy,
    identity: Identity,
    rights: Rights,
    linked: Linked,
) -> Result<LoadedComponent, LoadError> {
    let mailbox = claim(shared, &identity, &rights)?;
    let process_notices = announce(policy, &identity, &rights);
    let undeclared_grants = undeclared_grants(policy, &identity);
    let digest = identity.digest;
    let signature = identity.signature.clone();
    let info = component_info(policy, identity, rights);
    Ok(LoadedComponent::new(Loaded {
        shared: Arc::clone(shared),
        info: Arc::new(info),
        pre: linked.pre,
        lifecycle: linked.lifecycle,
        handler: linked.handler,
        process_notices,
        undeclared_grants,
        mailbox,
        digest,
        core_instances: linked.core_instances,
        signature,
    }))
}

/// What every instance of the component shares; logs the network
/// service's notes on the grant.
fn component_info(policy: &Policy, identity: Identity, rights: Rights) -> ComponentInfo {
    let Identity { manifest, name, .. } = identity;
    let programs = match &manifest {
        Some(_) => policy.programs_for(&name),
        None => Default::default(),
    };
    let net = crate::host::NetComponent::new(&name, policy, manifest.is_some(), &rights.limits);
    for note in net.load_notes(&rights.grants) {
        if note.narrows {
            tracing::warn!(target: "airssys::load", component = name.as_str(), "{}", note.text);
        } else {
            tracing::info!(target: "airssys::load", component = name.as_str(), "{}", note.text);
        }
    }
    let origins = GrantOrigins::of(&name, &rights.grants, policy);
    ComponentInfo {
        name,
        manifest,
        grants: rights.grants,
        config: rights.config,
        env: rights.env,
        limits: rights.limits,
        mounts: rights.mounts,
        children: Default::default(),
        net,
        programs,
        origins,
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
    let resolve = airssys_contract::model::Contract::embedded().resolve();
    resolve
        .packages
        .iter()
        .map(|(_, p)| p.name.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A loaded component's rights recomputed under another policy
/// ([`LoadedComponent::rebind`]): checked, but not in force until
/// [`Rebound::commit`].
pub(crate) struct Rebound {
    from: Arc<Loaded>,
    identity: Identity,
    rights: Rights,
}

impl LoadedComponent {
    /// The rights `policy` gives this component, checked as a load
    /// checks them (the policy's pin of its name, its required
    /// capabilities, subscriptions, mounts, pool share), without
    /// compiling it again. Nothing is in force until
    /// [`Rebound::commit`]; the runtime's own [`Runtime::policy`] stays
    /// the one it was built with.
    ///
    /// # Errors
    ///
    /// The [`LoadError`] a load under `policy` would fail with
    /// ([`LoadError::MissingCapabilities`] when a required capability is
    /// no longer granted).
    pub(crate) fn rebind(&self, policy: &Policy) -> Result<Rebound, LoadError> {
        let from = &self.inner;
        let shared = &from.shared;
        let name = from.info.name.as_str();
        if from.info.manifest.is_none() && !policy.allows_unannotated() {
            return Err(LoadError::NoManifest);
        }
        loader::check_pin(name, &from.digest, policy)?;
        loader::check_signature_state(name, &from.signature, policy)?;
        let identity = Identity {
            signature: from.signature.clone(),
            manifest: from.info.manifest.clone(),
            name: name.to_owned(),
            digest: from.digest,
        };
        let rights = rights(shared, policy, &identity)?;
        crate::pool::check_core_count(name, from.core_instances, &rights.limits)?;
        crate::pool::admit(
            name,
            from.pre.component(),
            from.core_instances,
            &rights.limits,
        )?;
        if from.handler.is_none() && !rights.subscriptions.is_empty() {
            return Err(LoadError::Subscription {
                component: name.to_owned(),
                message: format!(
                    "component `{name}` is subscribed to topics by the policy but does not \
                     export `airssys:core/handler`, so it cannot receive messages; remove its \
                     `subscribe` entries or export the handler"
                ),
                refused: Vec::new(),
            });
        }
        Ok(Rebound {
            from: Arc::clone(from),
            identity,
            rights,
        })
    }
}

impl Rebound {
    /// The effective grant under the new policy.
    pub(crate) fn grants(&self) -> &GrantSet {
        &self.rights.grants
    }

    /// The limits under the new policy.
    pub(crate) fn limits(&self) -> &ResolvedLimits {
        &self.rights.limits
    }

    /// Puts the new rights in force: the broker gets the component's new
    /// subscriptions and grant, and the returned [`LoadedComponent`]
    /// (same compiled component, same mailbox) creates instances under
    /// them. Instances of the old one keep the rights they started with.
    pub(crate) fn commit(self, policy: &Policy) -> Result<LoadedComponent, LoadError> {
        let Rebound {
            from,
            identity,
            rights,
        } = self;
        let linked = Linked {
            pre: from.pre.clone(),
            lifecycle: from.lifecycle.clone(),
            handler: from.handler.clone(),
            core_instances: from.core_instances,
        };
        put_in_force(&from.shared, policy, identity, rights, linked)
    }
}
