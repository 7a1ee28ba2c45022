//! List elements must be string literals.
#[airssys::component(requires = [log_write], name = "counter")]
struct Counter;

fn main() {}
