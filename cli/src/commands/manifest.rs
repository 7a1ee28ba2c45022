//! `airssys manifest attach|show|check`: the `airssys:manifest` section of
//! components built by any toolchain (componentize-py, componentize-js,
//! wit-bindgen-c, ...), which cannot emit it themselves.
//!
//! - `attach COMPONENT --manifest Component.toml -o OUT [--replace]`:
//!   checks the manifest as `#[airssys::component(manifest = "..")]` does
//!   (grammar, names, limits, duplicates, and that the functions the
//!   component imports can use each capability), then writes OUT with the
//!   section at the component's top level. A component that already has a
//!   manifest is refused unless `--replace` is given.
//! - `show COMPONENT [--format text|json]`: the manifest, as a
//!   `Component.toml`.
//! - `check COMPONENT [--manifest Component.toml]`: the same checks as
//!   `attach`, of the given file or of the manifest the component carries,
//!   plus least privilege: imported functions no declared capability
//!   covers (every call of them will be denied).
//!
//! The section's binary format is documented in `docs/manifest-format.md`.
//! Exit codes: 0 done (warnings may be printed); 1 the manifest is invalid
//! (TOML errors with file:line:column), lists a capability no imported
//! function can use, is missing (`show`), or is already attached (without
//! `--replace`); 2 a file cannot be read or written, or is not a component.

use std::path::{Path, PathBuf};

use airssys_contract::manifest::{
    FORMAT_VERSION, MANIFEST_SECTION, Manifest, ManifestError, Placement,
};
use serde::Serialize;

use super::Format;
use super::component::{self, Decoded, FixStyle};

/// `airssys manifest ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Check a Component.toml against a component's imports and attach it
    /// as the component's `airssys:manifest` section.
    Attach(AttachArgs),
    /// Print the manifest a component carries, as a Component.toml.
    Show(ShowArgs),
    /// Check a component's manifest (or a Component.toml for it): validity,
    /// capabilities no imported function can use, imported functions no
    /// capability covers.
    Check(CheckArgs),
}

/// Arguments of `airssys manifest attach`.
#[derive(Debug, clap::Args)]
pub(crate) struct AttachArgs {
    /// The component (`.wasm`).
    component: PathBuf,
    /// The manifest to attach.
    #[arg(long, value_name = "Component.toml")]
    manifest: PathBuf,
    /// Where to write the component with its manifest (may be COMPONENT
    /// itself).
    #[arg(short, long, value_name = "OUT.wasm")]
    out: PathBuf,
    /// Replace a manifest the component already carries.
    #[arg(long)]
    replace: bool,
}

