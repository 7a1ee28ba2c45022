//! `db` is not a capability domain.
#[airssys::component(requires = ["db:read:counter"])]
struct Counter;

fn main() {}
