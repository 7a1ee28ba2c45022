//! No such world.
#[airssys::component(world = "server")]
struct Counter;

fn main() {}
