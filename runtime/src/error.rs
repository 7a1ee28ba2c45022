//! The runtime's error types: one per stage (build, load, run).

use std::path::PathBuf;
use std::time::Duration;

use airssys_contract::capability::Capability;
use airssys_contract::compat::Mismatch;
use airssys_contract::manifest::ManifestError;

use crate::identity::{ComponentDigest, UNANNOTATED_NAME};
use crate::storage::StorageError;

/// The runtime could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// wasmtime rejected the engine configuration.
    #[error("cannot configure the wasmtime engine: {0:?}")]
    Engine(#[source] wasmtime::Error),
    /// The storage backend could not be opened.
    #[error("cannot open storage: {0}")]
    Storage(#[from] StorageError),
    /// The audit log file could not be opened.
    #[error("cannot open the audit log {}: {source}", path.display())]
    Audit {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The host functions could not be linked (a bug in this crate).
    #[error("cannot link the host functions: {0:?}")]
    Link(#[source] wasmtime::Error),
    /// A bundle given to
    /// [`RuntimeBuilder::tls_root_certificates`](crate::RuntimeBuilder::tls_root_certificates)
    /// holds no usable certificate.
    #[error("cannot use the extra TLS roots: {0}")]
    TlsRoots(String),
    /// The compile cache directory cannot be used (see
    /// [`RuntimeBuilder::compile_cache`](crate::RuntimeBuilder::compile_cache)).
    #[error(transparent)]
    CompileCache(#[from] crate::compile_cache::CacheError),
    /// A [`HostExtension`](crate::HostExtension) could not be set up: its
    /// WIT does not resolve, it serves a package that is already served,
    /// or its link function failed.
    #[error("host extension `{package}`: {message}")]
    Extension {
        /// The package it serves (or the WIT path when it does not parse).
        package: String,
        /// What went wrong.
        message: String,
        /// The error of its link function, when that is what failed.
        #[source]
        source: Option<wasmtime::Error>,
    },
}

/// A component was refused at load time. Every variant's message says what
/// to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read component {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {message}")]
    Invalid {
        /// What is wrong, as the decoder or wasmtime said it.
        message: String,
        /// The decoder's or wasmtime's error, when one was raised (neither
        /// is a `std::error::Error` itself, so it is kept boxed).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// The `airssys:manifest` section is present but unreadable.
    #[error("the component's manifest is invalid: {0}")]
    Manifest(#[from] ManifestError),
    /// The component carries no manifest and the policy does not allow
    /// unannotated components.
    #[error(
        "the component has no `airssys:manifest` section, so the host cannot tell which \
         capabilities it needs; in Rust, build it with `#[airssys::component(requires = [..])]` \
         (or a `Component.toml` beside the crate); in any other language, write a \
         `Component.toml` and attach it with `airssys manifest attach COMPONENT.wasm --manifest \
         Component.toml -o COMPONENT.wasm`; or set `allow_unannotated = true` in the host \
         policy to run it with no capabilities"
    )]
    NoManifest,
    /// The component's imports do not match the host's contract.
    #[error("{message}")]
    Incompatible {
        /// The component's name (from its manifest) or `<unnamed>`.
        component: String,
        /// Every mismatch, each in words a person can act on.
        mismatches: Vec<Mismatch>,
        /// The whole report.
        message: String,
    },
    /// Required capabilities are not granted by the policy.
    #[error(
        "component `{component}` requires capabilities the host policy does not grant:\n  - {}\n{fix}",
        MissingCapability::listed(missing)
    )]
    MissingCapabilities {
        /// The component's name.
        component: String,
        /// Each required capability the policy does not grant, and why.
        missing: Vec<MissingCapability>,
        /// How to grant them (the TOML or builder call to add, and where),
        /// or what else to change.
        fix: String,
    },
    /// A subscription the policy configures for the component is not
    /// covered by its effective `msg:subscribe` grant, or the component
    /// exports no `handler` to receive messages.
    #[error("{message}")]
    Subscription {
        /// The component's name.
        component: String,
        /// Which subscription and how to fix it.
        message: String,
        /// The subscriptions its effective `msg:subscribe` grant does not
        /// cover; empty when the component exports no `handler`.
        refused: Vec<Capability>,
    },
    /// A mounted directory compares names without regard to case or
    /// Unicode normalisation (or could not be probed), and one of the
    /// component's `fs` deny rules reaches into it: another spelling of a
    /// denied name would evade the rule (see
    /// [`MountProbe`](crate::MountProbe)).
    #[error("{message}")]
    Mount {
        /// The component's name.
        component: String,
        /// The virtual root of the mount, such as `/data`.
        virtual_root: String,
        /// The host directory mapped there.
        host_dir: PathBuf,
        /// What the probe found and how to fix it.
        message: String,
    },
    /// The component imports something outside the contract that this host
    /// does not provide.
    #[error("{message}")]
    Unlinkable {
        /// The component's name.
        component: String,
        /// What is missing, in words a person can act on.
        message: String,
        /// wasmtime's link error (`None` when the import was found missing
        /// before compiling, from the component's own type information).
        #[source]
        source: Option<wasmtime::Error>,
    },
    /// The policy requires a signature (`signed_by`) that the component
    /// does not carry, or that does not verify.
    #[error(
        "component `{component}` is refused: the policy requires a signature by a trusted key \
         (`signed_by`, {}), and {source}",
        pin_origin(policy_file.as_deref(), *line)
    )]
    Signature {
        /// The name the component claims.
        component: String,
        /// What does not verify.
        #[source]
        source: airssys_contract::signature::SignatureError,
        /// The policy file that holds the rule, when read from one.
        policy_file: Option<PathBuf>,
        /// The 1-based line of the rule in it.
        line: Option<u32>,
    },
    /// The policy pins the component's name (`sha256` in
    /// `[components.<name>]`) to other bytes than this component's.
    #[error(
        "component `{component}` is not the one the policy pins under that name: `sha256` of \
         [components.{component}] ({}) is {expected}, but this component file hashes to \
         {actual}; it is refused, because grants, storage and requests follow the name a \
         component gives itself. If this is a build of `{component}` you trust, set `sha256 = \
         \"{actual}\"` there; otherwise give the component its own name",
        pin_origin(policy_file.as_deref(), *line)
    )]
    DigestMismatch {
        /// The name the component claims (its manifest name, or
        /// `unannotated`).
        component: String,
        /// The digest the policy pins the name to.
        expected: ComponentDigest,
        /// The digest of the refused component file.
        actual: ComponentDigest,
        /// The policy file that holds the pin, when read from one.
        policy_file: Option<PathBuf>,
        /// The 1-based line of the pin in it.
        line: Option<u32>,
    },
    /// A different component with the same name is loaded: two components
    /// never share a name at once.
    #[error(
        "component `{component}` is already loaded from another file (sha256 {loaded}); this \
         one (sha256 {offered}) claims the same name and is refused while the first stays \
         loaded, because grants, storage and requests follow the name. {}",
        duplicate_fix(component)
    )]
    DuplicateName {
        /// The name both claim.
        component: String,
        /// The digest of the component loaded under the name.
        loaded: ComponentDigest,
        /// The digest of the refused component.
        offered: ComponentDigest,
    },
    /// One instance of the component would take more of the runtime's
    /// instance pool (core instances, memories, tables) than its policy
    /// allows.
    #[error(
        "component `{component}` needs {needed} {what} per instance; `limits.{key}` allows \
         {limit} (raise `limits.{key}` for it in the policy if the component is trusted to \
         take that much of the shared instance pool)"
    )]
    PoolLimit {
        /// The component's name.
        component: String,
        /// What it needs too many of, in words (`linear memories`).
        what: &'static str,
        /// The policy key under `limits`.
        key: &'static str,
        /// How many one instance needs.
        needed: u32,
        /// How many the policy allows.
        limit: u32,
    },
}

