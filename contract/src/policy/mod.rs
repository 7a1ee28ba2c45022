//! The host policy: which capabilities each component may be granted, which
//! are denied outright, the configuration passed to `init`, the environment
//! a component may see, and its resource limits.
//!
//! A policy is read from a TOML file ([`Policy::from_toml_str`],
//! [`Policy::from_toml_file`]) or built in code ([`Policy::builder`]). It is
//! deny by default: an empty policy grants nothing, and components without
//! a manifest are refused unless [`PolicyBuilder::allow_unannotated`] (or
//! `allow_unannotated = true`) says otherwise.
//!
//! ```toml
//! allow_unannotated = false
//!
//! [defaults]
//! grants = ["log:write:info"]
//! denies = ["env:read:AWS_*"]
//! limits = { memory_bytes = 67108864, cpu_time_ms = 5000, storage_bytes = 16777216 }
//!
//! [components.counter]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! grants = ["kv:read:counter/*", "kv:write:counter/*"]
//! config = { start = "10" }
//! env = { APP_MODE = "test" }
//! mounts = { "/data" = "/srv/counter-data" }
//! ```
//!
//! See `docs/policy.md` for every key.

mod builder;
mod digest;
mod grant;
mod limits;
mod nats;
mod programs;
mod toml_file;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::capability::Capability;

pub use builder::PolicyBuilder;
pub use digest::{ComponentDigest, InvalidDigest};
pub use grant::{MissingCapabilities, MissingCapability, MissingReason};
pub use limits::*;
pub use nats::{
    DEFAULT_INBOX_PREFIX, DEFAULT_SUBJECT_PREFIX, NatsSettings, inbox_prefix_conflict,
    is_concrete_subject, redact_url,
};
pub use programs::{
    ArgShape, ChildLimits, ProcessNotice, ProgramRule, is_loader_variable, resolve, rules_for,
    shown,
};

/// The host policy. See the [module documentation](self).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow_unannotated: bool,
    defaults: ComponentPolicy,
    components: BTreeMap<String, ComponentPolicy>,
    /// The file the policy was read from, for messages.
    source: Option<PathBuf>,
    /// Whether the policy came from TOML text (messages then quote TOML).
    from_toml: bool,
    /// The `[nats]` table, if any.
    nats: Option<NatsSettings>,
}

/// The rules of one `[components.<name>]` table (or `[defaults]`).
#[derive(Debug, Clone, Default)]
pub struct ComponentPolicy {
    /// Capabilities the host is willing to grant.
    pub grants: Vec<PolicyRule>,
    /// Capabilities the host refuses even when granted elsewhere.
    pub denies: Vec<PolicyRule>,
    /// Configuration passed to the component's `init`, in key order.
    pub config: BTreeMap<String, String>,
    /// Environment variables offered to the component (it sees only those
    /// covered by its `env:read` grants).
    pub env: BTreeMap<String, String>,
    /// Resource limits; unset fields fall back to `[defaults]`, then to
    /// the built-in defaults.
    pub limits: Limits,
    /// Virtual filesystem roots: each key (an absolute, normalized path
    /// such as `/data`) maps to a host directory. `fs` grants name virtual
    /// paths; the runtime serves them beneath these directories only.
    pub mounts: BTreeMap<String, PathBuf>,
    /// Topic patterns the component subscribes to, each as a
    /// `msg:subscribe:<pattern>` rule; each must be covered by the
    /// component's effective `msg:subscribe` grant or the load is refused.
    pub subscribe: Vec<PolicyRule>,
    /// What the component may do with each program it is granted, by
    /// program path: argument lists, variables it may pass, the child's
    /// rlimits (see [`ProgramRule`]).
    pub programs: BTreeMap<String, ProgramRule>,
    /// The 1-based line of the table header, when read from a file.
    pub line: Option<u32>,
    /// The digest a component claiming this name must have (`sha256`);
    /// only in `[components.<name>]`.
    pub sha256: Option<DigestPin>,
    /// Instances the runtime's `Server` runs of the component at
    /// once (`instances`, 1 to [`MAX_SERVED_INSTANCES`]); unset falls
    /// back to `[defaults]`, then to 1.
    pub instances: Option<u32>,
    /// The keys one of which must have signed the component (`signed_by`);
    /// a component's own list replaces `[defaults]`.
    pub signed_by: Option<SignedBy>,
}

