//! Load-time checks, before wasmtime sees the component: its manifest, and
//! whether its `airssys:*` imports are served by the host's contract and
//! its imports of extension packages by the extensions' WIT.

use airssys_contract::compat::{check_import, check_world_imports};
use airssys_contract::contract::Contract;
use airssys_contract::manifest::Manifest;
use wit_component::DecodedWasm;

use crate::error::LoadError;
use crate::extension::Served;
use crate::policy::Policy;

/// Reads the manifest; `None` for an unannotated component the policy
/// admits.
///
/// # Errors
///
/// [`LoadError::Manifest`] for a corrupt section, [`LoadError::NoManifest`]
/// when it is missing and the policy does not admit unannotated
/// components.
pub(crate) fn manifest(bytes: &[u8], policy: &Policy) -> Result<Option<Manifest>, LoadError> {
    match Manifest::from_wasm(bytes)? {
        Some(manifest) => Ok(Some(manifest)),
        None if policy.allows_unannotated() => Ok(None),
        None => Err(LoadError::NoManifest),
    }
}

/// Compares every `airssys:*` interface the component imports with the
/// host's contract, and every import of a package an extension serves with
/// that extension's WIT: same semver track, host version not older, every
/// function present with the same type.
///
/// # Errors
///
/// [`LoadError::Invalid`] when the bytes do not decode as a component;
/// [`LoadError::Incompatible`] listing every mismatch.
pub(crate) fn check_imports(
    bytes: &[u8],
    component: &str,
    extensions: &[Served],
) -> Result<(), LoadError> {
    let decoded = wit_component::decode(bytes).map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
    let (resolve, world) = match decoded {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => {
            return Err(LoadError::Invalid(
                "this is a WIT package, not a component; build the component (e.g. `cargo \
                 build --target wasm32-wasip2`) and load the resulting .wasm"
                    .to_owned(),
            ));
        }
    };
    let host = Contract::embedded().resolve();
    let mut mismatches = check_world_imports(&resolve, world, host);
    for item in resolve.worlds[world].imports.values() {
        let wit_parser::WorldItem::Interface { id, .. } = item else {
            continue;
        };
        let Some(package) = resolve.interfaces[*id].package else {
            continue;
        };
        let name = &resolve.packages[package].name;
        if let Some(served) = extensions
            .iter()
            .find(|s| s.serves(&name.namespace, &name.name))
        {
            mismatches.extend(check_import(&resolve, *id, served.resolve()));
        }
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    let provided: Vec<String> = host
        .packages
        .iter()
        .map(|(_, p)| p.name.to_string())
        .chain(extensions.iter().map(Served::name))
        .collect();
    let list: Vec<String> = mismatches.iter().map(|m| format!("  - {m}")).collect();
    let message = format!(
        "component `{component}` cannot run on this host: its imports do not match the host's \
         contract ({}); {} mismatch(es):\n{}\nrebuild the component against the contract this host \
         provides (the `wit/` of the same airssys release), or run it on a host that provides \
         these interfaces",
        provided.join(", "),
        mismatches.len(),
        list.join("\n"),
    );
    Err(LoadError::Incompatible {
        component: component.to_owned(),
        mismatches,
        message,
    })
}
