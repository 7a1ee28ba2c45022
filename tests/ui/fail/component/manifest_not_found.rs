//! The manifest file does not exist.
#[airssys::component(manifest = "Missing.toml")]
struct Counter;

fn main() {}
