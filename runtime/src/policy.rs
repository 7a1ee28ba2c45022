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
//! grants = ["kv:read:counter/*", "kv:write:counter/*"]
//! config = { start = "10" }
//! env = { APP_MODE = "test" }
//! mounts = { "/data" = "/srv/counter-data" }
//! ```
//!
//! See `docs/policy.md` for every key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use airssys_contract::capability::Capability;
use serde::Deserialize;
use toml::Spanned;

/// Default memory cap per component instance: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// Default time limit of one call into a component: 10 s.
pub const DEFAULT_CPU_TIME: Duration = Duration::from_secs(10);
/// Default storage quota per component: 16 MiB.
pub const DEFAULT_STORAGE_BYTES: u64 = 16 * 1024 * 1024;
/// Default number of child processes a component may have running at
/// once (across its instances).
pub const DEFAULT_MAX_CHILDREN: u32 = 16;

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
    /// The 1-based line of the table header, when read from a file.
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

/// Resource limits of a component. `None` means "inherit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap of one instance, in bytes.
    pub memory_bytes: Option<u64>,
    /// Wall-clock time one call into the component may run (measured with
    /// epoch interruption, so it is enforced at the next tick).
    pub cpu_time: Option<Duration>,
    /// Bytes of keys and values the component may keep in storage.
    pub storage_bytes: Option<u64>,
    /// Child processes the component may have running at once, across
    /// its instances (`max_children`).
    pub max_children: Option<u32>,
}

/// Limits with every field decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedLimits {
    /// Linear memory cap of one instance, in bytes.
    pub memory_bytes: u64,
    /// Time one call into the component may run.
    pub cpu_time: Duration,
    /// Storage quota in bytes.
    pub storage_bytes: u64,
    /// Child processes running at once, across the component's instances.
    pub max_children: u32,
}

impl Default for ResolvedLimits {
    fn default() -> Self {
        ResolvedLimits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            cpu_time: DEFAULT_CPU_TIME,
            storage_bytes: DEFAULT_STORAGE_BYTES,
            max_children: DEFAULT_MAX_CHILDREN,
        }
    }
}

