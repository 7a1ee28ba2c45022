//! A capability without its key.
#[airssys::component("log:write", name = "counter")]
struct Counter;

fn main() {}