/// A `signed_by` rule: the component must carry a signature
/// (`airssys sign`) by one of these keys over its current code and
/// manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// The trusted public keys.
    pub keys: Vec<crate::signature::PublicKey>,
    /// The 1-based line in the policy file, when read from one.
    pub line: Option<u32>,
}

/// The most instances of one component the runtime's `Server` runs
/// (the `instances` key's ceiling): each is a thread and a slot of the
/// instance pool.
pub const MAX_SERVED_INSTANCES: u32 = 64;

/// A `sha256` pin: a component loads under the pinned name only when the
/// SHA-256 of its file is this digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestPin {
    /// The digest of the one component file the name belongs to.
    pub digest: ComponentDigest,
    /// The 1-based line in the policy file, when read from one.
    pub line: Option<u32>,
}

/// One grant or deny entry and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    /// The capability pattern.
    pub capability: Capability,
    /// The 1-based line in the policy file, when read from one.
    pub line: Option<u32>,
}

/// Where a policy rule was written, for messages and audit records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOrigin {
    /// The policy file, when the policy was read from one.
    pub file: Option<PathBuf>,
    /// The 1-based line.
    pub line: u32,
}

impl fmt::Display for RuleOrigin {
    /// `policy.toml line 7`, or `policy line 7` without a file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(path) => write!(f, "{} line {}", path.display(), self.line),
            None => write!(f, "policy line {}", self.line),
        }
    }
}

/// A policy file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is invalid, or a value in it is.
    #[error("{}", at(path.as_deref(), *line, *column, message))]
    Invalid {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// 1-based line.
        line: u32,
        /// 1-based column.
        column: u32,
        /// What is wrong and what was expected.
        message: String,
    },
    /// A mount given to [`PolicyBuilder::mount`] is malformed.
    #[error("{0}")]
    Mount(String),
    /// A program rule given to the builder is malformed or ambiguous.
    #[error("{0}")]
    Program(String),
}

pub(crate) fn at(path: Option<&Path>, line: u32, column: u32, message: &str) -> String {
    match path {
        Some(path) => format!("{}:{line}:{column}: {message}", path.display()),
        None => format!("policy line {line}, column {column}: {message}"),
    }
}

