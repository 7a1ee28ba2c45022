//! Compile-time behaviour of `#[airssys::component]` and
//! `#[airssys::host_fn]`: `pass/` must compile, each `fail/<topic>/` case
//! must fail with the recorded message. Refresh with `TRYBUILD=overwrite`
//! and read every changed `.stderr` as a user would.
//!
//! trybuild builds the cases in a crate of its own,
//! `<target>/tests/trybuild/airssys`, whose directory is the
//! `CARGO_MANIFEST_DIR` the macros resolve `wit = ".."` and
//! `manifest = ".."` against. Cases name `fixtures/..`: a link there to
//! `tests/fixtures`, made here, so they work wherever the target directory
//! is (`CARGO_TARGET_DIR` outside the checkout included).

#[test]
fn ui() {
    link_fixtures();
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*/*.rs");
}

/// Links `<target>/tests/trybuild/airssys/fixtures` to `tests/fixtures`.
fn link_fixtures() {
    // Cargo gives integration tests `<target>/tmp`.
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory");
    let project = target.join("tests").join("trybuild").join("airssys");
    std::fs::create_dir_all(&project).expect("creates trybuild's project directory");
    let link = project.join("fixtures");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures");
    if std::fs::read_link(&link).is_ok_and(|to| to == fixtures) {
        return;
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&fixtures, &link).expect("links the fixtures");
}
