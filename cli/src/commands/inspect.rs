//! `airssys inspect <component.wasm> [--format text|json]`: a component's
//! manifest, its imports and exports with versions, and whether this host
//! can load it.
//!
//! The verdict compares every imported interface of an airssys package with
//! the contract embedded in this build (the load-time check of the runtime,
//! [`compat::check_world_imports`]). Exit codes: 0 compatible; 1
//! incompatible (each mismatch is listed), an invalid `airssys:manifest`
//! section, or none (the runtime refuses a component without a manifest
//! unless the `--policy` has `allow_unannotated = true`); 2 when the file (or the `--policy` file) cannot be read or is
//! not a component. With `--policy`, programs the component may run with
//! any arguments under that policy are reported. The JSON format is
//! documented in `docs/cli.md`.

use std::path::{Path, PathBuf};

use airssys_contract::compat::{self, Mismatch};
use airssys_contract::manifest::{MANIFEST_SECTION, Manifest};
use airssys_contract::model::Contract;
use serde::Serialize;
use wit_parser::{Resolve, WorldId, WorldItem, WorldKey};

/// The version of the JSON report; bumped when a field changes meaning or
/// disappears (new fields may be added without a bump).
pub(crate) const REPORT_FORMAT: u32 = 1;

use super::Format;

/// Arguments of `airssys inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The component (`.wasm`) to inspect.
    component: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// A host policy (TOML): report what the component's process rights
    /// under it amount to.
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// The report, as printed with `--format json`.
#[derive(Debug, Serialize)]
struct Report {
    format: u32,
    path: String,
    /// The decoded manifest; `null` when absent or invalid.
    manifest: Option<ManifestReport>,
    /// Why the manifest section could not be read; `null` otherwise.
    manifest_error: Option<String>,
    /// No manifest, and no `--policy` with `allow_unannotated = true`:
    /// the runtime refuses to load it (text output only).
    #[serde(skip)]
    unannotated_refused: bool,
    imports: Vec<Item>,
    exports: Vec<Item>,
    /// The packages of this host's contract, e.g. `airssys:core@1.0.0`,
    /// then the WASI packages it links (`wasi:io@0.2.12`, ...).
    host_packages: Vec<String>,
    compatible: bool,
    mismatches: Vec<MismatchReport>,
    /// With `--policy`: what the operator should know about the
    /// component's process rights under it (programs it may run with any
    /// arguments: full code execution); `null` without `--policy`.
    process_notices: Option<Vec<String>>,
    /// Least privilege: declared capabilities no imported function can use
    /// (`over-privileged: ..`), imported functions no declared capability
    /// covers (`never allowed: ..`, each followed by a `  fix: ..` line),
    /// or a note when the component imports a whole world; `null` without
    /// a manifest.
    least_privilege: Option<Vec<String>>,
    /// How to give the component a manifest, in its language.
    #[serde(skip)]
    no_manifest_fix: String,
}

#[derive(Debug, Serialize)]
struct ManifestReport {
    name: String,
    version: String,
    requires: Vec<String>,
    optional: Vec<String>,
}

/// One import or export of the component's world.
#[derive(Debug, Serialize)]
struct Item {
    /// `interface`, `function` or `type`.
    kind: &'static str,
    /// `airssys:core/storage@1.0.0`, or the bare name of a function/type.
    name: String,
    /// `airssys:core` for an interface of a package; `null` otherwise.
    package: Option<String>,
    /// The package version; `null` when unversioned or not an interface.
    version: Option<String>,
    /// Functions in the interface (1 for a function, 0 for a type).
    functions: usize,
    /// Whether the compatibility check covers it (an interface of a
    /// package this host's contract defines).
    checked: bool,
}

#[derive(Debug, Serialize)]
struct MismatchReport {
    rule: String,
    interface: String,
    message: String,
}

