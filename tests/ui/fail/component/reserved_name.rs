//! A component may not take a name the host uses itself.
#[airssys::component(name = "host", requires = ["log:write"])]
struct Impostor;

fn main() {}