impl Limits {
    /// `self`, with unset fields taken from `fallback`.
    pub fn or(self, fallback: Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            cpu_time: self.cpu_time.or(fallback.cpu_time),
            storage_bytes: self.storage_bytes.or(fallback.storage_bytes),
            max_children: self.max_children.or(fallback.max_children),
        }
    }

    /// Every field decided, unset ones from `base`.
    pub fn resolve(self, base: ResolvedLimits) -> ResolvedLimits {
        ResolvedLimits {
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            cpu_time: self.cpu_time.unwrap_or(base.cpu_time),
            storage_bytes: self.storage_bytes.unwrap_or(base.storage_bytes),
            max_children: self.max_children.unwrap_or(base.max_children),
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
}

fn at(path: Option<&Path>, line: u32, column: u32, message: &str) -> String {
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
        parse_toml(text, None)
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
        parse_toml(&text, Some(path))
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

    /// The limits of `name`: its own, then `[defaults]`, then `base`.
    pub fn limits_for(&self, name: &str, base: ResolvedLimits) -> ResolvedLimits {
        let own = self
            .components
            .get(name)
            .map(|c| c.limits)
            .unwrap_or_default();
        own.or(self.defaults.limits).resolve(base)
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
    pub(crate) fn how_to_grant(&self, name: &str, missing: &[String]) -> String {
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

    /// Where a rule was written, for messages: " (policy.toml line 7)".
    pub(crate) fn rule_origin(&self, rule: &PolicyRule) -> String {
        match (rule.line, &self.source) {
            (Some(line), Some(path)) => format!(" ({} line {line})", path.display()),
            (Some(line), None) => format!(" (policy line {line})"),
            _ => String::new(),
        }
    }
}

/// Builds a [`Policy`] in code. Every method widens authority explicitly;
/// nothing is granted by default.
///
/// # Examples
///
/// ```
/// use airssys_runtime::Policy;
///
/// let policy = Policy::builder()
///     .grant("counter", "kv:read:counter/*".parse()?)
///     .grant("counter", "kv:write:counter/*".parse()?)
///     .default_grant("log:write:info".parse()?)
///     .config("counter", "start", "10")
///     .build();
/// assert_eq!(policy.grants_for("counter").count(), 3);
/// # Ok::<(), airssys_runtime::contract::capability::CapabilityError>(())
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct PolicyBuilder {
    policy: Policy,
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
    ) -> Result<Self, airssys_contract::capability::CapabilityError> {
        let capability = crate::broker::subscription(pattern)?;
        self.entry(name).subscribe.push(rule(capability));
        Ok(self)
    }

    /// Limits of the component `name`.
    pub fn limits(mut self, name: &str, limits: Limits) -> Self {
        self.entry(name).limits = limits;
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

/// Checks one mount: the virtual root is absolute and normalized (the
/// form of `fs` grants), the host directory absolute.
fn check_mount(virtual_root: &str, host_dir: &Path) -> Result<(), String> {
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

fn rule(capability: Capability) -> PolicyRule {
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

// ---- TOML ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow_unannotated: bool,
    #[serde(default)]
    defaults: Option<TableFile>,
    #[serde(default)]
    components: BTreeMap<Spanned<String>, TableFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default)]
    grants: Vec<Spanned<String>>,
    #[serde(default)]
    denies: Vec<Spanned<String>>,
    #[serde(default)]
    config: BTreeMap<String, ScalarFile>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    mounts: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    subscribe: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    memory_bytes: Option<u64>,
    cpu_time_ms: Option<u64>,
    storage_bytes: Option<u64>,
    max_children: Option<u32>,
}

/// A configuration value: strings as written, other scalars as TOML text.
#[derive(Deserialize)]
#[serde(untagged)]
enum ScalarFile {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl ScalarFile {
    fn into_string(self) -> String {
        match self {
            ScalarFile::String(s) => s,
            ScalarFile::Integer(i) => i.to_string(),
            ScalarFile::Float(f) => f.to_string(),
            ScalarFile::Bool(b) => b.to_string(),
        }
    }
}

fn parse_toml(text: &str, path: Option<&Path>) -> Result<Policy, PolicyError> {
    let invalid = |offset: usize, message: String| {
        let (line, column) = line_column(text, offset);
        PolicyError::Invalid {
            path: path.map(Path::to_path_buf),
            line,
            column,
            message,
        }
    };
    let file: PolicyFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        invalid(offset, e.message().trim().to_owned())
    })?;
    let table = |t: TableFile, line: Option<u32>| -> Result<ComponentPolicy, PolicyError> {
        let rules = |list: Vec<Spanned<String>>| -> Result<Vec<PolicyRule>, PolicyError> {
            list.into_iter()
                .map(|s| {
                    let span = s.span();
                    Capability::parse(s.get_ref())
                        .map(|capability| PolicyRule {
                            capability,
                            line: Some(line_column(text, span.start).0),
                        })
                        // +1: the span starts at the opening quote.
                        .map_err(|e| invalid(span.start + 1 + e.offset, e.to_string()))
                })
                .collect()
        };
        let mut mounts = BTreeMap::new();
        for (root, host_dir) in t.mounts {
            let host_dir = PathBuf::from(host_dir);
            check_mount(root.get_ref(), &host_dir).map_err(|m| invalid(root.span().start, m))?;
            mounts.insert(root.into_inner(), host_dir);
        }
        Ok(ComponentPolicy {
            grants: rules(t.grants)?,
            denies: rules(t.denies)?,
            config: t
                .config
                .into_iter()
                .map(|(k, v)| (k, v.into_string()))
                .collect(),
            env: t.env,
            limits: Limits {
                memory_bytes: t.limits.memory_bytes,
                cpu_time: t.limits.cpu_time_ms.map(Duration::from_millis),
                storage_bytes: t.limits.storage_bytes,
                max_children: t.limits.max_children,
            },
            mounts,
            subscribe: t
                .subscribe
                .into_iter()
                .map(|s| {
                    let span = s.span();
                    crate::broker::subscription(s.get_ref())
                        .map(|capability| PolicyRule {
                            capability,
                            line: Some(line_column(text, span.start).0),
                        })
                        // The error offset counts the `msg:subscribe:` prefix.
                        .map_err(|e| {
                            let offset = e.offset.saturating_sub("msg:subscribe:".len());
                            invalid(span.start + 1 + offset, e.to_string())
                        })
                })
                .collect::<Result<_, _>>()?,
            line,
        })
    };
    let defaults = match file.defaults {
        Some(t) => table(t, None)?,
        None => ComponentPolicy::default(),
    };
    let mut components = BTreeMap::new();
    for (name, t) in file.components {
        let line = line_column(text, name.span().start).0;
        components.insert(name.into_inner(), table(t, Some(line))?);
    }
    Ok(Policy {
        allow_unannotated: file.allow_unannotated,
        defaults,
        components,
        source: path.map(Path::to_path_buf),
        from_toml: true,
    })
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn how_to_grant_names_the_table_line() {
        let policy =
            Policy::from_toml_str("\n[components.counter]\ngrants = []\n").expect("valid policy");
        let text = policy.how_to_grant("counter", &["kv:write:counter/*".to_owned()]);
        assert!(text.contains("(line 2)"), "{text}");
        let text = policy.how_to_grant("other", &["log:write".to_owned()]);
        assert!(text.contains("[components.other]"), "{text}");
    }
}
