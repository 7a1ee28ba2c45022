//! Proptest strategies shared by the property tests
//! (`tests/capability_props.rs`, `tests/authority_props.rs`): words and
//! paths over the small alphabets each test picks, so that subsets and
//! matches occur.

#![allow(dead_code)]

use proptest::prelude::*;

/// One of `items`.
pub(crate) fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(items).prop_map(str::to_owned)
}

/// Between `range.start` and `range.end - 1` of `items`, in any order.
pub(crate) fn segments(
    items: &'static [&'static str],
    range: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(pick(items), range)
}
