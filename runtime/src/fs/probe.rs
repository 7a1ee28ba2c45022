//! How a mounted directory compares names: byte for byte, or folding case
//! or Unicode normalisation (FAT, exFAT, NTFS, a default APFS volume, an
//! ext4/f2fs/tmpfs directory with the casefold attribute, many SMB
//! shares).
//!
//! Grants and deny rules are matched on the path text the component sends.
//! On a folding directory `/data/Secret/key` and `/data/secret/key` are the
//! same file, so a deny rule on `/data/secret/**` would not hold. The
//! runtime therefore probes each mount whose name matching could undo one
//! of the component's `fs` deny rules when the component loads, and refuses
//! the load when the directory folds names or the probe cannot tell (see
//! [`super::Mounts::open`]).

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

/// How a mounted directory compares names, as a [`MountProbe`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameMatching {
    /// Names match byte for byte: a name that differs in case or in
    /// Unicode normalisation names another entry.
    Exact,
    /// Names that differ in case or in Unicode normalisation can name the
    /// same entry; the text says what the probe saw.
    Folding(String),
    /// The probe could not tell; the text says why.
    Unknown(String),
}

/// Decides how a mounted directory compares names.
///
/// The runtime asks its probe (by default [`SystemMountProbe`]; another one
/// through [`RuntimeBuilder::mount_probe`](crate::RuntimeBuilder::mount_probe))
/// when a component loads whose `fs` deny rules reach into a mount, once
/// per such mount. Anything but [`NameMatching::Exact`] refuses the load
/// ([`LoadError::Mount`](crate::LoadError::Mount)).
///
/// # Examples
///
/// A probe that reports every directory as case-insensitive, as a test of
/// the refusal would use:
///
/// ```
/// use std::path::Path;
/// use airssys_runtime::{MountProbe, NameMatching, Runtime};
///
/// #[derive(Debug)]
/// struct AlwaysFolding;
///
/// impl MountProbe for AlwaysFolding {
///     fn probe(&self, _host_dir: &Path, _dir: &cap_std::fs::Dir) -> NameMatching {
///         NameMatching::Folding("pretend: a FAT volume".into())
///     }
/// }
///
/// let runtime = Runtime::builder()
///     .mount_probe(std::sync::Arc::new(AlwaysFolding))
///     .build()?;
/// # let _ = runtime;
/// # Ok::<(), airssys_runtime::BuildError>(())
/// ```
pub trait MountProbe: Send + Sync + std::fmt::Debug + 'static {
    /// How `dir`, the opened host directory `host_dir` of a mount,
    /// compares names. `host_dir` is for messages and for probes that
    /// decide by path; a probe that looks at the directory should use
    /// `dir`, which is what the component's calls will go through.
    fn probe(&self, host_dir: &Path, dir: &Dir) -> NameMatching;
}

/// The probe the runtime uses unless told otherwise. In this order:
///
/// 1. on Linux, the directory's `casefold` attribute (`FS_CASEFOLD_FL`,
///    `chattr +F`): set means folding;
/// 2. it creates an empty file with a unique name holding lower-case
///    ASCII and a precomposed `é` (`.airssys-name-probe-…-é`), looks the
///    name up in upper case and in decomposed form (`e` + U+0301), and
///    removes the file: either lookup finding it means folding, neither
///    means exact (a directory that refuses the `é` gets the name without
///    it, and only case is probed);
/// 3. when it may not create a file (a read-only mount), it looks up
///    existing names of the directory with their ASCII case swapped: one
///    found means folding, one not found means exact (normalisation is
///    then not probed);
/// 4. otherwise the answer is [`NameMatching::Unknown`].
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemMountProbe;

/// `FS_CASEFOLD_FL` of `linux/fs.h` (rustix has no name for it).
#[cfg(target_os = "linux")]
const FS_CASEFOLD_FL: u32 = 0x4000_0000;

/// Most names of a read-only directory looked at by the fallback probe.
const MAX_NAMES_LOOKED_AT: usize = 1_000;

