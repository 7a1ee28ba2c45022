//! `airssys diff OLD NEW [--format text|json] [--fail-on widened|added|any]`:
//! two builds of a component side by side.
//!
//! OLD and NEW are `.wasm` files or component crate directories (built as
//! `airssys run` builds them). The report: the manifest's capabilities
//! widened, added, narrowed or removed (by subset between patterns,
//! [`airssys_contract::authority::diff_manifests`]), domains reached for
//! the first time, findings on the name and version, and every change of
//! the imports and exports through the engine of `airssys wit diff`
//! ([`airssys_contract::authority::diff_worlds`]). Exit codes: 0, or 1
//! when `--fail-on` names a change that is present; 2 invalid input.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use airssys_contract::authority::{InterfaceChange, ManifestDiff, diff_manifests, diff_worlds};
use airssys_contract::compat::Impact;
use airssys_contract::manifest::Manifest;
use airssys_contract::signature;
use serde::Serialize;

use super::Format;

/// The version of the JSON report.
const REPORT_FORMAT: u32 = 1;

/// Arguments of `airssys diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The old build: a `.wasm` or a component crate directory.
    old: PathBuf,
    /// The new build: a `.wasm` or a component crate directory.
    new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Exit 1 when such a change is present: `widened` (the component asks
    /// for more: a pattern widened or added), `added` (a pattern sharing
    /// nothing with the old ones), `any` (any change, imports and exports
    /// and findings included).
    #[arg(long, value_enum, value_name = "CHANGE")]
    fail_on: Option<FailOn>,
}

/// What `--fail-on` fails on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    /// Any gain of authority: a capability widened or added.
    Widened,
    /// A capability added (sharing nothing known with the old ones).
    Added,
    /// Any change.
    Any,
}

/// The report, as printed with `--format json`.
#[derive(Debug, Serialize)]
struct Report {
    format: u32,
    old: String,
    new: String,
    /// The manifests compared (a side without a manifest counts as one
    /// declaring nothing).
    manifest: ManifestDiff,
    /// Each build's signature (`airssys sign`): `[old, new]`, each `not
    /// signed`, `signed by <fingerprint>` or what does not verify.
    signatures: (String, String),
    /// Every change of the imports and exports.
    interfaces: Vec<InterfaceChange>,
    summary: Summary,
}

#[derive(Debug, Serialize)]
struct Summary {
    widened: usize,
    added: usize,
    narrowed: usize,
    removed: usize,
    new_domains: usize,
    findings: usize,
    interface_changes: usize,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let report = match diff(&args.old, &args.new) {
        Ok(report) => report,
        Err(code) => return code,
    };
    if let Err(message) = args.format.print(&report, |r| r.to_text()) {
        eprintln!("error: {message}");
        return 2;
    }
    let s = &report.summary;
    let failed = match args.fail_on {
        None => None,
        Some(FailOn::Widened) if s.widened + s.added > 0 => Some(format!(
            "the new build asks for more authority: {} widened, {} added (--fail-on widened)",
            s.widened, s.added
        )),
        Some(FailOn::Added) if s.added > 0 => Some(format!(
            "the new build asks for {} new capabilit{} (--fail-on added)",
            s.added,
            if s.added == 1 { "y" } else { "ies" }
        )),
        Some(FailOn::Any) if report.manifest.is_changed() || s.interface_changes > 0 => {
            Some("the builds differ (--fail-on any)".to_owned())
        }
        Some(_) => None,
    };
    match failed {
        Some(message) => {
            eprintln!("error: {message}");
            1
        }
        None => 0,
    }
}

fn diff(old: &Path, new: &Path) -> Result<Report, u8> {
    // Each is read as soon as it is built: two copies of one crate build
    // to the same file of a shared target directory.
    let read = |path: &Path| -> Result<(PathBuf, super::component::Decoded), u8> {
        let wasm = wasm_of(path)?;
        let decoded = super::component::read(&wasm).map_err(|e| {
            eprintln!("error: {e}");
            2
        })?;
        Ok((wasm, decoded))
    };
    let (old_wasm, o) = read(old)?;
    let (new_wasm, n) = read(new)?;
    let manifest_of = |d: &super::component::Decoded, path: &Path| match &d.manifest {
        Ok(Some(m)) => Ok(m.clone()),
        Ok(None) => Ok(Manifest {
            name: "(no manifest)".to_owned(),
            version: "-".to_owned(),
            requires: Vec::new(),
            optional: Vec::new(),
        }),
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            Err(2)
        }
    };
    let manifest = diff_manifests(&manifest_of(&o, &old_wasm)?, &manifest_of(&n, &new_wasm)?);
    let interfaces = diff_worlds(&o.resolve, o.world, &n.resolve, n.world);
    let c = &manifest.capabilities;
    let summary = Summary {
        widened: c.widened.len(),
        added: c.added.len(),
        narrowed: c.narrowed.len(),
        removed: c.removed.len(),
        new_domains: manifest.new_domains.len(),
        findings: manifest.findings.len(),
        interface_changes: interfaces.len(),
    };
    Ok(Report {
        format: REPORT_FORMAT,
        old: old_wasm.display().to_string(),
        new: new_wasm.display().to_string(),
        signatures: (signature_of(&o.bytes), signature_of(&n.bytes)),
        manifest,
        interfaces,
        summary,
    })
}

/// Who signed `bytes`, checked against the key it names (whether that key
/// is trusted is the policy's question: `signed_by`).
fn signature_of(bytes: &[u8]) -> String {
    match signature::read(bytes) {
        Ok(None) => "not signed".to_owned(),
        Ok(Some(sig)) => match signature::verify(bytes, &[sig.signer]) {
            Ok(signer) => format!("signed by {}", signer.fingerprint()),
            Err(e) => format!("does not verify: {e}"),
        },
        Err(e) => format!("does not verify: {e}"),
    }
}

/// The `.wasm` of `path`: itself, or the build of the crate directory.
fn wasm_of(path: &Path) -> Result<PathBuf, u8> {
    if path.is_dir() {
        super::run::build_crate(path)
    } else {
        Ok(path.to_path_buf())
    }
}

impl Report {
    fn to_text(&self) -> String {
        let mut out = format!("{} -> {}\n{}", self.old, self.new, self.manifest);
        let (old_sig, new_sig) = &self.signatures;
        if (old_sig.as_str(), new_sig.as_str()) != ("not signed", "not signed") {
            let _ = writeln!(out, "signatures:\n  old: {old_sig}\n  new: {new_sig}");
        }
        let v = |v: Impact| if v.is_breaking() { "BREAKS" } else { "ok" };
        if self.interfaces.is_empty() {
            out.push_str("imports and exports: unchanged\n");
        } else {
            out.push_str("imports and exports:\n");
            for i in &self.interfaces {
                let c = &i.change;
                let _ = writeln!(
                    out,
                    "  {} [{}] {}: {}\n      importers {}, exporters {}, bindings {}",
                    i.direction.as_str(),
                    c.rule,
                    c.location,
                    c.message,
                    v(c.importers),
                    v(c.exporters),
                    v(c.bindings),
                );
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "summary: {} widened, {} added, {} narrowed, {} removed, {} new domain(s), {} \
             finding(s), {} import/export change(s)",
            s.widened,
            s.added,
            s.narrowed,
            s.removed,
            s.new_domains,
            s.findings,
            s.interface_changes
        );
        out
    }
}
