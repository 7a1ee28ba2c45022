//! The attribute goes on a type.
#[airssys::component(requires = ["log:write"])]
fn counter() {}

fn main() {}
