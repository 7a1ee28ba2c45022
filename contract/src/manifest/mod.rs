//! A component's permission manifest: its name, version and the
//! capabilities it requires or may use.
//!
//! A manifest comes from a `Component.toml` (or the `#[airssys::component]`
//! macro) and travels inside the built component as the
//! [`MANIFEST_SECTION`] custom section, so the host can read it at load
//! time without trusting anything else.
//!
//! ```toml
//! [component]
//! name = "counter"
//! version = "0.1.0"
//!
//! [capabilities]
//! requires = ["kv:read:counter/*", "log:write"]
//! optional = ["net:connect:api.example.com:443"]
//! ```

mod binary;
#[cfg(feature = "toml")]
mod toml_file;
#[cfg(feature = "wasm")]
mod wasm;

use std::collections::HashSet;
#[cfg(feature = "toml")]
use std::fmt;
use std::path::PathBuf;

use crate::capability::Capability;

pub use binary::{FORMAT_VERSION, MAGIC, MAX_ENCODED_LEN};
#[cfg(feature = "signature")]
pub(crate) use wasm::put_leb;
#[cfg(feature = "wasm")]
pub use wasm::{Placement, languages};

/// The name of the custom section that carries an encoded [`Manifest`].
pub const MANIFEST_SECTION: &str = "airssys:manifest";

/// The most capabilities one manifest may list, `requires` and `optional`
/// together (1,024). Every manifest is read and checked in time linear in
/// its size; the cap also bounds the grant computation and the compiled
/// grant set of a hostile component.
pub const MAX_CAPABILITIES: usize = 1024;
/// The longest component name, in bytes (64).
pub const MAX_NAME_LEN: usize = 64;
/// The longest version, in bytes (128: room for pre-release and build
/// metadata).
pub const MAX_VERSION_LEN: usize = 128;
/// The longest capability, in bytes of its text (1,024).
pub const MAX_CAPABILITY_LEN: usize = 1024;

/// Component names the host uses itself, refused in every manifest
/// (compared without regard to ASCII case): `cli` and `host` are the
/// senders of requests and messages from the command line and the
/// embedding host, `unannotated` the name components without a manifest
/// run under. Names starting with [`RESERVED_PREFIX`] are reserved too.
pub const RESERVED_NAMES: [&str; 3] = ["cli", "host", "unannotated"];
/// The prefix of names reserved for the host (`airssys`, `airssys-…`).
pub const RESERVED_PREFIX: &str = "airssys";

/// Whether `name` is reserved for the host: one of [`RESERVED_NAMES`] or
/// starting with [`RESERVED_PREFIX`], in any ASCII case.
///
/// # Examples
///
/// ```
/// use airssys_contract::manifest::is_reserved_name;
///
/// assert!(is_reserved_name("cli"));
/// assert!(is_reserved_name("Airssys-monitor"));
/// assert!(!is_reserved_name("billing"));
/// ```
pub fn is_reserved_name(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| name.eq_ignore_ascii_case(r))
        || name
            .get(..RESERVED_PREFIX.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(RESERVED_PREFIX))
}

/// A component's typed permission manifest.
///
/// A valid manifest has a name of at most [`MAX_NAME_LEN`] bytes made of
/// ASCII letters, digits, `-` and `_` (starting with a letter) that the
/// host does not reserve ([`is_reserved_name`]), a semver version of at
/// most [`MAX_VERSION_LEN`] bytes, at most [`MAX_CAPABILITIES`]
/// capabilities of at most [`MAX_CAPABILITY_LEN`] bytes each, and no
/// capability listed twice (neither within one list nor in both).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Manifest {
    /// The component's name, e.g. `counter`.
    pub name: String,
    /// The component's version (semver), e.g. `0.1.0`.
    pub version: String,
    /// Capabilities without which the component must not load.
    pub requires: Vec<Capability>,
    /// Capabilities the component uses when the host grants them.
    pub optional: Vec<Capability>,
}

