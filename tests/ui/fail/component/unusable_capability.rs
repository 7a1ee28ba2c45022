//! The core world imports no filesystem function.
#[airssys::component(world = "airssys:core/component", requires = ["fs:read:/data/**"], name = "reader")]
struct Reader;

fn main() {}
