//! The contract in this repository's `wit/`, embedded at build time.
//!
//! Every file is listed by hand; a test fails when `wit/` holds a `.wit`
//! file missing here, so nothing is silently left out. `include_str!` also
//! makes cargo rebuild this crate when a listed file changes.

/// Every file of `wit/`: its path relative to `wit/` and its text.
pub const EMBEDDED_FILES: &[(&str, &str)] = &[
    (
        "deps/core/capabilities.wit",
        include_str!("../../../wit/deps/core/capabilities.wit"),
    ),
    (
        "deps/core/environment.wit",
        include_str!("../../../wit/deps/core/environment.wit"),
    ),
    (
        "deps/core/handler.wit",
        include_str!("../../../wit/deps/core/handler.wit"),
    ),
    (
        "deps/core/lifecycle.wit",
        include_str!("../../../wit/deps/core/lifecycle.wit"),
    ),
    (
        "deps/core/logging.wit",
        include_str!("../../../wit/deps/core/logging.wit"),
    ),
    (
        "deps/core/messaging.wit",
        include_str!("../../../wit/deps/core/messaging.wit"),
    ),
    (
        "deps/core/poll.wit",
        include_str!("../../../wit/deps/core/poll.wit"),
    ),
    (
        "deps/core/storage.wit",
        include_str!("../../../wit/deps/core/storage.wit"),
    ),
    (
        "deps/core/types.wit",
        include_str!("../../../wit/deps/core/types.wit"),
    ),
    (
        "deps/core/worlds.wit",
        include_str!("../../../wit/deps/core/worlds.wit"),
    ),
    (
        "filesystem.wit",
        include_str!("../../../wit/filesystem.wit"),
    ),
    ("network.wit", include_str!("../../../wit/network.wit")),
    ("process.wit", include_str!("../../../wit/process.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::EMBEDDED_FILES;

    fn wit_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("wit/ is readable") {
            let path = entry.expect("wit/ entry").path();
            if path.is_dir() {
                wit_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "wit") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_wit_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk = Vec::new();
        wit_files(&root, &mut on_disk);
        let mut missing = Vec::new();
        for path in &on_disk {
            let relative = path
                .strip_prefix(&root)
                .expect("under wit/")
                .to_str()
                .expect("UTF-8 path")
                .replace('\\', "/");
            if !EMBEDDED_FILES.iter().any(|(name, _)| *name == relative) {
                missing.push(relative);
            }
        }
        assert!(
            missing.is_empty(),
            "add these files to EMBEDDED_FILES in contract/src/contract/embedded.rs: {missing:?}"
        );
        assert_eq!(on_disk.len(), EMBEDDED_FILES.len());
    }
}
