//! `msg:subscribe` is accepted where the world exports the message handler
//! (`airssys:core/handler`), which receives the subscribed messages.
#![deny(warnings)]

use airssys::Component as _;

#[airssys::component(
    name = "orders",
    requires = ["msg:subscribe:orders.*"],
    optional = ["msg:subscribe:billing.>"],
)]
pub struct Listener;

impl guest::Lifecycle for Listener {}

impl guest::Handler for Listener {}

fn main() {
    assert_eq!(Listener::REQUIRES, ["msg:subscribe:orders.*"]);
    assert_eq!(Listener::OPTIONAL, ["msg:subscribe:billing.>"]);
}
