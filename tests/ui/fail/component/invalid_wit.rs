//! The WIT has a syntax error (a missing `;`).
#[airssys::component(wit = "fixtures/wit/invalid")]
struct Greeter;

fn main() {}
