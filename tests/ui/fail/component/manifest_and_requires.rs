//! Capabilities both in the file and in the attribute.
#[airssys::component(manifest = "fixtures/manifests/Component.toml", requires = ["log:write"])]
struct Counter;

fn main() {}
