//! The manifest file does not exist.
#[airssys::component(manifest = "Missing.toml", name = "counter")]
struct Counter;

fn main() {}
