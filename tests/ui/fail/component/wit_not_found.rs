//! The WIT directory does not exist.
#[airssys::component(wit = "fixtures/no/such/wit")]
struct Counter;

fn main() {}
