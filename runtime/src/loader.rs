//! Load-time checks, before wasmtime sees the component: its manifest, its
//! identity (a `sha256` pin, one component per name), and whether its
//! `airssys:*` imports are served by the host's contract and its imports
//! of extension packages by the extensions' WIT.

use std::collections::HashMap;
use std::sync::Arc;

use airssys_contract::compat::{check_import, check_world_imports};
use airssys_contract::manifest::Manifest;
use airssys_contract::model::Contract;
use wit_component::DecodedWasm;

use crate::error::LoadError;
use crate::extension::Served;
use crate::identity::ComponentDigest;
use crate::policy::Policy;
use crate::sync::Notifier;

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

/// The `signed_by` rule: a component the policy requires to be signed
/// must carry a signature by a trusted key over its current code and
/// manifest.
///
/// # Errors
///
/// [`LoadError::Signature`] naming what does not verify and where the
/// rule is written.
pub(crate) fn check_signature(name: &str, bytes: &[u8], policy: &Policy) -> Result<(), LoadError> {
    let Some(rule) = policy.signers_for(name) else {
        return Ok(());
    };
    airssys_contract::signature::verify(bytes, &rule.keys)
        .map(|_| ())
        .map_err(|source| LoadError::Signature {
            component: name.to_owned(),
            source,
            policy_file: policy.source().map(ToOwned::to_owned),
            line: rule.line,
        })
}

/// What a component's signature is, independent of which keys a policy
/// trusts: kept with a loaded component so that a reloaded policy's
/// `signed_by` is checked without the component's bytes.
#[derive(Debug, Clone)]
pub(crate) enum SignatureState {
    /// No signature section.
    Unsigned,
    /// A signature by this key, over the code and manifest as loaded.
    Intact(airssys_contract::signature::PublicKey),
    /// A signature that does not hold whoever is trusted (malformed,
    /// forged, or the component changed after signing).
    Broken(airssys_contract::signature::SignatureError),
}

impl SignatureState {
    /// Reads and checks the signature of `bytes` against its own signer.
    pub(crate) fn of(bytes: &[u8]) -> SignatureState {
        use airssys_contract::signature::{read, verify};
        match read(bytes) {
            Ok(None) => SignatureState::Unsigned,
            Ok(Some(sig)) => match verify(bytes, &[sig.signer]) {
                Ok(key) => SignatureState::Intact(key),
                Err(e) => SignatureState::Broken(e),
            },
            Err(e) => SignatureState::Broken(e),
        }
    }
}

/// [`check_signature`] for a component already loaded, from the
/// [`SignatureState`] read when it was: a reloaded policy that asks for a
/// signature by a key that did not sign it refuses it the same way.
///
/// # Errors
///
/// [`LoadError::Signature`].
pub(crate) fn check_signature_state(
    name: &str,
    state: &SignatureState,
    policy: &Policy,
) -> Result<(), LoadError> {
    use airssys_contract::signature::SignatureError;
    let Some(rule) = policy.signers_for(name) else {
        return Ok(());
    };
    let outcome = match state {
        SignatureState::Unsigned => Err(SignatureError::Unsigned),
        SignatureState::Intact(key) if rule.keys.contains(key) => Ok(()),
        SignatureState::Intact(key) => Err(SignatureError::Untrusted {
            signer: key.fingerprint(),
            trusted: rule.keys.iter().map(|k| k.fingerprint()).collect(),
        }),
        SignatureState::Broken(e) => Err(e.clone()),
    };
    outcome.map_err(|source| LoadError::Signature {
        component: name.to_owned(),
        source,
        policy_file: policy.source().map(ToOwned::to_owned),
        line: rule.line,
    })
}

/// The names in use, each with how many `LoadedComponent`s of it are
/// alive, the digest it was claimed with, and its mailbox notifier (the
/// one the broker notifies of mail for it). A name is free again once its
/// last `LoadedComponent` is released.
#[derive(Debug, Default)]
pub(crate) struct Names {
    claims: HashMap<String, Claim>,
}

