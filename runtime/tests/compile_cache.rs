//! The compile cache (`RuntimeBuilder::compile_cache`): a second load of
//! the same component reads the compiled code from the cache directory; a
//! corrupt entry is recompiled and rewritten, never run; a directory other
//! users could write to is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};

use airssys_runtime::contract::manifest::{MANIFEST_SECTION, Manifest};
use airssys_runtime::contract::model::Contract;
use airssys_runtime::{BuildError, Policy, Runtime};

fn component() -> Vec<u8> {
    component_named("cached")
}

fn component_named(name: &str) -> Vec<u8> {
    let mut resolve = Contract::embedded().resolve().clone();
    let pkg = resolve
        .push_str(
            "t.wit",
            "package test:cache;\nworld w { import airssys:core/logging@1.0.0; export run: func() -> u32; }",
        )
        .unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
    let mut bytes = support::dummy_component(&resolve, world);
    let manifest = Manifest::from_toml_str(&format!(
        "[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n"
    ))
    .unwrap();
    support::append_custom_section(&mut bytes, MANIFEST_SECTION, &manifest.encode());
    bytes
}

fn runtime(cache: &Path) -> Runtime {
    Runtime::builder()
        .policy(Policy::builder().build())
        .in_memory_storage()
        .max_instances(2)
        .compile_cache(cache)
        .build()
        .expect("runtime")
}

/// Every file in the cache directory.
fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn a_load_writes_an_entry_and_a_corrupt_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let bytes = component();
    runtime(&cache).load(&bytes).expect("loads");
    let written = entries(&cache);
    assert_eq!(written.len(), 1, "{written:?}");
    let good = std::fs::read(&written[0]).unwrap();
    assert!(!good.is_empty());
    // A second runtime loads it from the cache; the entry is unchanged.
    runtime(&cache).load(&bytes).expect("loads from the cache");
    assert_eq!(std::fs::read(&written[0]).unwrap(), good);

    let flipped = |at: usize| {
        let mut bytes = good.clone();
        bytes[at] ^= 0x40;
        bytes
    };
    for garbage in [
        b"not zstd at all".to_vec(),
        good[..good.len() / 2].to_vec(),
        flipped(good.len() / 2),
        flipped(good.len() - 5),
    ] {
        std::fs::write(&written[0], &garbage).unwrap();
        runtime(&cache)
            .load(&bytes)
            .expect("a corrupt entry is recompiled, not run");
        assert_eq!(
            std::fs::read(&written[0]).unwrap(),
            good,
            "the entry is rewritten with the compiled code"
        );
    }
}

#[test]
fn a_cache_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o757)).unwrap();
    let err = Runtime::builder()
        .compile_cache(dir.path())
        .build()
        .expect_err("refused");
    assert!(matches!(err, BuildError::CompileCache(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("refusing"), "{text}");
    assert!(text.contains("mode 757"), "{text}");
}

/// An entry is bound to the component (and engine) it was compiled for:
/// another component's entry copied under its name, checksum and all, is
/// refused and the entry recompiled and rewritten, never run in its place.
#[test]
fn another_components_entry_under_its_name_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (one, two) = (component_named("one"), component_named("two"));
    runtime(&cache).load(&one).expect("loads");
    let [one_entry] = entries(&cache).try_into().expect("one entry");
    runtime(&cache).load(&two).expect("loads");
    let two_entry = entries(&cache)
        .into_iter()
        .find(|p| *p != one_entry)
        .expect("a second entry");
    let (one_code, two_code) = (
        std::fs::read(&one_entry).unwrap(),
        std::fs::read(&two_entry).unwrap(),
    );
    assert_ne!(one_code, two_code);
    std::fs::copy(&one_entry, &two_entry).unwrap();
    runtime(&cache)
        .load(&two)
        .expect("the swapped entry is recompiled, not run");
    assert_eq!(
        std::fs::read(&two_entry).unwrap(),
        two_code,
        "the entry is rewritten with the component's own compiled code"
    );
}
