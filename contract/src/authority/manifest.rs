//! Two manifests of one component compared: the capabilities it asks
//! for, and whether its name and version say what changed.

use std::fmt;

use serde::Serialize;

use super::capabilities::{CapabilityDiff, diff_capabilities, join};
use crate::capability::{Capability, Domain};
use crate::manifest::Manifest;

/// What changed between two manifests of a component (see
/// [`diff_manifests`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestDiff {
    /// `(old, new)` names.
    pub name: (String, String),
    /// `(old, new)` versions.
    pub version: (String, String),
    /// The declared capabilities (`requires` and `optional` together).
    pub capabilities: CapabilityDiff,
    /// Patterns in both that moved from `optional` to `requires`: the
    /// component no longer loads without them.
    #[serde(serialize_with = "super::ser::caps")]
    pub became_required: Vec<Capability>,
    /// Patterns in both that moved from `requires` to `optional`.
    #[serde(serialize_with = "super::ser::caps")]
    pub became_optional: Vec<Capability>,
    /// Domains NEW reaches that OLD did not.
    #[serde(serialize_with = "super::ser::domains")]
    pub new_domains: Vec<Domain>,
    /// What the name and version say against the changes.
    pub findings: Vec<ReviewFinding>,
}

/// Something a reviewer should look at in a release's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewFinding {
    /// What kind of finding.
    pub kind: ReviewFindingKind,
    /// It, in words.
    pub message: String,
}

/// The kinds of [`ReviewFinding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewFindingKind {
    /// The component's name changed: policy tables (`[components.<name>]`)
    /// and `sha256` pins of the old name no longer apply to it.
    NameChanged,
    /// The manifest asks for more authority (widened or added
    /// capabilities) under the same version.
    AuthorityGrewUnderSameVersion,
    /// The version went down.
    VersionWentDown,
}

/// Compares two manifests of a component.
///
/// # Examples
///
/// ```
/// use airssys_contract::authority::{ReviewFindingKind, diff_manifests};
/// use airssys_contract::manifest::Manifest;
///
/// let manifest = |caps: &[&str]| Manifest {
///     name: "counter".into(),
///     version: "0.1.0".into(),
///     requires: caps.iter().map(|c| c.parse().unwrap()).collect(),
///     optional: vec![],
/// };
/// let diff = diff_manifests(&manifest(&["kv:read:counter/*"]), &manifest(&["kv:read:**"]));
/// assert_eq!(diff.capabilities.widened.len(), 1);
/// assert_eq!(diff.findings[0].kind, ReviewFindingKind::AuthorityGrewUnderSameVersion);
/// ```
pub fn diff_manifests(old: &Manifest, new: &Manifest) -> ManifestDiff {
    let old_caps: Vec<Capability> = old.capabilities().cloned().collect();
    let new_caps: Vec<Capability> = new.capabilities().cloned().collect();
    let capabilities = diff_capabilities(&old_caps, &new_caps);
    let new_domains = capabilities.new_domains(&old_caps);
    let moved = |from: &[Capability], to: &[Capability]| -> Vec<Capability> {
        to.iter()
            .filter(|c| from.iter().any(|f| f == *c))
            .cloned()
            .collect()
    };
    let became_required = moved(&old.optional, &new.requires);
    let became_optional = moved(&old.requires, &new.optional);
    let mut findings = Vec::new();
    if old.name != new.name {
        findings.push(ReviewFinding {
            kind: ReviewFindingKind::NameChanged,
            message: format!(
                "the name changed from `{}` to `{}`: policy tables `[components.{}]` and `sha256` \
                 pins of the old name no longer apply; review the grants under the new name",
                old.name, new.name, old.name
            ),
        });
    }
    let versions = (
        semver::Version::parse(&old.version).ok(),
        semver::Version::parse(&new.version).ok(),
    );
    if let (Some(o), Some(n)) = &versions
        && n < o
    {
        findings.push(ReviewFinding {
            kind: ReviewFindingKind::VersionWentDown,
            message: format!("the version went down: {o} -> {n}"),
        });
    }
    let grew = capabilities.gains() || !became_required.is_empty();
    if grew && old.version == new.version {
        let what: Vec<String> = capabilities
            .widened
            .iter()
            .map(|w| w.to.to_string())
            .chain(capabilities.added.iter().map(ToString::to_string))
            .chain(
                became_required
                    .iter()
                    .map(|c| format!("{c} (now required)")),
            )
            .collect();
        findings.push(ReviewFinding {
            kind: ReviewFindingKind::AuthorityGrewUnderSameVersion,
            message: format!(
                "the manifest asks for more ({}) but the version is still {}: bump it, so that \
                 a policy or review pinned to {} does not take the new authority for the old",
                what.join(", "),
                new.version,
                old.version
            ),
        });
    }
    ManifestDiff {
        name: (old.name.clone(), new.name.clone()),
        version: (old.version.clone(), new.version.clone()),
        capabilities,
        became_required,
        became_optional,
        new_domains,
        findings,
    }
}

impl ManifestDiff {
    /// Whether anything an operator grants against changed: capabilities,
    /// required-ness, or a finding.
    pub fn is_changed(&self) -> bool {
        self.capabilities.is_changed()
            || !self.became_required.is_empty()
            || !self.became_optional.is_empty()
            || !self.findings.is_empty()
    }
}

impl fmt::Display for ManifestDiff {
    /// The manifest part of `airssys diff`'s text report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (on, nn) = &self.name;
        let (ov, nv) = &self.version;
        writeln!(f, "manifest: {on} {ov} -> {nn} {nv}")?;
        if !self.is_changed() {
            return writeln!(f, "  capabilities: unchanged");
        }
        self.capabilities.write_lines(f, "  ")?;
        if !self.became_required.is_empty() {
            writeln!(f, "  now required: {}", join(&self.became_required))?;
        }
        if !self.became_optional.is_empty() {
            writeln!(f, "  now optional: {}", join(&self.became_optional))?;
        }
        for d in &self.new_domains {
            writeln!(f, "  new domain: {d}")?;
        }
        for finding in &self.findings {
            writeln!(f, "  finding: {}", finding.message)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str, version: &str, requires: &[&str], optional: &[&str]) -> Manifest {
        let caps = |l: &[&str]| l.iter().map(|c| c.parse().expect(c)).collect();
        Manifest {
            name: name.into(),
            version: version.into(),
            requires: caps(requires),
            optional: caps(optional),
        }
    }

    #[test]
    fn a_bumped_version_carries_the_growth_without_a_finding() {
        let old = manifest("c", "0.1.0", &["kv:read:counter/*"], &[]);
        let new = manifest(
            "c",
            "0.2.0",
            &["kv:read:counter/*", "net:http:a.com:443"],
            &[],
        );
        let d = diff_manifests(&old, &new);
        assert_eq!(d.new_domains, [Domain::Net]);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
    }

    #[test]
    fn findings_for_name_version_and_required() {
        let old = manifest("c", "0.2.0", &["kv:read:counter/*"], &["log:write"]);
        let new = manifest("d", "0.2.0", &["kv:read:counter/*", "log:write"], &[]);
        let d = diff_manifests(&old, &new);
        let kinds: Vec<_> = d.findings.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                ReviewFindingKind::NameChanged,
                ReviewFindingKind::AuthorityGrewUnderSameVersion
            ]
        );
        assert_eq!(d.became_required.len(), 1);
        let down = diff_manifests(&old, &manifest("c", "0.1.0", &["kv:read:counter/*"], &[]));
        assert_eq!(down.findings[0].kind, ReviewFindingKind::VersionWentDown);
        assert!(down.capabilities.losses());
    }
}
