//! `world` given twice.
#[airssys::component(world = "airssys:core/component", world = "airssys:ext/component")]
struct Counter;

fn main() {}
