//! The version must be semver.
#[airssys::component(version = "one", requires = ["log:write"])]
struct Counter;

fn main() {}
