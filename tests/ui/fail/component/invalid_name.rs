//! A component name starts with a letter.
#[airssys::component(name = "9lives", requires = ["log:write"])]
struct Counter;

fn main() {}
