//! The compile cache of `airssys run`: `--cache-dir` keeps one entry per
//! component, `--no-cache` writes none, `airssys cache dir|clear`.

#![allow(clippy::unwrap_used)]

use airssys_contract::manifest::Manifest;

mod common;
use common::{airssys, succeeded};

fn component() -> Vec<u8> {
    let bytes = common::app_component(
        "package test:app;\nworld app { import airssys:core/logging@1.0.0; }",
    );
    Manifest::from_toml_str("[component]\nname = \"cached\"\nversion = \"0.1.0\"\n")
        .unwrap()
        .attach(&bytes, false)
        .unwrap()
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn run_caches_compiled_components_and_cache_clear_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("app.wasm");
    std::fs::write(&wasm, component()).unwrap();
    let cache = dir.path().join("cache");
    let c = cache.to_str().unwrap();
    let w = wasm.to_str().unwrap();

    succeeded(&airssys(&["run", w, "--no-cache"]));
    assert!(files(&cache).is_empty(), "--no-cache writes nothing");

    let first = succeeded(&airssys(&["run", w, "--cache-dir", c]));
    let entries = files(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].extension().is_some_and(|e| e == "cwasm"));
    let second = succeeded(&airssys(&["run", w, "--cache-dir", c]));
    assert_eq!(first, second, "the cached run does what the first did");
    assert_eq!(files(&cache), entries);

    let out = airssys(&["cache", "dir", "--cache-dir", c]);
    assert_eq!(succeeded(&out).trim(), c);
    succeeded(&airssys(&["cache", "clear", "--cache-dir", c]));
    assert!(!cache.exists());
}

#[test]
fn a_cache_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("app.wasm");
    std::fs::write(&wasm, component()).unwrap();
    let cache = dir.path().join("shared");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = airssys(&[
        "run",
        wasm.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing"), "{err}");
    assert!(err.contains("chmod 700"), "{err}");
}
