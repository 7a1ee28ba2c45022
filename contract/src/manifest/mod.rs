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
mod toml_file;
mod wasm;

use std::fmt;
use std::path::PathBuf;

use crate::capability::Capability;

pub use binary::{FORMAT_VERSION, MAGIC, MAX_ENCODED_LEN};

/// The name of the custom section that carries an encoded [`Manifest`].
pub const MANIFEST_SECTION: &str = "airssys:manifest";

/// A component's typed permission manifest.
///
/// A valid manifest has a name made of ASCII letters, digits, `-` and `_`
/// (starting with a letter), a semver version, and no capability listed
/// twice (neither within one list nor in both).
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
    /// Checks the rules every manifest obeys: a well-formed name, a semver
    /// version, and no capability listed twice.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Invalid`] naming the first rule broken.
    pub fn validate(&self) -> Result<(), ManifestError> {
        check_name(&self.name).map_err(ManifestError::Invalid)?;
        check_version(&self.version).map_err(ManifestError::Invalid)?;
        if let Some(message) = first_duplicate(&self.requires, &self.optional) {
            return Err(ManifestError::Invalid(message));
        }
        Ok(())
    }

    /// Every capability, required ones first.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.requires.iter().chain(&self.optional)
    }
}

/// Checks a component name: ASCII letter first, then letters, digits, `-`, `_`.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("the component name is empty".to_owned()),
        Some(c) if !c.is_ascii_alphabetic() => {
            return Err(format!(
                "the component name `{name}` must start with an ASCII letter"
            ));
        }
        Some(_) => {}
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
        return Err(format!(
            "the component name `{name}` contains {bad:?}; use ASCII letters, digits, `-` and `_`"
        ));
    }
    Ok(())
}

/// Checks a version: semver, e.g. `0.1.0` or `1.2.0-rc.1`.
fn check_version(version: &str) -> Result<(), String> {
    semver::Version::parse(version)
        .map(|_| ())
        .map_err(|e| format!("the version `{version}` is not semver ({e}); e.g. `0.1.0`"))
}

/// Describes the first capability listed twice, if any.
fn first_duplicate(requires: &[Capability], optional: &[Capability]) -> Option<String> {
    for (list, caps) in [("requires", requires), ("optional", optional)] {
        for (i, cap) in caps.iter().enumerate() {
            if caps[..i].contains(cap) {
                return Some(format!("capability `{cap}` is listed twice in `{list}`"));
            }
        }
    }
    optional
        .iter()
        .find(|cap| requires.contains(cap))
        .map(|cap| format!("capability `{cap}` is both required and optional"))
}

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
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
