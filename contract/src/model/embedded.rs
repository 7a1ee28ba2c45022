//! The contract, embedded at build time from the crate's own copy of the
//! repository's `wit/` (`contract/wit/`).
//!
//! The repository's `wit/` is the canonical contract; `contract/wit/` is a
//! byte-for-byte copy so that the published crate carries the files it
//! embeds (a package cannot reach outside its directory). A test fails when
//! the copy differs from `wit/` or when a `.wit` file is missing from the
//! list below; see `docs/decisions/packaging.md`. `include_str!` also makes
//! cargo rebuild this crate when a listed file changes.

/// Every file of the contract: its path relative to `wit/` and its text.
pub const EMBEDDED_FILES: &[(&str, &str)] = &[
    (
        "deps/core/capabilities.wit",
        include_str!("../../wit/deps/core/capabilities.wit"),
    ),
    (
        "deps/core/environment.wit",
        include_str!("../../wit/deps/core/environment.wit"),
    ),
    (
        "deps/core/handler.wit",
        include_str!("../../wit/deps/core/handler.wit"),
    ),
    (
        "deps/core/lifecycle.wit",
        include_str!("../../wit/deps/core/lifecycle.wit"),
    ),
    (
        "deps/core/logging.wit",
        include_str!("../../wit/deps/core/logging.wit"),
    ),
    (
        "deps/core/messaging.wit",
        include_str!("../../wit/deps/core/messaging.wit"),
    ),
    (
        "deps/core/poll.wit",
        include_str!("../../wit/deps/core/poll.wit"),
    ),
    (
        "deps/core/storage.wit",
        include_str!("../../wit/deps/core/storage.wit"),
    ),
    (
        "deps/core/types.wit",
        include_str!("../../wit/deps/core/types.wit"),
    ),
    (
        "deps/core/worlds.wit",
        include_str!("../../wit/deps/core/worlds.wit"),
    ),
    ("filesystem.wit", include_str!("../../wit/filesystem.wit")),
    ("network.wit", include_str!("../../wit/network.wit")),
    ("process.wit", include_str!("../../wit/process.wit")),
    ("worlds.wit", include_str!("../../wit/worlds.wit")),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::EMBEDDED_FILES;

    /// The `.wit` files under `dir`, by path relative to `dir` (`/`-separated).
    fn wit_files(dir: &Path) -> BTreeMap<String, PathBuf> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
            let entries = std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else if path.extension().is_some_and(|e| e == "wit") {
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

    fn crate_dir() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn every_wit_file_is_embedded() {
        let on_disk = wit_files(&crate_dir().join("wit"));
        let missing: Vec<_> = on_disk
            .keys()
            .filter(|name| !EMBEDDED_FILES.iter().any(|(n, _)| n == name))
            .collect();
        assert!(
            missing.is_empty(),
            "add these files to EMBEDDED_FILES in contract/src/model/embedded.rs: {missing:?}"
        );
        assert_eq!(on_disk.len(), EMBEDDED_FILES.len());
    }

    /// `contract/wit/` is a copy of the repository's `wit/`: same files,
    /// same bytes. Skipped where there is no repository around the crate
    /// (the published crate).
    #[test]
    fn the_copy_equals_the_repository_wit() {
        let canonical = crate_dir().join("../wit");
        if !canonical.join("worlds.wit").is_file() {
            eprintln!("no repository `wit/` beside the crate; nothing to compare");
            return;
        }
        let fix = "update the copy: `rm -r contract/wit && cp -r wit contract/wit` \
                   (docs/decisions/packaging.md)";
        let copy = wit_files(&crate_dir().join("wit"));
        let original = wit_files(&canonical);
        let names = |m: &BTreeMap<String, PathBuf>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&copy),
            names(&original),
            "contract/wit/ and wit/ hold different files; {fix}"
        );
        let differing: Vec<_> = original
            .iter()
            .filter(|(name, path)| {
                std::fs::read(path).expect("reads wit/")
                    != std::fs::read(&copy[*name]).expect("reads contract/wit/")
            })
            .map(|(name, _)| name)
            .collect();
        assert!(
            differing.is_empty(),
            "contract/wit/ differs from wit/ in {differing:?}; {fix}"
        );
    }
}