/// Why a manifest could not be read, decoded or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// A `Component.toml` (or its values) is invalid.
    #[error("{}", display_toml(path.as_deref(), *line, *column, message))]
    Toml {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// 1-based line of the offending text.
        line: u32,
        /// 1-based column (in characters) of the offending text.
        column: u32,
        /// What is wrong.
        message: String,
    },
    /// A `Component.toml` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes of an `airssys:manifest` section are not a valid manifest.
    #[error("invalid `airssys:manifest` section at byte {offset}: {message}")]
    Decode {
        /// Byte offset in the section's contents where decoding failed.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A manifest value (built in code or decoded) breaks a rule.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// The wasm binary could not be parsed.
    #[error("invalid wasm binary: {0}")]
    Wasm(String),
    /// The binary holds two `airssys:manifest` sections that disagree.
    #[error("the wasm binary holds two different `airssys:manifest` sections")]
    ConflictingSections,
    /// A manifest was to be attached to a binary that already has one.
    #[error(
        "the component already carries an `airssys:manifest` section{}; pass `--replace` to \
         replace it",
        existing.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    AlreadyAttached {
        /// The name and version of the manifest found, when it decodes.
        existing: Option<String>,
    },
}

fn display_toml(path: Option<&std::path::Path>, line: u32, column: u32, message: &str) -> String {
    match path {
        Some(path) => format!("{}:{line}:{column}: {message}", path.display()),
        None => format!("line {line}, column {column}: {message}"),
    }
}

impl ManifestError {
    /// The 1-based line and column of a `Component.toml` error.
    pub fn line_column(&self) -> Option<(u32, u32)> {
        match self {
            ManifestError::Toml { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

impl Manifest {
    /// Checks the rules every manifest obeys (see [`Manifest`]): a
    /// well-formed, unreserved name, a semver version, the size limits,
    /// and no capability listed twice. Takes time linear in the size of
    /// the manifest.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Invalid`] naming the first rule broken.
    pub fn validate(&self) -> Result<(), ManifestError> {
        Manifest::validate_name(&self.name)?;
        Manifest::validate_version(&self.version)?;
        check_count(self.requires.len() + self.optional.len()).map_err(ManifestError::Invalid)?;
        for cap in self.capabilities() {
            check_capability_len(&cap.to_string()).map_err(ManifestError::Invalid)?;
        }
        if let Some(message) = first_duplicate(&self.requires, &self.optional) {
            return Err(ManifestError::Invalid(message));
        }
        Ok(())
    }

    /// Checks a component name alone, as [`Manifest::validate`] does: at
    /// most [`MAX_NAME_LEN`] bytes, an ASCII letter first, then letters,
    /// digits, `-`, `_`, and not reserved for the host.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Invalid`] saying what is wrong with the name.
    pub fn validate_name(name: &str) -> Result<(), ManifestError> {
        check_name(name).map_err(ManifestError::Invalid)
    }

    /// Checks a version alone, as [`Manifest::validate`] does: at most
    /// [`MAX_VERSION_LEN`] bytes of semver.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Invalid`] saying what is wrong with the version.
    pub fn validate_version(version: &str) -> Result<(), ManifestError> {
        check_version(version).map_err(ManifestError::Invalid)
    }

    /// Every capability, required ones first.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.requires.iter().chain(&self.optional)
    }
}

/// Checks a component name: at most [`MAX_NAME_LEN`] bytes, ASCII letter
/// first, then letters, digits, `-`, `_`, and not reserved for the host.
fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "the component name `{}` is {} bytes long; the limit is {MAX_NAME_LEN} bytes \
             (MAX_NAME_LEN)",
            shown(name),
            name.len()
        ));
    }
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("the component name is empty".to_owned()),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(format!(
                "the component name `{}` must start with an ASCII letter",
                shown(name)
            ));
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(format!(
            "the component name `{}` contains {bad:?}; use ASCII letters, digits, `-` and `_`",
            shown(name)
        ));
    }
    if is_reserved_name(name) {
        return Err(format!(
            "the component name `{name}` is reserved for the host: the host itself uses `cli`, \
             `host`, `unannotated` and names starting with `airssys` (as the sender of requests \
             and messages, and for components without a manifest), so a component named so \
             could pass for the host; choose another name"
        ));
    }
    Ok(())
}

