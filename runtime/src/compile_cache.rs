//! The on-disk cache of compiled components
//! ([`RuntimeBuilder::compile_cache`](crate::RuntimeBuilder::compile_cache)).
//!
//! An entry is the output of `Engine::precompile_component`, stored as
//! `<key>.cwasm` where the key is a SHA-256 of the component's bytes, the
//! wasmtime version and wasmtime's compatibility hash of the engine
//! settings; the file starts with [`MAGIC`], the key, and a SHA-256 of the
//! key and the code that follows, so an entry is bound to the component
//! and engine it was compiled for (one copied or renamed to another key's
//! name is refused).
//!
//! Loading compiled code is loading code (`Component::deserialize` is
//! `unsafe` for that reason): an entry runs with the host's rights. So:
//! - the directory must be the host user's and writable by nobody else
//!   (a missing one is created with mode `0700`); another is refused at
//!   build time;
//! - an entry is used only when it is a regular file of that user, its
//!   key is the one asked for, its checksum matches the key and code, and
//!   wasmtime accepts the code as built by this engine; anything else
//!   (truncated, flipped bits, another version, another component's entry)
//!   is recompiled and rewritten, never run;
//! - entries are written through a temporary file in the same directory
//!   and renamed, so a reader never sees half an entry.
//!
//! The decision is recorded in `docs/decisions/compile-cache.md`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a compile cache directory was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The directory cannot be created or read.
    #[error("cannot use {} as the compile cache: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Someone other than this user could write into the directory, and so
    /// plant code the host would run.
    #[error(
        "refusing {} as the compile cache: {reason}; compiled code read from it runs with the \
         host's rights, so only this user may write to it (`chmod 700` it, or name another \
         directory)",
        path.display()
    )]
    Unsafe {
        /// The directory.
        path: PathBuf,
        /// What makes it writable by others.
        reason: String,
    },
}

/// The first bytes of every entry: the entry format, version 2 (version 1
/// did not hold its key).
pub(crate) const MAGIC: &[u8; 16] = b"airssys-cwasm-2\n";

/// A compile cache directory, checked.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// Checks (and if missing, creates) `dir`.
    ///
    /// # Errors
    ///
    /// [`CacheError`] naming the directory and what is wrong with it.
    pub(crate) fn open(dir: &Path) -> Result<CompileCache, CacheError> {
        prepare(dir)?;
        Ok(CompileCache {
            dir: dir.to_owned(),
        })
    }

    /// The component `bytes` compiled for `engine`: from its cache entry
    /// when there is a sound one, else compiled and written to the cache
    /// (a failed write only costs the next load a compile).
    ///
    /// # Errors
    ///
    /// wasmtime's compile error.
    pub(crate) fn component(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let key = key(engine, bytes);
        let path = self.dir.join(format!("{}.cwasm", hex(&key)));
        if let Some(code) = read_entry(&path, &key) {
            // SAFETY: `code` is what `Engine::precompile_component` wrote
            // into a directory only this user can write to, for this key
            // (component and engine), and its SHA-256 matches the one
            // written with it; `deserialize`
            // itself checks that it was built for this engine's settings
            // and wasmtime version. See the module documentation.
            #[allow(unsafe_code)]
            if let Ok(component) = unsafe { Component::deserialize(engine, &code) } {
                return Ok(component);
            }
            tracing::warn!(entry = %path.display(), "compile cache entry refused by wasmtime; recompiling");
        }
        let code = engine.precompile_component(bytes)?;
        if let Err(e) = write_entry(&self.dir, &path, &key, &code) {
            tracing::warn!(entry = %path.display(), error = %e, "cannot write the compile cache entry");
        }
        // SAFETY: `code` was produced by `precompile_component` of this
        // engine just now, in memory.
        #[allow(unsafe_code)]
        unsafe {
            Component::deserialize(engine, &code)
        }
    }
}

/// The cache key of `bytes` for `engine`.
fn key(engine: &Engine, bytes: &[u8]) -> [u8; 32] {
    struct Sha(Sha256);
    impl std::hash::Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut sha = Sha(Sha256::new());
    sha.0.update(b"airssys compile cache 1\0");
    sha.0.update(WASMTIME_VERSION.as_bytes());
    sha.0.update(b"\0");
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut sha);
    sha.0.update(Sha256::digest(bytes));
    sha.0.finalize().into()
}

/// The wasmtime this crate is built with (the engine's own hash also
/// covers it; named here so a version change never shares a key).
const WASMTIME_VERSION: &str = "wasmtime-48";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum of an entry: a SHA-256 of its key and code.
fn checksum(key: &[u8; 32], code: &[u8]) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update(key);
    sha.update(code);
    sha.finalize().into()
}

/// The code of the entry at `path` when it is a regular file of this
/// user, written for `key`, whose checksum matches; `None` otherwise
/// (missing, corrupt, another key's entry, ...).
fn read_entry(path: &Path, key: &[u8; 32]) -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.uid() != rustix::process::geteuid().as_raw() {
        tracing::warn!(entry = %path.display(), "compile cache entry is not a file of this user; ignored");
        return None;
    }
    let file = std::fs::read(path).ok()?;
    let rest = file.strip_prefix(MAGIC.as_slice())?;
    if rest.len() < 64 {
        return None;
    }
    let (written_for, rest) = rest.split_at(32);
    let (sum, code) = rest.split_at(32);
    if written_for != key {
        tracing::warn!(entry = %path.display(), "compile cache entry was written for another component or engine; recompiling");
        return None;
    }
    if checksum(key, code) != sum {
        tracing::warn!(entry = %path.display(), "compile cache entry is corrupt; recompiling");
        return None;
    }
    Some(code.to_vec())
}

/// Writes the entry through a temporary file in `dir`, then renames it.
fn write_entry(dir: &Path, path: &Path, key: &[u8; 32], code: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(MAGIC)?;
    file.write_all(key)?;
    file.write_all(&checksum(key, code))?;
    file.write_all(code)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` (mode 0700) when missing; refuses it when another user
/// could write to it.
fn prepare(dir: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let io = |source| CacheError::Io {
        path: dir.to_owned(),
        source,
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io)?;
    }
    let meta = std::fs::metadata(dir).map_err(io)?;
    let unsafe_because = |reason: String| CacheError::Unsafe {
        path: dir.to_owned(),
        reason,
    };
    if !meta.is_dir() {
        return Err(io(std::io::Error::other("not a directory")));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(unsafe_because(format!(
            "it belongs to user id {}, not to this user ({me})",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(unsafe_because(format!(
            "its mode {mode:o} lets its group or everyone write to it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_missing_directory_is_created_private() {
        let parent = tempfile::tempdir().expect("temp dir");
        let dir = parent.path().join("a/b");
        prepare(&dir).expect("created");
        let mode = std::fs::metadata(&dir)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let err = prepare(dir.path()).expect_err("world-writable");
        let text = err.to_string();
        assert!(
            text.contains("its mode 777 lets its group or everyone write"),
            "{text}"
        );
        assert!(text.contains("chmod 700"), "{text}");
    }
}
