//! A capability without its key.
#[airssys::component("log:write")]
struct Counter;

fn main() {}
