//! `fs` paths must be absolute.
#[airssys::component(requires = ["fs:read:data/*.txt"], name = "reader")]
struct Reader;

fn main() {}