/// A required capability the policy does not grant
/// ([`LoadError::MissingCapabilities`]), and why; defined with the policy
/// in [`airssys_contract::policy`].
pub use airssys_contract::policy::{MissingCapability, MissingReason};

impl From<airssys_contract::policy::MissingCapabilities> for LoadError {
    /// [`LoadError::MissingCapabilities`] with the same fields (and text).
    fn from(e: airssys_contract::policy::MissingCapabilities) -> LoadError {
        LoadError::MissingCapabilities {
            component: e.component,
            missing: e.missing,
            fix: e.fix,
        }
    }
}

/// Where a `sha256` pin was written, for [`LoadError::DigestMismatch`].
fn pin_origin(file: Option<&std::path::Path>, line: Option<u32>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{} line {line}", file.display()),
        (None, Some(line)) => format!("policy line {line}"),
        (Some(file), None) => file.display().to_string(),
        (None, None) => "set with `PolicyBuilder::pin_sha256`".to_owned(),
    }
}

/// How to resolve a [`LoadError::DuplicateName`].
fn duplicate_fix(component: &str) -> &'static str {
    if component == UNANNOTATED_NAME {
        "Components without a manifest all run as `unannotated`, so only one of them (in any \
         number of copies) may be loaded at a time: build this one with a manifest that gives \
         it its own name, or drop every `LoadedComponent` of the first before loading it"
    } else {
        "Give this component its own name in its manifest, or drop every `LoadedComponent` of \
         the first (a new version replaces the old one only once the old one is unloaded)"
    }
}

