//! `manifest = ".."`: capabilities, name and version from Component.toml.
#![deny(warnings)]

use airssys::Component as _;

#[airssys::component(manifest = "fixtures/manifests/Component.toml")]
pub struct FromFile;

impl guest::Lifecycle for FromFile {}
impl guest::Handler for FromFile {}

fn main() {
    assert_eq!(FromFile::NAME, "from-file");
    assert_eq!(FromFile::VERSION, "0.3.0");
    assert_eq!(FromFile::OPTIONAL, ["kv:write:counter/*"]);
    // An optional capability compiles; the host may still deny it at run time.
    let _write = |b: &host::storage::Bucket<FromFile>| b.set("k", b"v");
}
