//! The WIT directory does not exist.
#[airssys::component(wit = "no/such/wit")]
struct Counter;

fn main() {}
