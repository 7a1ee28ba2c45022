//! The `netprobe` fixture under a manifest other than its own, for the
//! network tests and the hostile suite (both include this file).

#![allow(dead_code, clippy::expect_used)]

use airssys_runtime::contract::manifest::Manifest;

/// netprobe's component bytes whose only manifest is one naming it
/// `name` and asking for `optional` (and nothing required). Its own
/// manifest, inside its core module, is renamed in place (sizes
/// unchanged) so the appended one is the only one the loader finds.
pub(crate) fn netprobe_as(name: &str, optional: &[&str]) -> Vec<u8> {
    let list = optional
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = Manifest::from_toml_str(&format!(
        "[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\noptional = \
         [{list}]\n"
    ))
    .expect("valid manifest");
    let mut bytes = crate::support::fixture("netprobe").to_vec();
    let own = b"\x10airssys:manifest";
    let at = bytes
        .windows(own.len())
        .position(|w| w == own)
        .expect("netprobe carries a manifest section");
    bytes[at + 1..at + own.len()].copy_from_slice(b"airssys:disabled");
    crate::support::append_custom_section(&mut bytes, "airssys:manifest", &manifest.encode());
    bytes
}
