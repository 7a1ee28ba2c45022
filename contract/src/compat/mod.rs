//! WIT evolution: which changes between two WIT versions break whom, and
//! whether the declared version bump is enough.
//!
//! One engine serves two callers:
//!
//! - `airssys wit diff OLD NEW`: [`diff_paths`] loads both sides, compares
//!   every package, interface, type, function, resource and world, and
//!   builds a [`Report`] with a verdict per [`ChangeRule`] for importers,
//!   exporters and bindings, plus the bump check ([`PackageVerdict`]).
//! - The runtime's load-time check: [`check_import`] /
//!   [`check_world_imports`] compare a component's decoded imports with the
//!   host's contract and return [`Mismatch`]es worded for the user.
//!
//! # Examples
//!
//! ```
//! use airssys_contract::compat::{diff, ChangeRule};
//! use wit_parser::Resolve;
//!
//! let mut old = Resolve::new();
//! old.push_str("old.wit", "package a:b@1.0.0; interface i { f: func(x: u32); }").unwrap();
//! let mut new = Resolve::new();
//! new.push_str("new.wit", "package a:b@1.0.0; interface i { f: func(x: string); }").unwrap();
//! let d = diff(&old, &new);
//! assert_eq!(d.changes[0].rule, ChangeRule::FuncParamTypeChanged);
//! assert!(d.changes[0].importers.is_breaking());
//! ```

mod engine;
mod keyed;
mod link;
mod report;
mod rules;
mod types;
mod version;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use wit_parser::Resolve;

use crate::model::{Location, error_location};

pub use link::{Mismatch, check_import, check_world_imports, compare_interfaces};
pub use report::{
    Change, Finding, ItemLocation, PackageVerdict, REPORT_FORMAT, Report, ReportSummary,
};
pub use rules::{Bump, ChangeRule, HygieneRule, Impact, Impacts};
pub use version::{Track, TrackMismatch, check_track, declared_bump};

use engine::{Engine, Wording};
use keyed::Keyed;

/// A WIT directory or file that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct WitLoadError {
    /// The path given.
    pub path: PathBuf,
    /// wit-parser's error, rendered with file, line and column.
    pub message: String,
    /// The file and line wit-parser rejected (from its error's span), when
    /// the WIT was read and did not parse or resolve.
    pub location: Option<Location>,
}

/// Loads a WIT directory (with its `deps/`), a directory of package
/// directories, or a single `.wit` file, with every `@unstable` feature
/// enabled so unstable items are compared too.
///
/// # Errors
///
/// [`WitLoadError`] naming the file and line wit-parser rejected.
pub fn load_wit(path: &Path) -> Result<Resolve, WitLoadError> {
    let fail = |message: String| WitLoadError {
        path: path.to_path_buf(),
        message,
        location: None,
    };
    let rejected = |message: String, location: Option<Location>| WitLoadError {
        path: path.to_path_buf(),
        message,
        location,
    };
    let mut resolve = Resolve::new();
    resolve.all_features = true;
    if !path.exists() {
        return Err(fail("no such file or directory".into()));
    }
    let has_wit = |dir: &Path| {
        std::fs::read_dir(dir).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "wit"))
        })
    };
    if path.is_file() || has_wit(path) {
        return match resolve.push_path(path) {
            Ok(_) => Ok(resolve),
            Err(e) => Err(rejected(
                resolve.render_error(&e),
                error_location(&resolve.source_map, e.chain()),
            )),
        };
    }
    // A directory of package directories: push them in dependency order by
    // retrying the ones whose dependencies are not loaded yet.
    let mut pending: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| fail(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && has_wit(p))
        .collect();
    pending.sort();
    if pending.is_empty() {
        return Err(fail("no .wit files found".into()));
    }
    while !pending.is_empty() {
        let mut last_error = None;
        let before = pending.len();
        let mut rest = Vec::new();
        for dir in pending {
            let mut attempt = resolve.clone();
            match attempt.push_dir(&dir) {
                Ok(_) => resolve = attempt,
                Err(e) => {
                    last_error = Some(rejected(
                        attempt.render_error(&e),
                        error_location(&attempt.source_map, e.chain()),
                    ));
                    rest.push(dir);
                }
            }
        }
        if rest.len() == before {
            return Err(last_error.unwrap_or_else(|| fail(String::new())));
        }
        pending = rest;
    }
    Ok(resolve)
}