/// One name in use.
#[derive(Debug)]
struct Claim {
    /// Alive `LoadedComponent`s (at least 1).
    count: usize,
    digest: ComponentDigest,
    mailbox: Arc<Notifier>,
}

impl Names {
    /// One component per name: `name` is free, or held by the same file.
    ///
    /// # Errors
    ///
    /// [`LoadError::DuplicateName`] naming both digests.
    pub(crate) fn check(&self, name: &str, digest: &ComponentDigest) -> Result<(), LoadError> {
        match self.claims.get(name) {
            Some(claim) if claim.digest != *digest => Err(LoadError::DuplicateName {
                component: name.to_owned(),
                loaded: claim.digest,
                offered: *digest,
            }),
            _ => Ok(()),
        }
    }

    /// Checks as [`Names::check`] and counts one more `LoadedComponent`
    /// of `name`; returns the name's mailbox notifier (the same for every
    /// copy while the name is held). The caller holds the lock over
    /// `Names`, so two loads cannot both claim a free name.
    ///
    /// # Errors
    ///
    /// As [`Names::check`].
    pub(crate) fn claim(
        &mut self,
        name: &str,
        digest: ComponentDigest,
    ) -> Result<Arc<Notifier>, LoadError> {
        self.check(name, &digest)?;
        let claim = self.claims.entry(name.to_owned()).or_insert_with(|| Claim {
            count: 0,
            digest,
            mailbox: Arc::default(),
        });
        claim.count += 1;
        Ok(Arc::clone(&claim.mailbox))
    }

    /// One `LoadedComponent` of `name` is gone; `true` when it was the
    /// last (the name is free again).
    pub(crate) fn release(&mut self, name: &str) -> bool {
        match self.claims.get_mut(name) {
            Some(claim) if claim.count > 1 => {
                claim.count -= 1;
                false
            }
            _ => {
                self.claims.remove(name);
                true
            }
        }
    }
}

/// The deepest a component may nest components and core modules. Real
/// ones nest a few levels (a composition adds one or two per step);
/// validating deeper nesting costs time growing with the square of the
/// depth (4,000 levels: 1 s; a 2 MB file of 200,000 levels: hours of one
/// core), so it is refused before anything validates it.
pub(crate) const MAX_NESTING: usize = 100;

/// Refuses a binary nesting components and modules deeper than
/// [`MAX_NESTING`], in one pass over its section headers.
fn check_nesting(bytes: &[u8]) -> Result<(), LoadError> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(LoadError::Invalid {
                        message: format!(
                            "the component nests components and modules more than \
                             {MAX_NESTING} levels deep (the host's limit; real components nest \
                             a few): rebuild it with less nesting"
                        ),
                        source: None,
                    });
                }
            }
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            // Malformed: the decoder below says what is wrong.
            Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Ok(())
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
    check_nesting(bytes)?;
    let decoded = wit_component::decode(bytes).map_err(|e| LoadError::Invalid {
        message: format!("{e:#}"),
        source: Some(e.into()),
    })?;
    let (resolve, world) = match decoded {
        DecodedWasm::Component(resolve, world) => (resolve, world),
        DecodedWasm::WitPackage(..) => {
            return Err(LoadError::Invalid {
                message: "this is a WIT package, not a component; build the component (e.g. \
                          `cargo build --target wasm32-wasip2`) and load the resulting .wasm"
                    .to_owned(),
                source: None,
            });
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
            source: None,
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
        let (a, b) = (ComponentDigest::of(b"a"), ComponentDigest::of(b"b"));
        let mut names = Names::default();
        let first = names.claim("billing", a).expect("free");
        let again = names.claim("billing", a).expect("the same file again");
        assert!(Arc::ptr_eq(&first, &again), "one mailbox per name");
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
        // Released twice (both copies dropped): the name is free again.
        assert!(!names.release("billing"));
        assert!(names.release("billing"));
        let fresh = names.claim("billing", b).expect("free after unloading");
        assert!(!Arc::ptr_eq(&first, &fresh));
    }
}
