//! `airssys run --observe NAME --audit FILE`: one component runs with
//! everything its manifest declares, for this run only, and its requests
//! are recorded for `airssys policy propose`.
//!
//! What it is given: each capability its manifest declares (required and
//! optional), as a grant of its `[components.<name>]` table added in code
//! for this run, beside the policy's own rules (its deny rules still win).
//! Held back: `net` capabilities that name addresses (an IP or a CIDR
//! block): the runtime treats a policy rule naming an address as the
//! operator's consent to reach private and special addresses, and that
//! consent is the operator's to give, not the manifest's. The runtime's
//! address checks stay on: a name resolving to a private or special
//! address is refused as in any run.

use std::io::Write as _;
use std::path::Path;

use airssys_contract::capability::{Capability, Domain, HostPattern, ResourcePattern};
use airssys_contract::manifest::Manifest;
use airssys_contract::text::printable;
use airssys_runtime::Policy;

use super::policy::ObserveHeader;

/// `policy` with the grants of [`grant_declared`] when `--observe NAME`
/// was given (`airssys run` and `airssys serve`), else as it is.
///
/// # Errors
///
/// As [`grant_declared`].
pub(super) fn when_asked(
    policy: Policy,
    observe: Option<&str>,
    inputs: &[super::run::Input],
    audit: Option<&Path>,
) -> Result<Policy, u8> {
    let Some(name) = observe else {
        return Ok(policy);
    };
    let named: Vec<(&str, &[u8])> = inputs
        .iter()
        .map(|i| (i.name.as_str(), i.bytes.as_slice()))
        .collect();
    grant_declared(policy, name, &named, audit)
}

/// Adds the declared capabilities of the component `name` (one of
/// `inputs`, as `(name, bytes)`) to `policy` as its grants, writes its
/// manifest as the first record of the audit file, and says loudly on
/// stderr that the run is observing.
///
/// # Errors
///
/// Exit code 2 (message printed): no component of that name, no manifest,
/// or the audit file cannot be written.
pub(super) fn grant_declared(
    policy: Policy,
    name: &str,
    inputs: &[(&str, &[u8])],
    audit: Option<&Path>,
) -> Result<Policy, u8> {
    let fail = |message: String| {
        eprintln!("error: {message}");
        2
    };
    let Some((_, bytes)) = inputs.iter().find(|(n, _)| *n == name) else {
        let names: Vec<String> = inputs.iter().map(|(n, _)| format!("`{n}`")).collect();
        return Err(fail(format!(
            "--observe `{name}`: no component of that name is given; the components are {}",
            names.join(", ")
        )));
    };
    let manifest = match Manifest::from_wasm(bytes) {
        Ok(Some(manifest)) => manifest,
        _ => {
            return Err(fail(format!(
                "--observe `{name}`: the component has no manifest, so it declares nothing to \
                 observe; give it one (see docs/manifest-format.md)"
            )));
        }
    };
    let (granted, held): (Vec<&Capability>, Vec<&Capability>) =
        manifest.capabilities().partition(|c| !names_addresses(c));
    if let Some(path) = audit {
        write_header(path, &manifest).map_err(|e| {
            fail(format!(
                "--audit {}: cannot write the observed manifest: {e}",
                path.display()
            ))
        })?;
    }
    let list = |caps: &[&Capability]| {
        caps.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = printable(name);
    let file = audit.map_or_else(String::new, |p| p.display().to_string());
    eprintln!(
        "airssys: OBSERVING `{shown}`: for this run only it is granted everything its manifest \
         declares: {}",
        if granted.is_empty() {
            "(nothing)".to_owned()
        } else {
            list(&granted)
        }
    );
    if !held.is_empty() {
        eprintln!(
            "airssys: OBSERVING: not granted, as they name network addresses (only the host \
             policy may): {}",
            list(&held)
        );
    }
    eprintln!(
        "airssys: OBSERVING: every request of `{shown}` is recorded in {file}; these grants are \
         not a policy. Next: `airssys policy propose --audit {file} --component {shown}`, review \
         it, and run with it."
    );
    let mut builder = policy.into_builder();
    for capability in granted {
        builder = builder.grant(name, capability.clone());
    }
    Ok(builder.build())
}

/// Whether `capability` is a `net` rule naming an IP address or a CIDR
/// block.
fn names_addresses(capability: &Capability) -> bool {
    capability.domain() == Domain::Net
        && matches!(
            capability.resource(),
            Some(ResourcePattern::Net(p)) if matches!(p.host, HostPattern::Ip(_) | HostPattern::Cidr(..))
        )
}

/// Appends `{"observe": {...}}` with the manifest to the audit file.
fn write_header(path: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let texts = |caps: &[Capability]| caps.iter().map(ToString::to_string).collect();
    let header = serde_json::json!({
        "observe": ObserveHeader {
            component: manifest.name.clone(),
            version: manifest.version.clone(),
            requires: texts(&manifest.requires),
            optional: texts(&manifest.optional),
        }
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{header}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_rules_naming_addresses_are_held_back() {
        let held = |text: &str| names_addresses(&text.parse().unwrap_or_else(|e| panic!("{e}")));
        assert!(held("net:connect:169.254.169.254:80"));
        assert!(held("net:connect:10.0.0.0/8:*"));
        assert!(held("net:http:[::1]:443"));
        assert!(!held("net:connect:api.example.com:443"));
        assert!(!held("net:connect:*:443"));
        assert!(!held("net:connect"));
        assert!(!held("kv:read:counter/*"));
    }
}
