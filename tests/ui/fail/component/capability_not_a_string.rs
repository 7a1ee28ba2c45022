//! List elements must be string literals.
#[airssys::component(requires = [log_write])]
struct Counter;

fn main() {}
