//! `db` is not a capability domain.
#[airssys::component(requires = ["db:read:counter"], name = "counter")]
struct Counter;

fn main() {}
