//! `world` given twice.
#[airssys::component(world = "airssys:core/component", world = "airssys:ext/component", name = "counter")]
struct Counter;

fn main() {}
