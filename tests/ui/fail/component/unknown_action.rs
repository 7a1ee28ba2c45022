//! `raed` is not an action of `kv`.
#[airssys::component(requires = ["kv:raed:counter/*"])]
struct Counter;

fn main() {}