/// Arguments of `airssys manifest show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The component (`.wasm`).
    component: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Arguments of `airssys manifest check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The component (`.wasm`).
    component: PathBuf,
    /// Check this Component.toml for the component instead of the manifest
    /// it carries.
    #[arg(long, value_name = "Component.toml")]
    manifest: Option<PathBuf>,
}

/// Runs `airssys manifest ...`; returns the exit code.
pub(crate) fn run(command: Command) -> u8 {
    let result = match command {
        Command::Attach(args) => attach(&args),
        Command::Show(args) => show(&args),
        Command::Check(args) => check(&args),
    };
    result.unwrap_or_else(|(code, message)| {
        eprintln!("error: {message}");
        code
    })
}

/// An exit code and its message.
type Failure = (u8, String);

fn attach(args: &AttachArgs) -> Result<u8, Failure> {
    let decoded = component::read(&args.component).map_err(|m| (2, m))?;
    let (manifest, text) = read_toml(&args.manifest)?;
    let findings = checked(&decoded, &manifest, &args.manifest, &text)?;
    let out = manifest
        .attach(&decoded.bytes, args.replace)
        .map_err(|e| match e {
            ManifestError::AlreadyAttached { .. } => (
                1,
                format!(
                    "{}: {e} (or attach it to the file the toolchain built)",
                    args.component.display()
                ),
            ),
            e => (2, format!("{}: {e}", args.component.display())),
        })?;
    write_atomically(&args.out, &out)?;
    println!(
        "attached manifest `{}` {} ({} required, {} optional) to {}",
        manifest.name,
        manifest.version,
        manifest.requires.len(),
        manifest.optional.len(),
        args.out.display()
    );
    for line in findings {
        println!("warning: {line}");
    }
    Ok(0)
}

fn show(args: &ShowArgs) -> Result<u8, Failure> {
    let decoded = component::read(&args.component).map_err(|m| (2, m))?;
    let shown = args.component.display();
    let manifest = match decoded.manifest {
        Ok(Some(manifest)) => manifest,
        Ok(None) => {
            return Err((
                1,
                format!(
                    "{shown} carries no airssys manifest (no `{MANIFEST_SECTION}` section); {}",
                    how_to_add(&decoded)
                ),
            ));
        }
        Err(e) => return Err((1, format!("{shown}: {e}"))),
    };
    let placement = if decoded.placements.contains(&Placement::TopLevel) {
        "top level"
    } else {
        "nested core module"
    };
    match args.format {
        Format::Text => {
            println!(
                "# the `{MANIFEST_SECTION}` section of {shown} (format {FORMAT_VERSION}, {placement})"
            );
            print!("{manifest}");
        }
        Format::Json => {
            #[derive(Serialize)]
            struct Shown<'a> {
                name: &'a str,
                version: &'a str,
                requires: Vec<String>,
                optional: Vec<String>,
                placement: &'a str,
                format: u8,
            }
            let texts = |caps: &[airssys_contract::capability::Capability]| {
                caps.iter().map(ToString::to_string).collect()
            };
            let json = serde_json::to_string_pretty(&Shown {
                name: &manifest.name,
                version: &manifest.version,
                requires: texts(&manifest.requires),
                optional: texts(&manifest.optional),
                placement,
                format: FORMAT_VERSION,
            })
            .map_err(|e| (2, format!("cannot write the JSON: {e}")))?;
            println!("{json}");
        }
    }
    Ok(0)
}

fn check(args: &CheckArgs) -> Result<u8, Failure> {
    let decoded = component::read(&args.component).map_err(|m| (2, m))?;
    let shown = args.component.display();
    let (manifest, findings) = match &args.manifest {
        Some(path) => {
            let (manifest, text) = read_toml(path)?;
            let findings = checked(&decoded, &manifest, path, &text)?;
            (manifest, findings)
        }
        None => {
            let manifest = match &decoded.manifest {
                Ok(Some(manifest)) => manifest.clone(),
                Ok(None) => {
                    return Err((
                        1,
                        format!(
                            "{shown} carries no airssys manifest, so the host grants it nothing \
                             (and refuses it unless the policy sets `allow_unannotated`); {}",
                            how_to_add(&decoded)
                        ),
                    ));
                }
                Err(e) => return Err((1, format!("{shown}: {e}"))),
            };
            let privilege = component::privilege(&decoded, &manifest, "");
            if !privilege.unusable.is_empty() {
                let errors: Vec<String> = privilege
                    .unusable
                    .iter()
                    .map(|(_, m)| format!("error: {shown}: {m}"))
                    .collect();
                eprintln!("{}", errors.join("\n"));
                return Ok(1);
            }
            (manifest, privilege.lines(decoded.fix_style()))
        }
    };
    println!(
        "manifest `{}` {} of {shown}: valid ({} required, {} optional); every declared \
         capability is usable by a function the component imports",
        manifest.name,
        manifest.version,
        manifest.requires.len(),
        manifest.optional.len(),
    );
    for line in findings {
        println!("warning: {line}");
    }
    Ok(0)
}

/// A Component.toml and its text.
fn read_toml(path: &Path) -> Result<(Manifest, String), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| (2, format!("cannot read {}: {e}", path.display())))?;
    // The same reader as `#[airssys::component(manifest = "..")]`: the
    // same rules, file:line:column on every error.
    let manifest = Manifest::from_toml_file(path).map_err(|e| match e {
        ManifestError::Io { .. } => (2, e.to_string()),
        e => (1, format!("invalid manifest: {e}")),
    })?;
    Ok((manifest, text))
}

/// Refuses (exit 1) a manifest with a capability no imported function can
/// use, each at its file:line:column in the macro's words; returns the
/// warnings (imported functions no capability covers).
fn checked(
    decoded: &Decoded,
    manifest: &Manifest,
    path: &Path,
    text: &str,
) -> Result<Vec<String>, Failure> {
    let origin = format!(
        " (from {})",
        path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned()
        )
    );
    let privilege = component::privilege(decoded, manifest, &origin);
    if !privilege.unusable.is_empty() {
        let errors: Vec<String> = privilege
            .unusable
            .iter()
            .map(|(capability, message)| {
                let at = Manifest::locate_in_toml(text, capability)
                    .map(|(line, column)| format!("{}:{line}:{column}", path.display()))
                    .unwrap_or_else(|| path.display().to_string());
                format!("{at}: {message}")
            })
            .collect();
        let n = errors.len();
        let s = if n == 1 { "y" } else { "ies" };
        return Err((
            1,
            format!(
                "{}\nerror: the manifest declares {n} capabilit{s} that {} cannot use; nothing \
                 was written",
                errors.join("\nerror: "),
                decoded_name(manifest)
            ),
        ));
    }
    Ok(privilege.lines(FixStyle::Toml))
}

fn decoded_name(manifest: &Manifest) -> String {
    format!("component `{}`", manifest.name)
}

/// How to give `decoded` a manifest, in its language.
pub(crate) fn how_to_add(decoded: &Decoded) -> String {
    match decoded.fix_style() {
        FixStyle::Macro => "declare its capabilities with `#[airssys::component(requires = \
                            [...])]` (or `manifest = \"Component.toml\"`) and rebuild"
            .to_owned(),
        FixStyle::Toml => format!(
            "write a Component.toml ([component] name, version; [capabilities] requires, \
             optional) and attach it: `airssys manifest attach COMPONENT.wasm --manifest \
             Component.toml -o COMPONENT.wasm`{}",
            decoded
                .language()
                .map(|l| format!(" (a {l} component carries no Rust attributes)"))
                .unwrap_or_default()
        ),
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, so a
/// failed write never leaves half a component (and OUT may be the input).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| (2, format!("cannot write {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut file, bytes).map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
