//! [`PolicyBuilder`]: a policy built in code.

use std::path::PathBuf;

use crate::capability::Capability;

use super::programs::check_program_path;
use super::{
    ComponentDigest, ComponentPolicy, DigestPin, Limits, Policy, PolicyError, ProgramRule,
    check_mount, rule,
};

/// Builds a [`Policy`] in code. Every method widens authority explicitly;
/// nothing is granted by default.
///
/// # Examples
///
/// ```
/// use airssys_contract::policy::Policy;
///
/// let policy = Policy::builder()
///     .grant("counter", "kv:read:counter/*".parse()?)
///     .grant("counter", "kv:write:counter/*".parse()?)
///     .default_grant("log:write:info".parse()?)
///     .config("counter", "start", "10")
///     .build();
/// assert_eq!(policy.grants_for("counter").count(), 3);
/// # Ok::<(), airssys_contract::capability::CapabilityError>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct PolicyBuilder {
    pub(super) policy: Policy,
}

impl PolicyBuilder {
    /// Lets components without a manifest load, with no capabilities (only
    /// `@capability none` functions work for them).
    pub fn allow_unannotated(mut self, allow: bool) -> Self {
        self.policy.allow_unannotated = allow;
        self
    }

    /// Grants `capability` to every component whose manifest asks for it.
    pub fn default_grant(mut self, capability: Capability) -> Self {
        self.policy.defaults.grants.push(rule(capability));
        self
    }

    /// Denies `capability` to every component.
    pub fn default_deny(mut self, capability: Capability) -> Self {
        self.policy.defaults.denies.push(rule(capability));
        self
    }

    /// Limits for every component without its own.
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.policy.defaults.limits = limits;
        self
    }

    /// Grants `capability` to the component `name` if its manifest asks
    /// for it.
    pub fn grant(mut self, name: &str, capability: Capability) -> Self {
        self.entry(name).grants.push(rule(capability));
        self
    }

    /// Denies `capability` to the component `name`.
    pub fn deny(mut self, name: &str, capability: Capability) -> Self {
        self.entry(name).denies.push(rule(capability));
        self
    }

    /// A configuration entry passed to the component's `init`.
    pub fn config(mut self, name: &str, key: &str, value: &str) -> Self {
        self.entry(name)
            .config
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// An environment variable offered to the component (visible only
    /// through a matching `env:read` grant).
    pub fn env(mut self, name: &str, key: &str, value: &str) -> Self {
        self.entry(name)
            .env
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Maps the virtual root `virtual_root` (an absolute, normalized path
    /// such as `/data`) to the host directory `host_dir` for the component
    /// `name`. The directory is opened once, when the component loads; the
    /// component reaches it only through its `fs` grants.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Mount`] when `virtual_root` is not absolute and
    /// normalized or `host_dir` is not absolute.
    pub fn mount(
        mut self,
        name: &str,
        virtual_root: &str,
        host_dir: impl Into<PathBuf>,
    ) -> Result<Self, PolicyError> {
        let host_dir = host_dir.into();
        check_mount(virtual_root, &host_dir).map_err(PolicyError::Mount)?;
        self.entry(name)
            .mounts
            .insert(virtual_root.to_owned(), host_dir);
        Ok(self)
    }

    /// Subscribes the component `name` to the topic pattern `pattern`
    /// (e.g. `orders.*`); its manifest must ask for, and the policy grant,
    /// a `msg:subscribe` capability covering it.
    ///
    /// # Errors
    ///
    /// When `pattern` is not a valid topic pattern.
    pub fn subscribe(
        mut self,
        name: &str,
        pattern: &str,
    ) -> Result<Self, crate::capability::CapabilityError> {
        let capability = super::subscription(pattern)?;
        self.entry(name).subscribe.push(rule(capability));
        Ok(self)
    }

    /// Pins the name `name` to one component file: a component claiming
    /// the name loads only when the SHA-256 of its file is `digest`
    /// (`sha256 = ".."` in a policy file). Narrows, never widens.
    pub fn pin_sha256(mut self, name: &str, digest: ComponentDigest) -> Self {
        self.entry(name).sha256 = Some(DigestPin { digest, line: None });
        self
    }

    /// Requires the component `name` to be signed (`airssys sign`) by one
    /// of `keys` (`signed_by = [..]` in a policy file); replaces a
    /// [`default_signed_by`](Self::default_signed_by) list for it.
    /// Narrows, never widens.
    pub fn signed_by(mut self, name: &str, keys: Vec<crate::signature::PublicKey>) -> Self {
        self.entry(name).signed_by = Some(super::SignedBy { keys, line: None });
        self
    }

    /// Requires every component to be signed by one of `keys`
    /// (`signed_by` in `[defaults]`).
    pub fn default_signed_by(mut self, keys: Vec<crate::signature::PublicKey>) -> Self {
        self.policy.defaults.signed_by = Some(super::SignedBy { keys, line: None });
        self
    }

    /// What the component `name` may do with `program` (an absolute path,
    /// as `proc:spawn` grants name it): its argument lists, the variables
    /// it may pass, the child's rlimits. Grants nothing by itself.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Program`] when `program` is not an absolute,
    /// normalized path.
    pub fn program(
        mut self,
        name: &str,
        program: &str,
        rule: ProgramRule,
    ) -> Result<Self, PolicyError> {
        check_program_path(program).map_err(PolicyError::Program)?;
        self.entry(name).programs.insert(program.to_owned(), rule);
        Ok(self)
    }

    /// A program rule for every component without its own rule for
    /// `program`. See [`PolicyBuilder::program`].
    ///
    /// # Errors
    ///
    /// As [`PolicyBuilder::program`].
    pub fn default_program(
        mut self,
        program: &str,
        rule: ProgramRule,
    ) -> Result<Self, PolicyError> {
        check_program_path(program).map_err(PolicyError::Program)?;
        self.policy
            .defaults
            .programs
            .insert(program.to_owned(), rule);
        Ok(self)
    }

    /// Limits of the component `name`.
    pub fn limits(mut self, name: &str, limits: Limits) -> Self {
        self.entry(name).limits = limits;
        self
    }

    /// Instances the runtime's `Server` runs of the component `name`
    /// at once (the `instances` key), clamped to 1 ..=
    /// [`MAX_SERVED_INSTANCES`](super::MAX_SERVED_INSTANCES).
    pub fn instances(mut self, name: &str, count: u32) -> Self {
        self.entry(name).instances = Some(count.clamp(1, super::MAX_SERVED_INSTANCES));
        self
    }

    /// The policy.
    pub fn build(self) -> Policy {
        self.policy
    }

    fn entry(&mut self, name: &str) -> &mut ComponentPolicy {
        self.policy.components.entry(name.to_owned()).or_default()
    }
}

impl Policy {
    /// A builder starting from this policy, e.g. one read from a file, to
    /// add rules in code. The file's rules keep their lines and path in
    /// messages; the added ones have no line (they were not written in
    /// the file).
    pub fn into_builder(self) -> PolicyBuilder {
        PolicyBuilder { policy: self }
    }
}
