//! `require` is not an option (`requires` is).
#[airssys::component(require = ["log:write"])]
struct Counter;

fn main() {}
