//! `#[airssys::component(...)]`: options → checks → bindings → expansion.
//!
//! Every stage reports into the one error sink ([`crate::errors`]); the user's item is
//! emitted even when there are errors, with as much of the expansion as
//! the valid parts allow, so one mistake does not cascade.

mod args;
mod bindings;
mod check;
mod expand;
mod raw_items;
mod wit;

use std::path::{Path, PathBuf};

use airssys_contract::manifest::Manifest;
use darling::Error;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::LitStr;

use crate::errors::Errors;
use crate::{contract_source, timing};

use args::Args;
use check::{Declared, List};

/// Expands the attribute; never panics on user input.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: syn::Item = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(e) => {
            let e = e.into_compile_error();
            return quote!(#item #e);
        }
    };
    let ident = match &parsed {
        syn::Item::Struct(s) if s.generics.params.is_empty() => Some(s.ident.clone()),
        syn::Item::Enum(e) if e.generics.params.is_empty() => Some(e.ident.clone()),
        _ => None,
    };
    let Some(ident) = ident else {
        let e = syn::Error::new_spanned(
            &parsed,
            "`#[airssys::component]` goes on a struct or enum without generic parameters \
             (the component type, e.g. `struct Counter;`)",
        )
        .into_compile_error();
        return quote!(#parsed #e);
    };

    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let mut errors = Errors::default();
    let component = analyse(args, &manifest_dir, &mut errors);
    // With errors the export glue is left out: the build fails anyway, and
    // its trait bounds would add noise ("does not implement the export").
    let with_exports = errors.is_empty();
    let expansion = component
        .map(|c| {
            timing::stage("component: expand", || {
                expand::expand(&ident, &c, with_exports)
            })
        })
        .unwrap_or_default();
    let errors = errors.into_compile_errors();
    quote!(#parsed #expansion #errors)
}

/// Everything the expansion needs, after the checks.
pub(crate) struct Component {
    /// The manifest, as encoded into the custom section.
    pub(crate) manifest: Manifest,
    /// Declared capabilities (valid ones only).
    pub(crate) declared: Vec<Declared>,
    /// The world's bindings.
    pub(crate) bindings: bindings::Bindings,
    /// Qualified world name.
    pub(crate) world: String,
    /// Files read at compile time (WIT, Component.toml).
    pub(crate) tracked: Vec<PathBuf>,
}

/// Runs every check; `None` when no expansion is possible (the WIT or
/// world could not be loaded).
fn analyse(tokens: TokenStream, manifest_dir: &Path, errors: &mut Errors) -> Option<Component> {
    let args = Args::parse(tokens, errors);
    let mut tracked = Vec::new();

    let (declared, from_file) = declared(&args, manifest_dir, &mut tracked, errors);
    check::manifest_limits(&declared, errors);
    check::duplicates(&declared, errors);
    check::required_and_optional(&declared, errors);

    let contract = timing::stage("component: load contract", || {
        contract_source::load(args.wit.as_ref().map(|t| &t.0), manifest_dir)
    });
    let contract = match contract {
        Ok(contract) => contract,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    tracked.extend_from_slice(contract.tracked());
    let (id, name) = wit::select(&contract, args.world.as_ref().map(|t| &t.0), errors)?;
    let world = wit::World { contract, id, name };
    let usage = world
        .contract
        .import_usage(world.contract.resolve(), world.id);
    check::usable(&declared, &usage, &world.name, errors);

    let manifest = manifest(&args, from_file, &declared, errors);
    let bindings = match timing::stage("component: bindings", || bindings::generate(&world)) {
        Ok(b) => b,
        Err(message) => {
            errors.push(Error::custom(message).with_span(&Span::call_site()));
            return None;
        }
    };
    Some(Component {
        manifest,
        declared,
        bindings,
        world: world.name,
        tracked,
    })
}

/// The declared capabilities: from `requires`/`optional`, or from the
/// `manifest = ".."` file (then also its name and version).
fn declared(
    args: &Args,
    manifest_dir: &Path,
    tracked: &mut Vec<PathBuf>,
    errors: &mut Errors,
) -> (Vec<Declared>, Option<Manifest>) {
    let lits = |l: &Option<args::CapList>| l.as_ref().map(|l| l.0.clone()).unwrap_or_default();
    let Some(file) = &args.manifest else {
        let mut declared = check::parse_literals(&lits(&args.requires), List::Requires, errors);
        declared.extend(check::parse_literals(
            &lits(&args.optional),
            List::Optional,
            errors,
        ));
        return (declared, None);
    };
    if let Some(span) = args.capability_lists_span() {
        errors.push(
            Error::custom(format!(
                "capabilities come from `manifest = \"{}\"`; remove `requires`/`optional` \
                 from the attribute or the `manifest` key",
                file.0.value()
            ))
            .with_span(&span),
        );
    }
    let path = manifest_dir.join(file.0.value());
    // Canonical paths keep messages free of `..` (and stable in tests).
    let path = crate::contract_source::canonical(&path);
    match read_manifest_file(&file.0, &path) {
        Ok(m) => {
            tracked.push(path.clone());
            let at = |capability: &airssys_contract::capability::Capability, list| Declared {
                capability: capability.clone(),
                list,
                span: file.0.span(),
                origin: Some(file.0.value()),
            };
            let mut declared: Vec<Declared> =
                m.requires.iter().map(|c| at(c, List::Requires)).collect();
            declared.extend(m.optional.iter().map(|c| at(c, List::Optional)));
            (declared, Some(m))
        }
        Err(message) => {
            errors.push(Error::custom(message).with_span(&file.0));
            (Vec::new(), None)
        }
    }
}

/// Reads `Component.toml` (the `manifest-file` feature: the TOML reader
/// of `airssys-contract`).
#[cfg(feature = "manifest-file")]
fn read_manifest_file(lit: &LitStr, path: &Path) -> Result<Manifest, String> {
    Manifest::from_toml_file(path).map_err(|e| manifest_message(lit, path, &e))
}

/// Without the `manifest-file` feature the macros compile no TOML reader
/// (a component's build stays light): `manifest = ".."` says how to turn
/// it on.
#[cfg(not(feature = "manifest-file"))]
fn read_manifest_file(lit: &LitStr, _path: &Path) -> Result<Manifest, String> {
    Err(manifest_file_off(lit))
}

/// The error for `manifest = ".."` when the `manifest-file` feature is off.
#[cfg_attr(feature = "manifest-file", allow(dead_code))]
fn manifest_file_off(lit: &LitStr) -> String {
    format!(
        "`manifest = \"{}\"` needs the `manifest-file` feature of airssys (the \
         Component.toml reader, off by default to keep component builds light): \
         `airssys = {{ version = \"..\", features = [\"manifest-file\"] }}` in Cargo.toml, \
         or declare the capabilities with `requires = [..]`/`optional = [..]` instead",
        lit.value()
    )
}

#[cfg(feature = "manifest-file")]
fn manifest_message(
    lit: &LitStr,
    path: &Path,
    e: &airssys_contract::manifest::ManifestError,
) -> String {
    match e {
        airssys_contract::manifest::ManifestError::Io { .. } => format!(
            "cannot read manifest `{}` (resolved to `{}`); `manifest = \"..\"` is relative \
             to the crate's Cargo.toml",
            lit.value(),
            path.display()
        ),
        other => format!("invalid manifest: {other}"),
    }
}

/// The manifest to embed; name and version checked like `Component.toml`'s.
fn manifest(
    args: &Args,
    from_file: Option<Manifest>,
    declared: &[Declared],
    errors: &mut Errors,
) -> Manifest {
    let pick = |list| {
        declared
            .iter()
            .filter(|d| d.list == list)
            .map(|d| d.capability.clone())
            .collect::<Vec<_>>()
    };
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let (default_name, default_version) = match &from_file {
        Some(m) => (m.name.clone(), m.version.clone()),
        None => (env("CARGO_PKG_NAME"), env("CARGO_PKG_VERSION")),
    };
    let name = match &args.name {
        Some(t) => t.0.value(),
        // The bad value is reported; checking the crate name instead
        // would add a second error for the same mistake. Nothing is
        // emitted with errors present, so the stand-in never ships.
        None if args.name_refused => "refused".to_owned(),
        None => default_name,
    };
    let version = args
        .version
        .as_ref()
        .map_or(default_version, |t| t.0.value());
    let mut manifest = Manifest {
        name,
        version,
        requires: Vec::new(),
        optional: Vec::new(),
    };
    // Name and version alone (duplicates were reported by the checks), each
    // at its own literal, or at the call when it comes from Cargo.toml.
    let checks = [
        (Manifest::validate_name(&manifest.name), &args.name),
        (Manifest::validate_version(&manifest.version), &args.version),
    ];
    if let Some((Err(e), written)) = checks.into_iter().find(|(r, _)| r.is_err()) {
        let span = written.as_ref().map(|t| t.0.span());
        let hint = if span.is_none() {
            " (taken from Cargo.toml; set `name = \"..\"` / `version = \"..\"` in the attribute)"
        } else {
            ""
        };
        errors.push(
            Error::custom(format!("{e}{hint}")).with_span(&span.unwrap_or_else(Span::call_site)),
        );
    }
    manifest.requires = dedup(pick(List::Requires));
    manifest.optional = dedup(pick(List::Optional))
        .into_iter()
        .filter(|c| !manifest.requires.contains(c))
        .collect();
    manifest
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_file_off_names_the_feature_and_the_alternative() {
        let lit = LitStr::new("Component.toml", Span::call_site());
        let message = manifest_file_off(&lit);
        assert!(
            message.contains("`manifest = \"Component.toml\"`"),
            "{message}"
        );
        assert!(
            message.contains("features = [\"manifest-file\"]"),
            "{message}"
        );
        assert!(message.contains("requires = [..]"), "{message}");
    }
}
