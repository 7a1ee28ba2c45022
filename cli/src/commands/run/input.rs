//! The components given on the command line (`run`, `serve`, `diff`): a
//! `.wasm` file, or a crate directory built with cargo for
//! `wasm32-wasip2` and its `.wasm` found through `cargo metadata`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airssys_contract::manifest::Manifest;
use airssys_runtime::UNANNOTATED_NAME;

use super::{Exit, fail};

/// A component given on the command line, read but not loaded yet.
pub(in crate::commands) struct Input {
    /// The `.wasm` file (built from the crate directory given).
    pub(in crate::commands) wasm: PathBuf,
    /// Its bytes.
    pub(in crate::commands) bytes: Vec<u8>,
    /// Its manifest name.
    pub(in crate::commands) name: String,
}

/// Builds (crate directories) and reads the components at `paths`,
/// refusing two with one name.
pub(in crate::commands) fn read_components(paths: &[PathBuf]) -> Result<Vec<Input>, Exit> {
    let mut inputs: Vec<Input> = Vec::new();
    for path in paths {
        let input = read_component(path)?;
        if let Some(first) = inputs.iter().find(|i| i.name == input.name) {
            return Err(fail(
                2,
                format_args!(
                    "{} and {} are both named `{}`; components run together need different \
                     names (the crate name, or `name` in `#[airssys::component(..)]`)",
                    first.wasm.display(),
                    input.wasm.display(),
                    input.name
                ),
            ));
        }
        inputs.push(input);
    }
    Ok(inputs)
}

/// Builds (a crate directory) and reads the component at `path`.
fn read_component(path: &Path) -> Result<Input, Exit> {
    let wasm = if path.is_dir() {
        build_crate(path)?
    } else if path.is_file() {
        path.to_path_buf()
    } else {
        return Err(fail(
            2,
            format_args!(
                "{} is neither a component file nor a crate directory; pass the `.wasm` \
                 or the directory holding the crate's Cargo.toml",
                path.display()
            ),
        ));
    };
    let bytes = std::fs::read(&wasm).map_err(|e| {
        fail(
            2,
            format_args!("cannot read component {}: {e}", wasm.display()),
        )
    })?;
    crate::commands::inspect::check_is_component(&wasm.display().to_string(), &bytes)
        .map_err(|why| fail(2, why))?;
    let manifest = Manifest::from_wasm(&bytes).map_err(|e| {
        fail(
            2,
            format_args!("{} is not a readable component: {e}", wasm.display()),
        )
    })?;
    let name = manifest
        .as_ref()
        .map_or(UNANNOTATED_NAME, |m| m.name.as_str())
        .to_owned();
    Ok(Input { wasm, bytes, name })
}

/// Builds the crate in `dir` for `wasm32-wasip2` and returns its `.wasm`
/// (also used by `airssys diff`).
pub(in crate::commands) fn build_crate(dir: &Path) -> Result<PathBuf, Exit> {
    let manifest = dir.join("Cargo.toml");
    let manifest = std::fs::canonicalize(&manifest).unwrap_or(manifest);
    if !manifest.is_file() {
        return Err(fail(
            2,
            format_args!(
                "{} has no Cargo.toml; pass a component crate directory or a `.wasm` file",
                dir.display()
            ),
        ));
    }
    ensure_target(dir)?;
    eprintln!(
        "airssys: building {} (cargo build --target wasm32-wasip2 --release)",
        dir.display()
    );
    let status = Command::new("cargo")
        .args(["build", "--target", "wasm32-wasip2", "--release"])
        .arg("--manifest-path")
        .arg(&manifest)
        .current_dir(dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| fail(2, format_args!("cannot run cargo: {e}; is Rust installed?")))?;
    if !status.success() {
        return Err(fail(
            2,
            format_args!(
                "building {} failed (cargo's errors are above); fix them and run again",
                dir.display()
            ),
        ));
    }
    let wasm = locate_wasm(&manifest)?;
    eprintln!("airssys: built {}", wasm.display());
    Ok(wasm)
}

/// Installs the `wasm32-wasip2` target with rustup when it is missing.
fn ensure_target(dir: &Path) -> Result<(), Exit> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output();
    let Ok(installed) = installed else {
        // No rustup: let cargo report a missing target itself.
        return Ok(());
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == "wasm32-wasip2")
    {
        return Ok(());
    }
    eprintln!("airssys: installing the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .current_dir(dir)
        .status()
        .map_err(|e| fail(2, format_args!("cannot run rustup: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(
            2,
            "`rustup target add wasm32-wasip2` failed; run it yourself and try again",
        ))
    }
}

/// The `.wasm` of the crate's `cdylib` in cargo's target directory.
fn locate_wasm(manifest: &Path) -> Result<PathBuf, Exit> {
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(2, format_args!("cannot run cargo metadata: {e}")))?;
    if !output.status.success() {
        return Err(fail(
            2,
            format_args!("`cargo metadata` failed for {}", manifest.display()),
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| fail(2, format_args!("cannot read cargo metadata: {e}")))?;
    let target_dir = metadata["target_directory"].as_str().map(PathBuf::from);
    let canonical = std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    let lib = metadata["packages"].as_array().and_then(|packages| {
        packages
            .iter()
            .filter(|p| {
                p["manifest_path"]
                    .as_str()
                    .is_some_and(|m| Path::new(m) == canonical)
                    || packages.len() == 1
            })
            .flat_map(|p| p["targets"].as_array().into_iter().flatten())
            .find(|t| {
                t["crate_types"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
            })
            .and_then(|t| t["name"].as_str())
            .map(|n| n.replace('-', "_"))
    });
    let (Some(target_dir), Some(lib)) = (target_dir, lib) else {
        return Err(fail(
            2,
            format_args!(
                "{} has no `cdylib` library, so it builds no component; add \
                 `[lib] crate-type = [\"cdylib\"]`",
                manifest.display()
            ),
        ));
    };
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join(format!("{lib}.wasm"));
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(fail(
            2,
            format_args!("cargo built the crate but {} is missing", wasm.display()),
        ))
    }
}
