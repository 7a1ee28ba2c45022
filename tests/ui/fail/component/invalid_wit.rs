//! The WIT has a syntax error (a missing `;`).
#[airssys::component(wit = "../../../../tests/fixtures/wit/invalid")]
struct Greeter;

fn main() {}
