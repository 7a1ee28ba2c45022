//! What the engine reports: changes, hygiene findings, per-package bump
//! verdicts, and the report that `airssys wit diff` prints.
//!
//! The JSON form is stable (`format` = [`REPORT_FORMAT`]); field names are
//! documented in `docs/versioning.md`.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::rules::{Bump, ChangeRule, HygieneRule, Impact};

/// The version of the JSON report layout.
pub const REPORT_FORMAT: u32 = 1;

/// Where a change is: package, interface or world, item, and a source line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemLocation {
    /// The package without version (`airssys:core`).
    pub package: String,
    /// The interface, when the change is inside one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub interface: Option<String>,
    /// The world, when the change is inside one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub world: Option<String>,
    /// The item: a function (`get`, `bucket.get`), type, world item or
    /// interface name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub item: Option<String>,
    /// The file, relative to the NEW root (the OLD root for removals).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub file: Option<String>,
    /// The 1-based line in `file`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u32>,
}

impl fmt::Display for ItemLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}"),
            (Some(file), None) => f.write_str(file),
            _ => {
                f.write_str(&self.package)?;
                if let Some(i) = &self.interface {
                    write!(f, "/{i}")?;
                }
                if let Some(w) = &self.world {
                    write!(f, " world {w}")?;
                }
                Ok(())
            }
        }
    }
}

/// One change between OLD and NEW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The rule id (`func-param-type-changed`).
    pub rule: ChangeRule,
    /// Where the change is.
    pub location: ItemLocation,
    /// What changed, in words.
    pub message: String,
    /// Impact for components importing the item.
    pub importers: Impact,
    /// Impact for components exporting the item.
    pub exporters: Impact,
    /// Impact for code written against generated bindings.
    pub bindings: Impact,
    /// The smallest bump this change requires.
    pub bump: Bump,
    /// The item (or an enclosing one) is `@unstable`: reported apart and
    /// not counted in the bump.
    pub unstable: bool,
}

/// A `@since` / `@deprecated` policy finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The hygiene rule id.
    pub rule: HygieneRule,
    /// Where.
    pub location: ItemLocation,
    /// What is wrong, in words.
    pub message: String,
}

/// The bump verdict of one package present in both OLD and NEW.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageVerdict {
    /// `ns:name`.
    pub package: String,
    /// The OLD version, if any.
    pub old_version: Option<String>,
    /// The NEW version, if any.
    pub new_version: Option<String>,
    /// The bump the stable changes require.
    pub required_bump: Bump,
    /// The bump the versions declare; `None` when the version went down.
    pub declared_bump: Option<Bump>,
    /// The declared bump is enough.
    pub ok: bool,
    /// A sentence explaining the verdict.
    pub message: String,
}

/// Counts over the stable changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// Stable changes.
    pub changes: usize,
    /// Changes to `@unstable` items.
    pub unstable_changes: usize,
    /// Stable changes breaking importers.
    pub breaking_importers: usize,
    /// Stable changes breaking exporters.
    pub breaking_exporters: usize,
    /// Stable changes breaking bindings.
    pub breaking_bindings: usize,
    /// The largest bump any package requires.
    pub required_bump: Bump,
    /// Every package's declared bump is enough.
    pub bump_ok: bool,
    /// No hygiene findings.
    pub hygiene_ok: bool,
}

/// The full result of comparing two WIT package sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// The OLD path as given.
    pub old: String,
    /// The NEW path as given.
    pub new: String,
    /// Bump verdict per package present on both sides.
    pub packages: Vec<PackageVerdict>,
    /// Changes to stable items.
    pub changes: Vec<Change>,
    /// Changes to `@unstable` items (reported apart, no bump).
    pub unstable_changes: Vec<Change>,
    /// `@since` / `@deprecated` findings.
    pub hygiene: Vec<Finding>,
    /// Counts and overall verdicts.
    pub summary: ReportSummary,
}

impl Report {
    /// Whether the check passes: every declared bump is enough and, when
    /// `strict`, no hygiene finding.
    pub fn passes(&self, strict: bool) -> bool {
        self.summary.bump_ok && (!strict || self.summary.hygiene_ok)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a report printed by [`Report::to_json`].
    ///
    /// # Errors
    ///
    /// serde_json's error when the text is not a report of this format.
    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let v = |v: Impact| if v.is_breaking() { "BREAKS" } else { "ok" };
        let section = |title: &str, changes: &[Change], out: &mut String| {
            if changes.is_empty() {
                return;
            }
            let _ = writeln!(out, "{title}:");
            for c in changes {
                let _ = writeln!(
                    out,
                    "  [{}] {}: {}\n      importers {}, exporters {}, bindings {}; bump: {}",
                    c.rule,
                    c.location,
                    c.message,
                    v(c.importers),
                    v(c.exporters),
                    v(c.bindings),
                    c.bump
                );
            }
        };
        section("changes", &self.changes, &mut out);
        section(
            "unstable changes (not counted)",
            &self.unstable_changes,
            &mut out,
        );
        if !self.hygiene.is_empty() {
            let _ = writeln!(out, "hygiene:");
            for h in &self.hygiene {
                let _ = writeln!(out, "  [{}] {}: {}", h.rule, h.location, h.message);
            }
        }
        let _ = writeln!(out, "packages:");
        for p in &self.packages {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                if p.ok { "ok  " } else { "FAIL" },
                p.package,
                p.message
            );
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "summary: {} changes ({} unstable); breaking: {} for importers, {} for exporters, {} for bindings; required bump {}; {}",
            s.changes,
            s.unstable_changes,
            s.breaking_importers,
            s.breaking_exporters,
            s.breaking_bindings,
            s.required_bump,
            if s.bump_ok {
                "declared bump is enough"
            } else {
                "declared bump is too small"
            }
        );
        out
    }
}