/// Checks a version: at most [`MAX_VERSION_LEN`] bytes of semver, e.g.
/// `0.1.0` or `1.2.0-rc.1`.
fn check_version(version: &str) -> Result<(), String> {
    if version.len() > MAX_VERSION_LEN {
        return Err(format!(
            "the version `{}` is {} bytes long; the limit is {MAX_VERSION_LEN} bytes \
             (MAX_VERSION_LEN)",
            shown(version),
            version.len()
        ));
    }
    semver::Version::parse(version).map(|_| ()).map_err(|e| {
        format!(
            "the version `{}` is not semver ({e}); e.g. `0.1.0`",
            shown(version)
        )
    })
}

/// Checks the number of capabilities against [`MAX_CAPABILITIES`].
fn check_count(count: usize) -> Result<(), String> {
    if count > MAX_CAPABILITIES {
        return Err(too_many_capabilities(count));
    }
    Ok(())
}

/// The message for a manifest over [`MAX_CAPABILITIES`]; `count` may be
/// a lower bound (the first capability over the cap).
fn too_many_capabilities(count: usize) -> String {
    format!(
        "the manifest lists {count} capabilities; the limit is {MAX_CAPABILITIES} per manifest, \
         `requires` and `optional` together (MAX_CAPABILITIES); use wildcard patterns (`*`, \
         `**`) to cover many resources with one capability"
    )
}

/// Checks the text of one capability against [`MAX_CAPABILITY_LEN`].
fn check_capability_len(text: &str) -> Result<(), String> {
    if text.len() > MAX_CAPABILITY_LEN {
        return Err(format!(
            "capability `{}` is {} bytes long; the limit is {MAX_CAPABILITY_LEN} bytes \
             (MAX_CAPABILITY_LEN)",
            shown(text),
            text.len()
        ));
    }
    Ok(())
}

/// A value from a manifest as messages show it: control characters
/// escaped (a hostile manifest must not drive the operator's terminal),
/// and no more than 80 characters, `…` marking the cut.
pub(crate) fn shown(text: &str) -> String {
    let cut = text.char_indices().nth(80).map(|(at, _)| at);
    let mut out = String::new();
    for c in text[..cut.unwrap_or(text.len())].chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if cut.is_some() {
        out.push('…');
    }
    out
}

/// Describes the first capability listed twice, if any. One pass with a
/// hash set per list: linear in the number of capabilities.
fn first_duplicate(requires: &[Capability], optional: &[Capability]) -> Option<String> {
    let mut required = HashSet::with_capacity(requires.len());
    if let Some(cap) = requires.iter().find(|cap| !required.insert(*cap)) {
        return Some(format!("capability `{cap}` is listed twice in `requires`"));
    }
    let mut seen = HashSet::with_capacity(optional.len());
    if let Some(cap) = optional.iter().find(|cap| !seen.insert(*cap)) {
        return Some(format!("capability `{cap}` is listed twice in `optional`"));
    }
    optional
        .iter()
        .find(|cap| required.contains(cap))
        .map(|cap| format!("capability `{cap}` is both required and optional"))
}

#[cfg(feature = "toml")]
impl fmt::Display for Manifest {
    /// Writes the manifest as a `Component.toml` that reads back equal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, key: &str, caps: &[Capability]) -> fmt::Result {
            write!(f, "{key} = [")?;
            for (i, cap) in caps.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(&toml_string(&cap.to_string()))?;
            }
            f.write_str("]\n")
        }
        writeln!(f, "[component]")?;
        writeln!(f, "name = {}", toml_string(&self.name))?;
        writeln!(f, "version = {}", toml_string(&self.version))?;
        writeln!(f, "\n[capabilities]")?;
        list(f, "requires", &self.requires)?;
        list(f, "optional", &self.optional)
    }
}

/// Quotes a string as a TOML basic string.
#[cfg(feature = "toml")]
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