/// A limit a component ran into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// The instance tried to grow its linear memory beyond the cap.
    #[error(
        "memory limit exceeded: component `{component}` tried to grow its memory to {wanted} \
         bytes; the limit is {limit} bytes (raise `limits.memory_bytes` in the policy)"
    )]
    Memory {
        /// The component.
        component: String,
        /// The cap in bytes.
        limit: u64,
        /// The size it asked for.
        wanted: u64,
    },
    /// A call ran longer than the time limit (waits included) and was
    /// interrupted.
    #[error(
        "time limit exceeded: component `{component}` ran longer than {limit:?} in one call \
         (time spent waiting counts) and was interrupted (raise `limits.cpu_time_ms` in the \
         policy)"
    )]
    CpuTime {
        /// The component.
        component: String,
        /// The limit.
        limit: Duration,
    },
    /// The results the host holds for one instance (pending reads,
    /// responses, replies, child output not yet collected) would exceed
    /// the byte budget.
    #[error(
        "held-bytes limit exceeded: component `{component}` would make the host hold {wanted} \
         bytes of results it has not collected; the limit is {limit} bytes per instance (collect \
         or drop pending results, or raise `limits.held_bytes` in the policy)"
    )]
    HeldBytes {
        /// The component.
        component: String,
        /// The budget in bytes.
        limit: u64,
        /// What holding the new result would have made the total.
        wanted: u64,
    },
    /// The instance has as many operations pending as it may.
    #[error(
        "pending-operations limit exceeded: component `{component}` already has {limit} \
         operations pending, the most one instance may have (collect or drop some, or raise \
         `limits.max_pending` in the policy)"
    )]
    Pending {
        /// The component.
        component: String,
        /// The limit.
        limit: u32,
    },
    /// The instance holds as many host handles as it may.
    #[error(
        "handle limit exceeded: component `{component}` already holds {limit} host handles, \
         the most one instance may hold (drop some, or raise `limits.max_handles` in the \
         policy)"
    )]
    Handles {
        /// The component.
        component: String,
        /// The limit.
        limit: u32,
    },
    /// The component has as many network operations running as it may,
    /// counted across its instances.
    #[error(
        "network in-flight limit exceeded: component `{component}` already has {limit} network \
         operations running across its instances, the most it may have (wait for some to finish \
         or drop them, or raise `limits.max_net_in_flight` in the policy)"
    )]
    NetInFlight {
        /// The component.
        component: String,
        /// The limit.
        limit: u32,
    },
    /// The component has as many instances alive as it may.
    #[error(
        "instance limit exceeded: component `{component}` already has {limit} instances alive, \
         the most it may have at once (drop one, or raise `limits.max_instances` in the policy)"
    )]
    Instances {
        /// The component.
        component: String,
        /// The limit.
        limit: u32,
    },
}