/// Changes and hygiene findings between two package sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Every change, stable and `@unstable` (see [`Change::unstable`]).
    pub changes: Vec<Change>,
    /// `@since` / `@deprecated` findings.
    pub hygiene: Vec<Finding>,
}

/// Compares every package of `old` with the package of the same
/// `namespace:name` in `new`.
pub fn diff(old: &Resolve, new: &Resolve) -> Diff {
    diff_with_roots(old, new, None, None)
}

fn diff_with_roots(
    old: &Resolve,
    new: &Resolve,
    old_root: Option<&Path>,
    new_root: Option<&Path>,
) -> Diff {
    let mut engine = Engine::new(old, new, old_root, new_root, Wording::Diff);
    engine.packages();
    Diff {
        changes: engine.changes,
        hygiene: engine.hygiene,
    }
}

/// The bump verdict of every package present on both sides.
pub fn package_verdicts(old: &Resolve, new: &Resolve, changes: &[Change]) -> Vec<PackageVerdict> {
    let mut required: HashMap<&str, Bump> = HashMap::new();
    for c in changes.iter().filter(|c| !c.unstable) {
        let e = required.entry(c.location.package.as_str()).or_default();
        *e = (*e).max(c.bump);
    }
    let mut out = Vec::new();
    for pair in engine::paired_packages(old, new) {
        let Keyed::Both(key, oid, nid) = pair else {
            continue;
        };
        let (op, np) = (&old.packages[oid], &new.packages[nid]);
        let (ov, nv) = (op.name.version.as_ref(), np.name.version.as_ref());
        let required_bump = required.get(key.as_str()).copied().unwrap_or_default();
        let declared = declared_bump(ov, nv);
        let show =
            |v: Option<&semver::Version>| v.map_or("unversioned".to_string(), ToString::to_string);
        let (ok, message) = match declared {
            None => (
                false,
                format!("version went down: {} -> {}", show(ov), show(nv)),
            ),
            Some(d) if d >= required_bump => (
                true,
                format!(
                    "{} -> {}: declared {d} bump, changes require {required_bump}",
                    show(ov),
                    show(nv)
                ),
            ),
            Some(_) if nv.is_none() => (
                false,
                format!("changes require a {required_bump} bump but the package has no version"),
            ),
            Some(d) => (
                false,
                format!(
                    "{} -> {}: declared {d} bump, changes require {required_bump}{}",
                    show(ov),
                    show(nv),
                    match required_bump {
                        Bump::Major => " (a new semver track)",
                        _ => "",
                    }
                ),
            ),
        };
        out.push(PackageVerdict {
            package: key,
            old_version: ov.map(ToString::to_string),
            new_version: nv.map(ToString::to_string),
            required_bump,
            declared_bump: declared,
            ok,
            message,
        });
    }
    out
}

/// Builds the full report from two loaded package sets. `old_root` and
/// `new_root` make file names relative in locations.
pub fn report(old: &Resolve, new: &Resolve, old_root: &Path, new_root: &Path) -> Report {
    let d = diff_with_roots(old, new, Some(old_root), Some(new_root));
    let packages = package_verdicts(old, new, &d.changes);
    let (unstable_changes, changes): (Vec<Change>, Vec<Change>) =
        d.changes.into_iter().partition(|c| c.unstable);
    let count = |f: fn(&Change) -> bool| changes.iter().filter(|c| f(c)).count();
    let summary = ReportSummary {
        changes: changes.len(),
        unstable_changes: unstable_changes.len(),
        breaking_importers: count(|c| c.importers.is_breaking()),
        breaking_exporters: count(|c| c.exporters.is_breaking()),
        breaking_bindings: count(|c| c.bindings.is_breaking()),
        required_bump: packages
            .iter()
            .map(|p| p.required_bump)
            .max()
            .unwrap_or_default(),
        bump_ok: packages.iter().all(|p| p.ok),
        hygiene_ok: d.hygiene.is_empty(),
    };
    Report {
        format: REPORT_FORMAT,
        old: old_root.display().to_string(),
        new: new_root.display().to_string(),
        packages,
        changes,
        unstable_changes,
        hygiene: d.hygiene,
        summary,
    }
}

/// Loads OLD and NEW and builds the report.
///
/// # Errors
///
/// [`WitLoadError`] when either side does not parse or resolve.
pub fn diff_paths(old: &Path, new: &Path) -> Result<Report, WitLoadError> {
    let o = load_wit(old)?;
    let n = load_wit(new)?;
    Ok(report(&o, &n, old, new))
}
