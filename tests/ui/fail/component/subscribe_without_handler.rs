//! `msg:subscribe` needs a world that exports `airssys:core/handler`: the
//! host delivers subscribed messages there. This world exports none.
#[airssys::component(wit = "fixtures/wit/small", requires = ["kv:write:notes", "msg:subscribe:orders.*"], name = "notebook")]
pub struct Notebook;

fn main() {}
