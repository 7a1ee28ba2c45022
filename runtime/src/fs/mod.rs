//! Virtual filesystem roots: the host directories a policy maps in
//! (`mounts = { "/data" = "/srv/app-data" }`), opened once per loaded
//! component as cap-std [`Dir`] handles, and the resolution of a virtual
//! path to a directory handle plus one final name beneath it.
//!
//! Ambient authority is used in one place only: [`Mounts::open`] opens each
//! configured host directory by its host path. Everything after that goes
//! through the directory handles, one path component at a time, and never
//! follows a symbolic link:
//!
//! - every intermediate directory is opened with
//!   [`DirExt::open_dir_nofollow`] on a single name, so a symlink anywhere
//!   in the path (absolute, relative, a chain, or one swapped in for a
//!   directory after an earlier call) fails the open instead of being
//!   followed;
//! - the final component is opened, examined, created, removed or renamed
//!   by name within its parent handle with "no follow" semantics.
//!
//! A symlink inside a mount is therefore never followed, not even to a
//! place the grant would cover: the grant was checked on the path the
//! component asked for, and a link could lead anywhere (including into a
//! sibling the grant does not cover). Such a path is answered with
//! `denied`, naming the link.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// Why a filesystem operation failed, in the categories of the WIT
/// `error` variant; the text names the virtual path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FsError {
    /// Refused: a symlink on the way, a path outside every mount, or the
    /// host denied access.
    #[error("{0}")]
    Denied(String),
    /// Nothing at the path.
    #[error("{0}")]
    NotFound(String),
    /// Something already at the path.
    #[error("{0}")]
    AlreadyExists(String),
    /// The path is malformed or names the wrong kind of entry.
    #[error("{0}")]
    InvalidInput(String),
    /// Any other I/O failure.
    #[error("{0}")]
    Other(String),
}

/// One virtual root.
#[derive(Debug)]
struct Root {
    /// The virtual path, such as `/data` (or `/`).
    virtual_root: String,
    /// The opened directory, or why it could not be opened.
    dir: Result<Dir, String>,
}

/// The mounted roots of one component.
#[derive(Debug, Default)]
pub(crate) struct Mounts {
    /// Longest virtual root first, so nested mounts win.
    roots: Vec<Root>,
}

/// A resolved virtual path: the directory that holds it and its final
/// name (`None` when the path is a mount root itself).
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The directory holding the entry (the root for a root's child).
    pub(crate) parent: Dir,
    /// The entry's name within `parent`; `None` for the root itself.
    pub(crate) leaf: Option<String>,
}

impl Mounts {
    /// Opens every host directory of `mounts`. This is the only place the
    /// filesystem service uses ambient authority. A directory that cannot
    /// be opened does not stop the load; calls beneath it answer `other`
    /// with the reason, and a warning is logged.
    pub(crate) fn open(component: &str, mounts: &BTreeMap<String, PathBuf>) -> Mounts {
        let mut roots: Vec<Root> = mounts
            .iter()
            .map(|(virtual_root, host_dir)| {
                let dir = Dir::open_ambient_dir(host_dir, ambient_authority()).map_err(|e| {
                    tracing::warn!(
                        target: "airssys::fs",
                        component,
                        virtual_root = virtual_root.as_str(),
                        host_dir = %host_dir.display(),
                        error = %e,
                        "cannot open mounted directory"
                    );
                    format!("the host directory mapped to `{virtual_root}` cannot be opened: {e}")
                });
                Root {
                    virtual_root: virtual_root.clone(),
                    dir,
                }
            })
            .collect();
        roots.sort_by_key(|r| std::cmp::Reverse(r.virtual_root.len()));
        Mounts { roots }
    }

    /// Resolves the virtual path `path` beneath its mount without following
    /// any symlink: every directory between the root and the final name is
    /// opened by name with "no follow".
    ///
    /// # Errors
    ///
    /// [`FsError::InvalidInput`] for a path that is not absolute and
    /// normalized, [`FsError::NotFound`] for a path under no mount or a
    /// missing directory on the way, [`FsError::Denied`] for a symlink on
    /// the way.
    pub(crate) fn resolve(&self, path: &str) -> Result<Resolved, FsError> {
        check_path(path)?;
        let root = self
            .roots
            .iter()
            .find(|r| strip_root(&r.virtual_root, path).is_some())
            .ok_or_else(|| self.unmounted(path))?;
        let dir = root.dir.as_ref().map_err(|e| FsError::Other(e.clone()))?;
        let rest = strip_root(&root.virtual_root, path).unwrap_or_default();
        let mut names: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
        let leaf = names.pop().map(str::to_owned);
        let mut parent = dir
            .try_clone()
            .map_err(|e| FsError::Other(format!("`{path}`: {e}")))?;
        let mut walked = root.virtual_root.trim_end_matches('/').to_owned();
        for name in names {
            walked.push('/');
            walked.push_str(name);
            parent = open_dir(&parent, name, &walked)?;
        }
        Ok(Resolved { parent, leaf })
    }

