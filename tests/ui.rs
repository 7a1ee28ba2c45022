//! Compile-time behaviour of `#[airssys::component]` and
//! `#[airssys::host_fn]`: `pass/` must compile, each `fail/<topic>/` case
//! must fail with the recorded message. Refresh with `TRYBUILD=overwrite`
//! and read every changed `.stderr` as a user would.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*/*.rs");
}