/// Runs the command and returns the exit code.
pub(crate) fn run(args: Args) -> u8 {
    let policy = match args
        .policy
        .as_deref()
        .map(airssys_runtime::Policy::from_toml_file)
    {
        None => None,
        Some(Ok(policy)) => Some(policy),
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let report = match inspect(
        &args.component,
        Contract::embedded().resolve(),
        policy.as_ref(),
    ) {
        Ok(report) => report,
        Err(message) => {
            eprintln!("error: {message}");
            return 2;
        }
    };
    if let Err(message) = args.format.print(&report, |r| r.to_text()) {
        eprintln!("error: {message}");
        return 2;
    }
    if report.compatible {
        0
    } else {
        let n = report.mismatches.len();
        if n > 0 {
            let s = if n == 1 { "" } else { "es" };
            eprintln!(
                "error: {} cannot be loaded by this host: {n} mismatch{s} with its contract",
                args.component.display()
            );
        } else if report.unannotated_refused {
            eprintln!(
                "error: {} cannot be loaded by this host: it has no airssys manifest",
                args.component.display()
            );
        } else {
            eprintln!(
                "error: {} cannot be loaded by this host: its manifest is invalid",
                args.component.display()
            );
        }
        1
    }
}

/// `Ok` when `bytes` is a component; otherwise one sentence naming
/// `shown` and what it is instead (a core module: how to make it a
/// component). `airssys run` gives the same answer.
pub(super) fn check_is_component(shown: &str, bytes: &[u8]) -> Result<(), String> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(());
    }
    Err(if wasmparser::Parser::is_core_wasm(bytes) {
        format!(
            "{shown} is a core WebAssembly module, not a component; build it for \
             `wasm32-wasip2` or wrap it with `wasm-tools component new`"
        )
    } else {
        format!("{shown} is not a WebAssembly component (it does not start with the wasm header)")
    })
}