impl Policy {
    /// A builder; the empty policy grants nothing.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::default()
    }

    /// Parses a policy from TOML text.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Invalid`] with the line and column of the first
    /// mistake: bad TOML, an unknown key, or a capability that does not
    /// parse (the column points into the string).
    pub fn from_toml_str(text: &str) -> Result<Policy, PolicyError> {
        toml_file::parse(text, None)
    }

    /// Reads and parses a policy file.
    ///
    /// # Errors
    ///
    /// [`PolicyError::Io`] when the file cannot be read, otherwise as
    /// [`Policy::from_toml_str`] with the path in the message.
    pub fn from_toml_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        toml_file::parse(&text, Some(path))
    }

    /// Whether components without an `airssys:manifest` section may load
    /// (with no capabilities at all).
    pub fn allows_unannotated(&self) -> bool {
        self.allow_unannotated
    }

    /// The `[defaults]` rules, applied to every component.
    pub fn defaults(&self) -> &ComponentPolicy {
        &self.defaults
    }

    /// The rules for the component `name`, if the policy names it.
    pub fn component(&self, name: &str) -> Option<&ComponentPolicy> {
        self.components.get(name)
    }

    /// The `sha256` pin of `name`, if the policy pins it.
    pub fn pin_for(&self, name: &str) -> Option<&DigestPin> {
        self.components.get(name)?.sha256.as_ref()
    }

    /// The `signed_by` rule that applies to `name`: its own, else
    /// `[defaults]`'s.
    pub fn signers_for(&self, name: &str) -> Option<&SignedBy> {
        self.components
            .get(name)
            .and_then(|c| c.signed_by.as_ref())
            .or(self.defaults.signed_by.as_ref())
    }

    /// The `[nats]` table: how this host connects to its NATS server
    /// (`docs/distributed.md`), if the policy has one.
    pub fn nats(&self) -> Option<&NatsSettings> {
        self.nats.as_ref()
    }

    /// The file the policy was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The names of the components the policy has a `[components.<name>]`
    /// table for, in order.
    pub fn component_names(&self) -> impl Iterator<Item = &str> {
        self.components.keys().map(String::as_str)
    }

    /// The policy as far as authority goes: `[defaults]` and, per named
    /// component, every grant and deny rule that applies to it. Compare
    /// two with [`crate::authority::diff_policies`] (what
    /// `airssys policy diff` prints).
    pub fn authority(&self) -> crate::authority::PolicyRules {
        use crate::authority::{PolicyRules, TableRules};
        let caps = |rules: &mut dyn Iterator<Item = &PolicyRule>| -> Vec<Capability> {
            rules.map(|r| r.capability.clone()).collect()
        };
        PolicyRules {
            defaults: TableRules {
                grants: caps(&mut self.defaults.grants.iter()),
                denies: caps(&mut self.defaults.denies.iter()),
            },
            components: self
                .component_names()
                .map(|name| {
                    let table = TableRules {
                        grants: caps(&mut self.grants_for(name)),
                        denies: caps(&mut self.denies_for(name)),
                    };
                    (name.to_owned(), table)
                })
                .collect(),
        }
    }

    /// Every grant that applies to `name`: defaults first.
    pub fn grants_for<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a PolicyRule> + 'a {
        let own = self.components.get(name).map(|c| c.grants.iter());
        self.defaults.grants.iter().chain(own.into_iter().flatten())
    }

    /// Every deny rule that applies to `name`: defaults first.
    pub fn denies_for<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a PolicyRule> + 'a {
        let own = self.components.get(name).map(|c| c.denies.iter());
        self.defaults.denies.iter().chain(own.into_iter().flatten())
    }

    /// The `init` configuration of `name`: defaults overridden by its own.
    pub fn config_for(&self, name: &str) -> BTreeMap<String, String> {
        self.merged(name, |c| &c.config)
    }

    /// The environment offered to `name`: defaults overridden by its own.
    pub fn env_for(&self, name: &str) -> BTreeMap<String, String> {
        self.merged(name, |c| &c.env)
    }

    /// The virtual roots of `name` and the host directories they map to:
    /// `[defaults]` mounts overridden by its own.
    pub fn mounts_for(&self, name: &str) -> BTreeMap<String, PathBuf> {
        let mut out = self.defaults.mounts.clone();
        if let Some(own) = self.components.get(name) {
            out.extend(own.mounts.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// The subscriptions of `name` (`msg:subscribe:<pattern>` rules):
    /// `[defaults]` first.
    pub fn subscriptions_for<'a>(
        &'a self,
        name: &str,
    ) -> impl Iterator<Item = &'a PolicyRule> + 'a {
        let own = self.components.get(name).map(|c| c.subscribe.iter());
        self.defaults
            .subscribe
            .iter()
            .chain(own.into_iter().flatten())
    }

    /// How many instances of `name` the runtime's `Server` runs: its
    /// own `instances`, then `[defaults]`, then 1.
    pub fn instances_for(&self, name: &str) -> u32 {
        self.components
            .get(name)
            .and_then(|c| c.instances)
            .or(self.defaults.instances)
            .unwrap_or(1)
    }

    /// The limits of `name`: its own, then `[defaults]`, then `base`.
    pub fn limits_for(&self, name: &str, base: ResolvedLimits) -> ResolvedLimits {
        let own = self
            .components
            .get(name)
            .map(|c| c.limits)
            .unwrap_or_default();
        own.or(self.defaults.limits).resolve(base)
    }

    /// The limits of every component the policy names, and of any other
    /// (`[defaults]` over `base`): what the engine must be able to hold.
    pub fn every_limits(&self, base: ResolvedLimits) -> Vec<ResolvedLimits> {
        let others = self.defaults.limits.resolve(base);
        self.components
            .keys()
            .map(|name| self.limits_for(name, base))
            .chain([others])
            .collect()
    }

    fn merged(
        &self,
        name: &str,
        field: impl Fn(&ComponentPolicy) -> &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut out = field(&self.defaults).clone();
        if let Some(own) = self.components.get(name) {
            out.extend(field(own).iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }

    /// How to grant `missing` to `name`, for load errors: the TOML to add
    /// (and where), or the builder call.
    pub fn how_to_grant(&self, name: &str, missing: &[String]) -> String {
        let list = missing
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        if !self.from_toml {
            let calls = missing
                .iter()
                .map(|c| format!(".grant(\"{name}\", \"{c}\".parse()?)"))
                .collect::<Vec<_>>()
                .join("");
            return format!(
                "to grant them, add to the policy builder: Policy::builder(){calls}, or in a \
                 policy file:\n    [components.{name}]\n    grants = [{list}]"
            );
        }
        let file = self
            .source
            .as_ref()
            .map_or_else(|| "the policy".to_owned(), |p| p.display().to_string());
        match self.components.get(name).and_then(|c| c.line) {
            Some(line) => format!(
                "to grant them, add {list} to `grants` of [components.{name}] in {file} \
                 (line {line})"
            ),
            None => format!(
                "to grant them, add to {file}:\n    [components.{name}]\n    grants = [{list}]"
            ),
        }
    }

    /// Where a rule was written, for messages: " (policy.toml line 7)",
    /// or nothing for a rule not read from TOML.
    pub fn rule_origin(&self, rule: &PolicyRule) -> String {
        self.origin(rule)
            .map_or_else(String::new, |origin| format!(" ({origin})"))
    }

    /// Where `rule` (one of this policy's) was written: `None` when it was
    /// not read from TOML (a builder rule).
    pub fn origin(&self, rule: &PolicyRule) -> Option<RuleOrigin> {
        Some(RuleOrigin {
            file: self.source.clone(),
            line: rule.line?,
        })
    }
}

/// Checks one mount: the virtual root is absolute and normalized (the
/// form of `fs` grants), the host directory absolute.
pub(crate) fn check_mount(virtual_root: &str, host_dir: &Path) -> Result<(), String> {
    let normalized = virtual_root == "/"
        || (virtual_root.starts_with('/')
            && virtual_root[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".."));
    if !normalized {
        return Err(format!(
            "mount `{virtual_root}`: a virtual root must be an absolute, normalized path such as \
             `/data` (no `.`, `..` or empty components, no trailing `/`)"
        ));
    }
    if !host_dir.is_absolute() {
        return Err(format!(
            "mount `{virtual_root}`: the host directory `{}` must be an absolute path",
            host_dir.display()
        ));
    }
    Ok(())
}

/// A subscription pattern (`orders.*`) as the `msg:subscribe` capability
/// it stands for.
///
/// # Errors
///
/// When `pattern` is not a valid topic pattern (the error's offset counts
/// the `msg:subscribe:` prefix).
pub fn subscription(pattern: &str) -> Result<Capability, crate::capability::CapabilityError> {
    Capability::parse(&format!("msg:subscribe:{pattern}"))
}

pub(crate) fn rule(capability: Capability) -> PolicyRule {
    PolicyRule {
        capability,
        line: None,
    }
}

impl fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.capability.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parses_every_key() {
        let policy = Policy::from_toml_str(
            r#"
allow_unannotated = true

[defaults]
grants = ["log:write:info"]
denies = ["env:read:AWS_*"]
limits = { memory_bytes = 1024, cpu_time_ms = 50 }

[components.counter]
grants = ["kv:read:counter/*", "kv:write:counter/*"]
config = { start = 10, name = "x", on = true }
env = { APP_MODE = "test" }
limits = { storage_bytes = 99 }
"#,
        )
        .expect("valid policy");
        assert!(policy.allows_unannotated());
        let grants: Vec<String> = policy
            .grants_for("counter")
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            grants,
            ["log:write:info", "kv:read:counter/*", "kv:write:counter/*"]
        );
        assert_eq!(policy.denies_for("other").count(), 1);
        assert_eq!(policy.component("counter").and_then(|c| c.line), Some(9));
        assert_eq!(
            policy.grants_for("counter").nth(1).and_then(|r| r.line),
            Some(10)
        );
        let config = policy.config_for("counter");
        assert_eq!(config.get("start").map(String::as_str), Some("10"));
        assert_eq!(config.get("on").map(String::as_str), Some("true"));
        let limits = policy.limits_for("counter", ResolvedLimits::default());
        assert_eq!(limits.memory_bytes, 1024);
        assert_eq!(limits.cpu_time, Duration::from_millis(50));
        assert_eq!(limits.storage_bytes, 99);
        let other = policy.limits_for("other", ResolvedLimits::default());
        assert_eq!(other.storage_bytes, DEFAULT_STORAGE_BYTES);
    }

    #[test]
    fn max_children_is_parsed_and_checked() {
        let policy = Policy::from_toml_str(
            "[defaults]\nlimits = { max_children = 3 }\n\n[components.a]\nlimits = { max_children = 1 }\n",
        )
        .expect("valid policy");
        let base = ResolvedLimits::default();
        assert_eq!(policy.limits_for("a", base).max_children, 1);
        assert_eq!(policy.limits_for("b", base).max_children, 3);
        assert_eq!(
            Policy::default().limits_for("b", base).max_children,
            DEFAULT_MAX_CHILDREN
        );
        let err = Policy::from_toml_str("[components.a]\nlimits = { max_children = -1 }\n")
            .expect_err("negative count");
        let PolicyError::Invalid { line, column, .. } = err else {
            panic!("expected Invalid, got {err:?}");
        };
        assert_eq!((line, column), (2, 27));
    }

    #[test]
    fn pool_and_rate_limits_are_parsed_and_inherited() {
        let policy = Policy::from_toml_str(
            "[defaults]\nlimits = { max_instances = 3, log_lines_per_second = 7 }\n\n\
             [components.a]\nlimits = { max_core_instances = 5, max_memories = 1, max_tables = \
             2, log_bytes_per_second = 9, audit_denials_per_second = 4 }\n",
        )
        .expect("valid policy");
        let base = ResolvedLimits::default();
        let a = policy.limits_for("a", base);
        assert_eq!(
            (
                a.max_instances,
                a.max_core_instances,
                a.max_memories,
                a.max_tables
            ),
            (3, 5, 1, 2)
        );
        assert_eq!(
            (
                a.log_lines_per_second,
                a.log_bytes_per_second,
                a.audit_denials_per_second
            ),
            (7, 9, 4)
        );
        let b = policy.limits_for("b", base);
        assert_eq!(b.max_core_instances, DEFAULT_MAX_CORE_INSTANCES);
        assert_eq!(b.audit_denials_per_second, DEFAULT_AUDIT_DENIALS_PER_SECOND);
        // The engine is sized for the largest of them.
        let every = policy.every_limits(base);
        assert_eq!(every.len(), 2);
        assert!(every.iter().any(|l| l.max_core_instances == 5));
    }

    #[test]
    fn bad_capability_points_into_the_string() {
        let err = Policy::from_toml_str("[components.a]\ngrants = [\"kv:raed:x\"]\n")
            .expect_err("bad action");
        let PolicyError::Invalid {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("expected Invalid, got {err:?}");
        };
        assert_eq!((*line, *column), (2, 15), "{message}");
        assert!(message.contains("unknown action `raed`"), "{message}");
    }

    #[test]
    fn unknown_key_is_an_error_with_position() {
        let err = Policy::from_toml_str("[components.a]\ngrant = [\"log:write\"]\n")
            .expect_err("unknown key");
        let text = err.to_string();
        assert!(text.starts_with("policy line 2, column 1:"), "{text}");
        assert!(text.contains("grant"), "{text}");
    }

    #[test]
    fn sha256_pins_one_component_with_its_line() {
        let digest = ComponentDigest::of(b"billing");
        let policy = Policy::from_toml_str(&format!(
            "[components.billing]\ngrants = []\nsha256 = \"{}\"\n",
            digest.to_string().to_uppercase()
        ))
        .expect("valid policy");
        let pin = policy.pin_for("billing").expect("pinned");
        assert_eq!((pin.digest, pin.line), (digest, Some(3)));
        assert!(policy.pin_for("other").is_none());
        let built = Policy::builder().pin_sha256("billing", digest).build();
        assert_eq!(built.pin_for("billing").map(|p| p.digest), Some(digest));

        let err =
            Policy::from_toml_str("[components.a]\nsha256 = \"abc\"\n").expect_err("short digest");
        let text = err.to_string();
        assert!(text.starts_with("policy line 2, column 10:"), "{text}");
        assert!(text.contains("64 hexadecimal digits"), "{text}");
        assert!(text.contains("this one has 3 digits"), "{text}");
        let err = Policy::from_toml_str(&format!("[defaults]\nsha256 = \"{digest}\"\n"))
            .expect_err("a pin in [defaults]");
        assert!(err.to_string().contains("not in [defaults]"), "{err}");
    }

    #[test]
    fn how_to_grant_names_the_table_line() {
        let policy =
            Policy::from_toml_str("\n[components.counter]\ngrants = []\n").expect("valid policy");
        let text = policy.how_to_grant("counter", &["kv:write:counter/*".to_owned()]);
        assert!(text.contains("(line 2)"), "{text}");
        let text = policy.how_to_grant("other", &["log:write".to_owned()]);
        assert!(text.contains("[components.other]"), "{text}");
    }
}