    /// The error for a path beneath no mount.
    fn unmounted(&self, path: &str) -> FsError {
        let roots = self
            .roots
            .iter()
            .map(|r| format!("`{}`", r.virtual_root))
            .collect::<Vec<_>>();
        let mounted = if roots.is_empty() {
            "no directory is mounted for this component (add `mounts` to its policy table)"
                .to_owned()
        } else {
            format!("the mounted roots are {}", roots.join(", "))
        };
        FsError::NotFound(format!(
            "`{path}` is beneath no mounted directory; {mounted}"
        ))
    }
}

/// `path` below `root` (`""` for the root itself), or `None` when `path`
/// is not `root` or beneath it (component boundaries respected).
fn strip_root<'p>(root: &str, path: &'p str) -> Option<&'p str> {
    if root == "/" {
        return Some(&path[1..]);
    }
    let rest = path.strip_prefix(root)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

/// Refuses anything but an absolute, normalized path (the guard already
/// denies these; this is the second line).
fn check_path(path: &str) -> Result<(), FsError> {
    let ok = path == "/"
        || (path.starts_with('/')
            && path[1..]
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0')));
    if ok {
        Ok(())
    } else {
        Err(FsError::InvalidInput(format!(
            "`{path}` is not an absolute, normalized path (no `.`, `..` or empty components)"
        )))
    }
}

/// Opens the directory `name` inside `dir` without following a symlink.
pub(crate) fn open_dir(dir: &Dir, name: &str, path: &str) -> Result<Dir, FsError> {
    dir.open_dir_nofollow(name)
        .map_err(|e| io_error(dir, name, path, &e))
}

/// Classifies an I/O error on `name` inside `dir` (virtual path `path`).
/// A symlink at `name` is reported as a denial naming it.
pub(crate) fn io_error(dir: &Dir, name: &str, path: &str, error: &io::Error) -> FsError {
    if is_symlink(dir, name) {
        return symlink_denied(path);
    }
    match error.kind() {
        io::ErrorKind::NotFound => FsError::NotFound(format!("no file or directory at `{path}`")),
        io::ErrorKind::AlreadyExists => {
            FsError::AlreadyExists(format!("something already exists at `{path}`"))
        }
        io::ErrorKind::PermissionDenied => FsError::Denied(format!(
            "the host refused access to `{path}` (the path leads outside its mounted directory, \
             or the host's file permissions forbid it): {error}"
        )),
        io::ErrorKind::NotADirectory => {
            FsError::InvalidInput(format!("`{path}` is not a directory"))
        }
        io::ErrorKind::IsADirectory => FsError::InvalidInput(format!("`{path}` is a directory")),
        io::ErrorKind::DirectoryNotEmpty => {
            FsError::Other(format!("the directory `{path}` is not empty"))
        }
        _ => FsError::Other(format!("`{path}`: {error}")),
    }
}

/// Whether `name` inside `dir` is a symbolic link (never followed).
pub(crate) fn is_symlink(dir: &Dir, name: &str) -> bool {
    dir.symlink_metadata(name)
        .is_ok_and(|m| m.file_type().is_symlink())
}

/// The denial for a path through a symlink.
pub(crate) fn symlink_denied(path: &str) -> FsError {
    FsError::Denied(format!(
        "`{path}` is or passes through a symbolic link; airssys never follows symlinks beneath \
         mounted directories (the grant was checked on the path asked for, not on the link's \
         target): use the target's own path"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_root_respects_component_boundaries() {
        assert_eq!(strip_root("/data", "/data"), Some(""));
        assert_eq!(strip_root("/data", "/data/a/b"), Some("a/b"));
        assert_eq!(strip_root("/data", "/database/a"), None);
        assert_eq!(strip_root("/", "/x/y"), Some("x/y"));
    }

    #[test]
    fn check_path_refuses_non_normalized() {
        for bad in [
            "",
            "data",
            "/data/",
            "/data//x",
            "/data/./x",
            "/data/../x",
            "/a\0b",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("/data/x").is_ok());
    }

    #[test]
    fn unmounted_path_names_the_roots() {
        let mounts = Mounts::default();
        let err = mounts.resolve("/data/x").expect_err("no mounts");
        assert!(matches!(&err, FsError::NotFound(m) if m.contains("no directory is mounted")));
    }
}
