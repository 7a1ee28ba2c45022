//! Both packages define a `component` world.
#[airssys::component(world = "component")]
struct Counter;

fn main() {}