/// A call into a component failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The component hit one of its limits; the instance must be dropped.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The component hit one of its limits after writing to stdout or
    /// stderr in the call; the instance must be dropped. The same limit as
    /// [`RuntimeError::Limit`], with that text quoted as a trap quotes it
    /// (for the host only; see [`RuntimeError::limit`]).
    #[error("{limit}\n{written}")]
    LimitAfterOutput {
        /// The limit.
        limit: LimitExceeded,
        /// `the component wrote before the limit ended the call:`, then
        /// one labelled, escaped line per line written (the last 4 KiB of
        /// stderr, then of stdout).
        written: String,
    },
    /// The component trapped (a panic in the guest, an invalid handle, ...).
    #[error("component `{component}` trapped: {message}")]
    Trap {
        /// The component.
        component: String,
        /// wasmtime's description, with the backtrace when available.
        message: String,
        /// wasmtime's error (its [`wasmtime::Trap`] code and
        /// [`wasmtime::WasmBacktrace`] are found with `downcast_ref`);
        /// `None` when the instance had trapped before and was not called.
        #[source]
        source: Option<wasmtime::Error>,
    },
    /// The component's `init` returned an error.
    #[error("component `{component}` refused to start: {message}")]
    Init {
        /// The component.
        component: String,
        /// The text of its error.
        message: String,
    },
    /// The instance could not be created (e.g. the instance pool is full).
    #[error("cannot instantiate component `{component}`: {message}")]
    Instantiate {
        /// The component.
        component: String,
        /// wasmtime's description.
        message: String,
        /// wasmtime's error.
        #[source]
        source: Option<wasmtime::Error>,
    },
    /// The export asked for does not exist or has another type.
    #[error("component `{component}` has no export `{export}` of the expected type: {message}")]
    NoSuchExport {
        /// The component.
        component: String,
        /// The export name.
        export: String,
        /// wasmtime's description.
        message: String,
        /// wasmtime's type-check error, when the export exists with
        /// another type.
        #[source]
        source: Option<wasmtime::Error>,
    },
    /// A storage operation of the host failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl RuntimeError {
    /// The limit that ended the call, whether or not the component wrote
    /// anything before it ([`RuntimeError::Limit`] or
    /// [`RuntimeError::LimitAfterOutput`]).
    pub fn limit(&self) -> Option<&LimitExceeded> {
        match self {
            RuntimeError::Limit(limit) | RuntimeError::LimitAfterOutput { limit, .. } => {
                Some(limit)
            }
            _ => None,
        }
    }

    /// The limit that ended the call, taken out of the error
    /// ([`RuntimeError::Limit`] or [`RuntimeError::LimitAfterOutput`], the
    /// quoted text dropped; format the error first to keep it).
    ///
    /// # Errors
    ///
    /// Every other error is given back unchanged.
    pub fn into_limit(self) -> Result<LimitExceeded, RuntimeError> {
        match self {
            RuntimeError::Limit(limit) | RuntimeError::LimitAfterOutput { limit, .. } => Ok(limit),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> LimitExceeded {
        LimitExceeded::Memory {
            component: "c".into(),
            limit: 1,
            wanted: 2,
        }
    }

    #[test]
    fn into_limit_takes_the_limit_out_of_either_limit_error() {
        for error in [
            RuntimeError::Limit(memory()),
            RuntimeError::LimitAfterOutput {
                limit: memory(),
                written: "the component wrote before the limit ended the call:".into(),
            },
        ] {
            assert_eq!(
                error.into_limit().map(|limit| limit.to_string()).ok(),
                Some(memory().to_string())
            );
        }
    }

    #[test]
    fn into_limit_gives_every_other_error_back() {
        let error = RuntimeError::Init {
            component: "c".into(),
            message: "no".into(),
        };
        let Err(back) = error.into_limit() else {
            panic!("an init error holds no limit");
        };
        assert!(matches!(back, RuntimeError::Init { ref message, .. } if message == "no"));
    }
}
