//! `wit = ".."`: bindings from a WIT directory beside the crate.
#![deny(warnings)]

use airssys::Component as _;

#[airssys::component(wit = "fixtures/wit/small", requires = ["kv:write:notes"], name = "notebook", version = "2.0.0")]
pub struct Notebook;

impl guest::Run for Notebook {}

fn main() {
    let _append = |n: &str| Notebook::host().notes().append("notes", n);
    assert_eq!(Notebook::NAME, "notebook");
    assert_eq!(Notebook::WORLD, "test:small/notebook@1.0.0");
}
