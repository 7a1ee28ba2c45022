//! The version must be semver.
#[airssys::component(version = "one", requires = ["log:write"], name = "counter")]
struct Counter;

fn main() {}