/// Reads, decodes and checks the component at `path` against `host`.
///
/// # Errors
///
/// One sentence naming `path`: unreadable, not a component, undecodable.
fn inspect(
    path: &Path,
    host: &Resolve,
    policy: Option<&airssys_runtime::Policy>,
) -> Result<Report, String> {
    let decoded = super::component::read(path)?;
    let (resolve, world) = (&decoded.resolve, decoded.world);
    let (manifest, manifest_error) = match &decoded.manifest {
        Ok(manifest) => (manifest.clone(), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let least_privilege = manifest
        .as_ref()
        .map(|m| super::component::privilege(&decoded, m, "").lines(decoded.fix_style()));
    let no_manifest_fix = super::manifest::how_to_add(&decoded);
    let process_notices = policy.map(|p| process_notices(p, manifest.as_ref()));
    // The runtime refuses a component without a manifest unless the
    // policy has `allow_unannotated = true`.
    let unannotated_refused = manifest.is_none()
        && manifest_error.is_none()
        && !policy.is_some_and(airssys_runtime::Policy::allows_unannotated);
    // The contract's interfaces, then everything else this host must link
    // (WASI included): all known before anything is compiled.
    let mut mismatches: Vec<MismatchReport> = compat::check_world_imports(resolve, world, host)
        .into_iter()
        .map(MismatchReport::from)
        .collect();
    mismatches.extend(
        airssys_runtime::linked::unlinked_imports(resolve, world, |_| false)
            .into_iter()
            .map(MismatchReport::from),
    );
    let mut host_packages: Vec<String> = host
        .packages
        .iter()
        .map(|(_, p)| p.name.to_string())
        .collect();
    host_packages.sort();
    host_packages.extend(airssys_runtime::linked::wasi_packages().iter().cloned());
    Ok(Report {
        format: REPORT_FORMAT,
        path: path.display().to_string(),
        compatible: mismatches.is_empty() && manifest_error.is_none() && !unannotated_refused,
        unannotated_refused,
        manifest: manifest.as_ref().map(ManifestReport::new),
        manifest_error,
        imports: items(resolve, world, true),
        exports: items(resolve, world, false),
        host_packages,
        mismatches,
        process_notices,
        least_privilege,
        no_manifest_fix,
    })
}

/// What `policy` gives the component of `manifest` to run, as warnings
/// (none without a manifest: nothing is granted).
fn process_notices(policy: &airssys_runtime::Policy, manifest: Option<&Manifest>) -> Vec<String> {
    let Some(manifest) = manifest else {
        return Vec::new();
    };
    match policy.process_notices_for(manifest) {
        Ok(notices) => notices.iter().map(ToString::to_string).collect(),
        Err(refused) => vec![format!("the policy refuses the component: {refused}")],
    }
}

/// The world's imports (or exports), in the component's order.
fn items(resolve: &Resolve, world: WorldId, imports: bool) -> Vec<Item> {
    let world = &resolve.worlds[world];
    let list = if imports {
        &world.imports
    } else {
        &world.exports
    };
    list.iter()
        .map(|(key, item)| match item {
            WorldItem::Interface { id, .. } => {
                let iface = &resolve.interfaces[*id];
                let package = iface.package.map(|p| &resolve.packages[p].name);
                Item {
                    kind: "interface",
                    name: resolve.name_world_key(key),
                    package: package.map(|n| format!("{}:{}", n.namespace, n.name)),
                    version: package.and_then(|n| n.version.as_ref().map(ToString::to_string)),
                    functions: iface.functions.len(),
                    // Only imports are checked (the host calls exports):
                    // each named one against the contract or the WASI the
                    // host links.
                    checked: imports && iface.name.is_some(),
                }
            }
            WorldItem::Function(f) => Item {
                kind: "function",
                name: f.name.clone(),
                package: None,
                version: None,
                functions: 1,
                checked: false,
            },
            WorldItem::Type { .. } => Item {
                kind: "type",
                name: match key {
                    WorldKey::Name(name) => name.clone(),
                    WorldKey::Interface(_) => resolve.name_world_key(key),
                },
                package: None,
                version: None,
                functions: 0,
                checked: false,
            },
        })
        .collect()
}

impl ManifestReport {
    fn new(m: &Manifest) -> ManifestReport {
        let texts = |caps: &[airssys_contract::capability::Capability]| {
            caps.iter().map(ToString::to_string).collect()
        };
        ManifestReport {
            name: m.name.clone(),
            version: m.version.clone(),
            requires: texts(&m.requires),
            optional: texts(&m.optional),
        }
    }
}

impl From<Mismatch> for MismatchReport {
    fn from(m: Mismatch) -> MismatchReport {
        MismatchReport {
            rule: m.rule.to_string(),
            interface: m.interface,
            message: m.message,
        }
    }
}

impl Report {
    fn to_text(&self) -> String {
        let mut out = format!("component: {}\n", self.path);
        match (&self.manifest, &self.manifest_error) {
            (Some(m), _) => {
                out += &format!("manifest: {} {}\n", m.name, m.version);
                out += &format!("  requires: {}\n", list_or_none(&m.requires));
                out += &format!("  optional: {}\n", list_or_none(&m.optional));
            }
            (None, Some(e)) => out += &format!("manifest: invalid: {e}\n"),
            (None, None) => {
                out += &format!(
                    "manifest: no airssys manifest (no `{MANIFEST_SECTION}` section): the host \
                     grants it no capabilities; {}\n",
                    self.no_manifest_fix
                );
            }
        }
        if let Some(lines) = &self.least_privilege {
            if lines.is_empty() {
                out += "least privilege: every declared capability is usable by an imported \
                        function, and every imported function by a declared capability\n";
            } else {
                out += "least privilege:\n";
                for line in lines {
                    out += &format!("  {line}\n");
                }
            }
        }
        for (label, items) in [("imports", &self.imports), ("exports", &self.exports)] {
            out += &format!("{label} ({}):\n", items.len());
            let width = items.iter().map(|i| i.name.len()).max().unwrap_or(0);
            for item in items {
                let what = match item.kind {
                    "interface" => {
                        let s = if item.functions == 1 { "" } else { "s" };
                        format!("{} function{s}", item.functions)
                    }
                    other => other.to_owned(),
                };
                let note = if label == "imports" && !item.checked {
                    " (not an airssys interface; not checked)"
                } else {
                    ""
                };
                out += &format!("  {:width$}  {what}{note}\n", item.name);
            }
        }
        if let Some(notices) = &self.process_notices {
            if notices.is_empty() {
                out += "process: under the policy, no program runs with arbitrary arguments\n";
            }
            for notice in notices {
                out += &format!("process: warning: {notice}\n");
            }
        }
        let host = self.host_packages.join(", ");
        if self.mismatches.is_empty() {
            if self.compatible {
                out += &format!("verdict: compatible with this host ({host})\n");
            } else if self.unannotated_refused {
                out += &format!(
                    "verdict: imports compatible with this host ({host}), but the host refuses \
                     to load it: it has no airssys manifest (a policy with \
                     `allow_unannotated = true` loads it with no capabilities)\n"
                );
            } else {
                out += &format!(
                    "verdict: imports compatible with this host ({host}), but the manifest is invalid\n"
                );
            }
        } else {
            let n = self.mismatches.len();
            let s = if n == 1 { "" } else { "es" };
            out += &format!("verdict: incompatible with this host ({host}): {n} mismatch{s}\n");
            for m in &self.mismatches {
                out += &format!("  - {} [{}]\n", m.message, m.rule);
            }
        }
        out
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}
