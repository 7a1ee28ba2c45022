//! The manifest file does not exist.
#[airssys::component(manifest = "fixtures/Missing.toml", name = "counter")]
struct Counter;

fn main() {}
