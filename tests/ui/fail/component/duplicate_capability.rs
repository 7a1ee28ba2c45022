//! The same capability twice.
#[airssys::component(requires = ["kv:read:counter/*", "log:write", "kv:read:counter/*"], name = "counter")]
struct Counter;

fn main() {}
