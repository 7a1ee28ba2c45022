//! `fs` paths must be absolute.
#[airssys::component(requires = ["fs:read:data/*.txt"])]
struct Reader;

fn main() {}
