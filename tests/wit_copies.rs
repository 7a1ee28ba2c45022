//! The repository's `wit/` is the contract; `contract/wit/` and
//! `runtime/wit/` are byte-for-byte copies, there because a published
//! package carries the files it compiles (a package cannot read
//! `../wit`). This test keeps the copies from drifting: it fails when a
//! copy lacks a file, holds an extra one, or differs in one byte. See
//! docs/decisions/packaging.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir`, by `/`-separated path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_str()
                    .expect("UTF-8 path")
                    .replace('\\', "/");
                out.insert(relative, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn check_copy(copy: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fix = format!(
        "update the copy: `rm -r {copy} && cp -r wit {copy}` (docs/decisions/packaging.md)"
    );
    let original = files(&root.join("wit"));
    let copied = files(&root.join(copy));
    assert!(!original.is_empty(), "wit/ is empty");
    let names = |m: &BTreeMap<String, PathBuf>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&copied),
        names(&original),
        "{copy}/ and wit/ hold different files; {fix}"
    );
    let differing: Vec<&String> = original
        .iter()
        .filter(|(name, path)| {
            std::fs::read(path).expect("reads wit/")
                != std::fs::read(&copied[*name]).expect("reads the copy")
        })
        .map(|(name, _)| name)
        .collect();
    assert!(
        differing.is_empty(),
        "{copy}/ differs from wit/ in {differing:?}; {fix}"
    );
}

#[test]
fn the_contract_copy_equals_wit() {
    check_copy("contract/wit");
}

#[test]
fn the_runtime_copy_equals_wit() {
    check_copy("runtime/wit");
}