impl MountProbe for SystemMountProbe {
    fn probe(&self, _host_dir: &Path, dir: &Dir) -> NameMatching {
        #[cfg(target_os = "linux")]
        if let Ok(flags) = rustix::fs::ioctl_getflags(dir)
            && flags.bits() & FS_CASEFOLD_FL != 0
        {
            return NameMatching::Folding(
                "the directory has the casefold attribute (`chattr +F`)".to_owned(),
            );
        }
        match probe_by_creating(dir) {
            Ok(matching) => matching,
            Err(create_error) => probe_existing_names(dir).unwrap_or_else(|| {
                NameMatching::Unknown(format!(
                    "no probe file could be created in it ({create_error}) and none of its \
                     names has an ASCII letter to look up in the other case"
                ))
            }),
        }
    }
}

/// A name no one else uses: process id, a counter and the time.
fn unique_stem() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        ".airssys-name-probe-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether `name` exists in `dir` (without following a link).
fn exists(dir: &Dir, name: &str) -> bool {
    dir.symlink_metadata(name).is_ok()
}

/// Creates a probe file, looks it up under other spellings, removes it.
fn probe_by_creating(dir: &Dir) -> io::Result<NameMatching> {
    let stem = unique_stem();
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .follow(FollowSymlinks::No);
    // A precomposed `é` probes normalisation. A directory that refuses
    // that name (EILSEQ, EINVAL, or EPERM as fusefat answers) gets an
    // ASCII-only probe: names it refuses cannot alias each other.
    let unicode = format!("{stem}-\u{e9}");
    let (name, decomposed) = match dir.open_with(&unicode, &options) {
        Ok(_) => (unicode, Some(format!("{stem}-e\u{301}"))),
        Err(_) => {
            dir.open_with(&stem, &options)?;
            (stem, None)
        }
    };
    let upper = name.to_ascii_uppercase();
    let case_folds = exists(dir, &upper);
    let normalises = decomposed.as_deref().is_some_and(|d| exists(dir, d));
    if let Err(e) = dir.remove_file(&name) {
        tracing::warn!(
            target: "airssys::fs",
            probe = name.as_str(),
            error = %e,
            "cannot remove the name probe file from a mounted directory"
        );
    }
    Ok(match (case_folds, normalises) {
        (false, false) => NameMatching::Exact,
        (true, false) => NameMatching::Folding(format!(
            "a file created as `{name}` is also found as `{upper}` (case-insensitive)"
        )),
        (false, true) => NameMatching::Folding(
            "a file created with a precomposed `\u{e9}` is also found under its decomposed \
             form (Unicode-normalising)"
                .to_owned(),
        ),
        (true, true) => NameMatching::Folding(
            "a probe file is also found in upper case and under its decomposed Unicode form \
             (case-insensitive and normalising)"
                .to_owned(),
        ),
    })
}

/// Looks up existing names with their ASCII case swapped; `None` when no
/// name has an ASCII letter.
fn probe_existing_names(dir: &Dir) -> Option<NameMatching> {
    let entries = dir.entries().ok()?;
    for entry in entries.take(MAX_NAMES_LOOKED_AT).flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let swapped: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        if swapped == name {
            continue;
        }
        return Some(if exists(dir, &swapped) {
            NameMatching::Folding(format!(
                "its entry `{name}` is also found as `{swapped}` (case-insensitive)"
            ))
        } else {
            NameMatching::Exact
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    #[test]
    fn this_machine_s_temporary_directory_matches_exactly() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).expect("open");
        assert_eq!(
            SystemMountProbe.probe(tmp.path(), &dir),
            NameMatching::Exact
        );
        // The probe leaves nothing behind.
        assert_eq!(std::fs::read_dir(tmp.path()).expect("ls").count(), 0);
    }

    #[test]
    fn existing_names_decide_when_nothing_can_be_created() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).expect("open");
        assert_eq!(probe_existing_names(&dir), None);
        std::fs::write(tmp.path().join("123"), "").expect("write");
        assert_eq!(probe_existing_names(&dir), None);
        std::fs::write(tmp.path().join("Report.txt"), "").expect("write");
        assert_eq!(probe_existing_names(&dir), Some(NameMatching::Exact));
        // Two entries that differ only in case, as a folding directory
        // would show one entry under both spellings.
        std::fs::remove_file(tmp.path().join("Report.txt")).expect("rm");
        std::fs::write(tmp.path().join("a"), "").expect("write");
        std::fs::write(tmp.path().join("A"), "").expect("write");
        assert!(matches!(
            probe_existing_names(&dir),
            Some(NameMatching::Folding(_))
        ));
    }
}
