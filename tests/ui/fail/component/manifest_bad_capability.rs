//! The manifest file holds a misspelt action.
#[airssys::component(manifest = "fixtures/manifests/bad_capability.toml", name = "counter")]
struct Counter;

fn main() {}
