//! Load-time checks, before wasmtime sees the component: its manifest, its
//! identity (a `sha256` pin, one component per name), and whether its
//! `airssys:*` imports are served by the host's contract and its imports
//! of extension packages by the extensions' WIT.

use std::collections::HashMap;

use airssys_contract::compat::{check_import, check_world_imports};
use airssys_contract::contract::Contract;
use airssys_contract::manifest::Manifest;
use wit_component::DecodedWasm;

use crate::error::LoadError;
use crate::extension::Served;
use crate::identity::ComponentDigest;
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

/// The `sha256` pin: a component claiming a name the policy pins must be
/// the pinned file.
///
/// # Errors
///
/// [`LoadError::DigestMismatch`] naming the name, both digests and where
/// the pin is written.
pub(crate) fn check_pin(
    name: &str,
    digest: &ComponentDigest,
    policy: &Policy,
) -> Result<(), LoadError> {
    match policy.pin_for(name) {
        Some(pin) if pin.digest != *digest => Err(LoadError::DigestMismatch {
            component: name.to_owned(),
            expected: pin.digest,
            actual: *digest,
            policy_file: policy.source().map(ToOwned::to_owned),
            line: pin.line,
        }),
        _ => Ok(()),
    }
}

/// The names in use: how many `LoadedComponent`s of each are alive (the
/// runtime's count, kept by loading and unloading) and the digest the
/// name was last claimed with. A digest is meaningful only while its
/// name's count is above zero; a stale one is overwritten by the next
/// claim.
pub(crate) struct Names<'a> {
    /// Alive `LoadedComponent`s per name.
    pub(crate) counts: &'a mut HashMap<String, usize>,
    /// The digest each name was last claimed with.
    pub(crate) digests: &'a mut HashMap<String, ComponentDigest>,
}

impl Names<'_> {
    /// One component per name: `name` is free, or held by the same file.
    ///
    /// # Errors
    ///
    /// [`LoadError::DuplicateName`] naming both digests.
    pub(crate) fn check(&self, name: &str, digest: &ComponentDigest) -> Result<(), LoadError> {
        let alive = self.counts.get(name).is_some_and(|n| *n > 0);
        match self.digests.get(name) {
            Some(loaded) if alive && loaded != digest => Err(LoadError::DuplicateName {
                component: name.to_owned(),
                loaded: *loaded,
                offered: *digest,
            }),
            _ => Ok(()),
        }
    }

    /// Checks as [`Names::check`] and, when free, counts one more
    /// `LoadedComponent` of `name` under `digest`; both maps are held
    /// locked by the caller, so two loads cannot both claim a free name.
    ///
    /// # Errors
    ///
    /// As [`Names::check`].
    pub(crate) fn claim(&mut self, name: &str, digest: ComponentDigest) -> Result<(), LoadError> {
        self.check(name, &digest)?;
        self.digests.insert(name.to_owned(), digest);
        *self.counts.entry(name.to_owned()).or_default() += 1;
        Ok(())
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
        // Everything else must be linked too: named before compiling.
        let unlinked = crate::linked::unlinked_imports(&resolve, world, |name| {
            extensions
                .iter()
                .any(|s| s.serves(&name.namespace, &name.name))
        });
        if unlinked.is_empty() {
            return Ok(());
        }
        let mut provided: Vec<String> = host
            .packages
            .iter()
            .map(|(_, p)| p.name.to_string())
            .collect();
        provided.sort();
        let extensions: Vec<String> = extensions.iter().map(Served::name).collect();
        let extensions = if extensions.is_empty() {
            String::new()
        } else {
            format!(", its own extensions ({})", extensions.join(", "))
        };
        return Err(LoadError::Unlinkable {
            component: component.to_owned(),
            message: format!(
                "component `{component}` imports something this host does not provide: {}; this \
                 host provides the airssys contract ({}){extensions} and WASI 0.2 (deny-all): {}",
                crate::linked::describe(&unlinked),
                provided.join(", "),
                crate::linked::wasi_packages().join(", "),
            ),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_per_name_while_loaded() {
        let (mut counts, mut digests) = (HashMap::new(), HashMap::new());
        let (a, b) = (ComponentDigest::of(b"a"), ComponentDigest::of(b"b"));
        let mut names = Names {
            counts: &mut counts,
            digests: &mut digests,
        };
        names.claim("billing", a).expect("free");
        names.claim("billing", a).expect("the same file again");
        let err = names.claim("billing", b).expect_err("another file");
        assert!(
            matches!(
                &err,
                LoadError::DuplicateName { component, loaded, offered }
                    if component == "billing" && *loaded == a && *offered == b
            ),
            "{err:?}"
        );
        names.claim("other", b).expect("another name");
        // Unloaded (the runtime removes the count): the name is free again.
        names.counts.remove("billing");
        names.claim("billing", b).expect("free after unloading");
        assert_eq!(names.counts.get("billing"), Some(&1));
    }
}
