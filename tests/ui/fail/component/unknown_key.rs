//! `require` is not an option (`requires` is).
#[airssys::component(require = ["log:write"], name = "counter")]
struct Counter;

fn main() {}
