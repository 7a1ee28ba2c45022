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
//!
//! Grants and deny rules are matched on path text; [`probe`] finds mounts
//! whose filesystem folds case or Unicode normalisation, where a deny rule
//! could be evaded by another spelling of a name.

mod probe;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use airssys_contract::capability::{
    Action, Capability, Domain, GrantSet, ResourcePattern, Segment,
};
use cap_fs_ext::DirExt;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

pub use self::probe::{MountProbe, NameMatching, SystemMountProbe};
use crate::error::LoadError;

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
    ///
    /// A mount that one of the component's `fs` deny rules reaches into is
    /// asked to `probe` how it compares names: a deny rule holds only where
    /// names match byte for byte.
    ///
    /// # Errors
    ///
    /// [`LoadError::Mount`] when such a mount folds case or Unicode
    /// normalisation, or the probe cannot tell.
    pub(crate) fn open(
        component: &str,
        mounts: &BTreeMap<String, PathBuf>,
        grants: &GrantSet,
        probe: &dyn MountProbe,
    ) -> Result<Mounts, LoadError> {
        let mut roots = Vec::with_capacity(mounts.len());
        for (virtual_root, host_dir) in mounts {
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
            if let Ok(dir) = &dir {
                check_name_matching(component, virtual_root, host_dir, dir, grants, probe)?;
            }
            roots.push(Root {
                virtual_root: virtual_root.clone(),
                dir,
            });
        }
        roots.sort_by_key(|r| std::cmp::Reverse(r.virtual_root.len()));
        if !roots.is_empty() {
            note_changed_meanings(component, grants);
        }
        Ok(Mounts { roots })
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

/// Refuses a mount into which one of `grants`' `fs` deny rules reaches
/// when its directory does not match names byte for byte: there, another
/// spelling of a denied name (`/data/Secret/key` for a deny on
/// `/data/secret/**`) would reach the denied file. Mounts no deny rule
/// reaches are not probed (nothing to evade; and the probe writes a
/// file).
fn check_name_matching(
    component: &str,
    virtual_root: &str,
    host_dir: &Path,
    dir: &Dir,
    grants: &GrantSet,
    probe: &dyn MountProbe,
) -> Result<(), LoadError> {
    let reaching: Vec<String> = grants
        .denies()
        .iter()
        .filter(|deny| deny_reaches(deny, virtual_root))
        .map(|deny| format!("`{deny}`"))
        .collect();
    if reaching.is_empty() {
        return Ok(());
    }
    let (what, detail) = match probe.probe(host_dir, dir) {
        NameMatching::Exact => return Ok(()),
        NameMatching::Folding(detail) => (
            "compares names without regard to case or Unicode normalisation",
            detail,
        ),
        NameMatching::Unknown(detail) => ("could not be probed for how it compares names", detail),
    };
    Err(LoadError::Mount {
        component: component.to_owned(),
        virtual_root: virtual_root.to_owned(),
        host_dir: host_dir.to_path_buf(),
        message: format!(
            "component `{component}`: the host directory `{}` mounted at `{virtual_root}` \
             {what} ({detail}), so the deny rule{} {} could be evaded by spelling a name \
             differently; airssys refuses such a mount rather than guess the filesystem's \
             folding rules. Mount a directory on a case-sensitive, non-normalising filesystem \
             (for ext4/f2fs: one without the casefold attribute), or express the policy \
             without deny rules under `{virtual_root}` (narrower grants instead)",
            host_dir.display(),
            if reaching.len() == 1 { "" } else { "s" },
            reaching.join(", "),
        ),
    })
}

/// Warns at load time where a grant of `grants` means less than it did
/// before docs/decisions/containment-filesystem.md: a write handle no
/// longer reads without `fs:read`, and a rename needs `fs:delete` on the
/// source.
fn note_changed_meanings(component: &str, grants: &GrantSet) {
    let fs_allows = || grants.allows().iter().filter(|c| c.domain() == Domain::Fs);
    let has = |action| fs_allows().any(|c| c.action() == action);
    for writing in fs_allows().filter(|c| matches!(c.action(), Action::Write | Action::Create)) {
        // The same pattern for `fs:read`, covered by a read grant?
        let as_read = writing
            .to_string()
            .replacen(writing.action().as_str(), "read", 1);
        let readable = Capability::parse(&as_read).is_ok_and(|read| {
            fs_allows()
                .filter(|c| c.action() == Action::Read)
                .any(|grant| read.is_subset_of(grant))
        });
        if !readable {
            tracing::warn!(
                target: "airssys::load",
                component,
                grant = %writing,
                "`{writing}` no longer implies read: files opened through it are write-only \
                 where `fs:read` does not allow the path (grant `{as_read}` to read them back); \
                 see docs/decisions/containment-filesystem.md"
            );
        }
    }
    if (has(Action::Write) || has(Action::Create)) && !has(Action::Delete) {
        tracing::warn!(
            target: "airssys::load",
            component,
            "`file.rename` now needs `fs:delete` on the file's path besides `fs:create` on the \
             destination, and this component holds no `fs:delete` grant; see \
             docs/decisions/containment-filesystem.md"
        );
    }
}

/// Whether the `fs` deny rule `deny` can match a path at or beneath the
/// virtual root `root` (a rule without a resource matches every path).
fn deny_reaches(deny: &Capability, root: &str) -> bool {
    if deny.domain() != Domain::Fs {
        return false;
    }
    let Some(ResourcePattern::Path(glob)) = deny.resource() else {
        return deny.resource().is_none();
    };
    let mut pattern = glob.segments().iter();
    for name in root.split('/').filter(|c| !c.is_empty()) {
        match pattern.next() {
            // The pattern ended above the root: with `**` it covers the
            // whole mount, without it only an ancestor of the root.
            None => return glob.has_rest(),
            Some(Segment::Any) => {}
            Some(Segment::Literal(literal)) if literal == name => {}
            Some(Segment::Literal(_)) => return false,
        }
    }
    true
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

/// One side of a rename: the directory, the name in it, and the virtual
/// path (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place<'a> {
    /// The directory holding the name.
    pub(crate) dir: &'a Dir,
    /// The name within `dir` (one component).
    pub(crate) name: &'a str,
    /// The virtual path, for messages.
    pub(crate) path: &'a str,
}

/// Renames the open file `opened` from `from` to `to`, never replacing an
/// entry at `to`, and only if `from` still names `opened`: the device and
/// inode of `from`'s entry are compared with the open file's just before
/// the rename, and of `to`'s entry just after it.
///
/// The rename itself is `renameat2(.., RENAME_NOREPLACE)` on Linux, so an
/// entry put at `to` at any moment is never replaced. Between the first
/// comparison and the rename, another process that can write the source
/// directory could still swap another file in at `from`; the comparison
/// after the rename catches that, moves the other file back (again
/// without replacing anything) and refuses. On a filesystem without
/// `RENAME_NOREPLACE` (or off Linux), an existence check before a plain
/// rename takes its place, which leaves a window in which an entry created
/// at `to` by someone else is replaced.
///
/// # Errors
///
/// [`FsError::Denied`] when `from` is a symlink or no longer names the open
/// file (nothing is renamed), [`FsError::AlreadyExists`] when something is
/// at `to`, others as [`io_error`] classifies them.
pub(crate) fn rename_opened(
    opened: &cap_std::fs::File,
    from: Place<'_>,
    to: Place<'_>,
) -> Result<(), FsError> {
    let opened_id = opened
        .metadata()
        .map_err(|e| FsError::Other(format!("`{}`: {e}", from.path)))
        .and_then(|m| identity(&m, from.path))?;
    let at_from = from.dir.symlink_metadata(from.name).map_err(|e| {
        match io_error(from.dir, from.name, from.path, &e) {
            FsError::NotFound(_) => moved_away(from.path),
            other => other,
        }
    })?;
    if at_from.file_type().is_symlink() {
        return Err(symlink_denied(from.path));
    }
    if identity(&at_from, from.path)? != opened_id {
        return Err(moved_away(from.path));
    }
    rename_noreplace(from, to)?;
    // Someone may have swapped another file in at `from` after the check:
    // then that file is what was moved. Put it back and refuse.
    let moved = to.dir.symlink_metadata(to.name).ok();
    let moved_id = moved.as_ref().and_then(|m| identity(m, to.path).ok());
    if moved_id == Some(opened_id) {
        return Ok(());
    }
    let undone = match rename_noreplace(to, from) {
        Ok(()) => "it was moved back".to_owned(),
        Err(e) => format!(
            "it could not be moved back ({e}) and is now at `{}`",
            to.path
        ),
    };
    Err(FsError::Denied(format!(
        "`{}` was replaced by another file while being renamed to `{}`; {undone}; the file \
         this handle opened was not renamed",
        from.path, to.path
    )))
}

/// The refusal when a handle's path no longer names its file.
fn moved_away(path: &str) -> FsError {
    FsError::Denied(format!(
        "`{path}` no longer names the file this handle opened (it was moved, removed or \
         replaced since it was opened); a rename acts on the opened file only, so nothing was \
         renamed"
    ))
}

/// The device and inode of `meta`.
#[cfg(unix)]
fn identity(meta: &cap_std::fs::Metadata, _path: &str) -> Result<(u64, u64), FsError> {
    use cap_std::fs::MetadataExt;
    Ok((meta.dev(), meta.ino()))
}

/// Off Unix the identity of an entry is not checked, so a rename is
/// refused rather than done on a name alone.
#[cfg(not(unix))]
fn identity(_meta: &cap_std::fs::Metadata, path: &str) -> Result<(u64, u64), FsError> {
    Err(FsError::Other(format!(
        "cannot rename `{path}`: this platform gives no file identity to check that the path \
         still names the opened file"
    )))
}

/// Renames `from` to `to` unless something is at `to`.
fn rename_noreplace(from: Place<'_>, to: Place<'_>) -> Result<(), FsError> {
    let failed = |e: &io::Error| match io_error(from.dir, from.name, from.path, e) {
        FsError::AlreadyExists(_) => exists_at(to.path),
        FsError::Other(_) => {
            FsError::Other(format!("renaming `{}` to `{}`: {e}", from.path, to.path))
        }
        other => other,
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(from.dir, from.name, to.dir, to.name, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // The filesystem has no RENAME_NOREPLACE: check, then rename.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(failed(&io::Error::from(e))),
        }
    }
    if to.dir.symlink_metadata(to.name).is_ok() {
        return Err(exists_at(to.path));
    }
    from.dir
        .rename(from.name, to.dir, to.name)
        .map_err(|e| failed(&e))
}

/// The refusal to replace an entry by a rename.
fn exists_at(path: &str) -> FsError {
    FsError::AlreadyExists(format!(
        "something already exists at `{path}`; a rename never replaces an entry (that would be \
         a delete): remove it first (capability `fs:delete:{path}`)"
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
    fn deny_rules_reach_into_mounts_by_their_segments() {
        let reaches =
            |deny: &str, root: &str| deny_reaches(&Capability::parse(deny).expect("valid"), root);
        assert!(reaches("fs:read:/data/secret/**", "/data"));
        assert!(reaches("fs:read:/data/secret", "/data"));
        assert!(reaches("fs:read:/data", "/data"));
        assert!(reaches("fs:read:/*/secret/**", "/data"));
        assert!(reaches("fs:read:/**", "/data/in"));
        assert!(reaches("fs:read:/data/**", "/data/in"));
        assert!(reaches("fs:write", "/data"));
        assert!(reaches("fs:read:/x/**", "/"));
        assert!(!reaches("fs:read:/data", "/data/in"));
        assert!(!reaches("fs:read:/other/**", "/data"));
        assert!(!reaches("fs:read:/database/**", "/data"));
        assert!(!reaches("kv:read:data/**", "/data"));
    }

    #[test]
    fn unmounted_path_names_the_roots() {
        let mounts = Mounts::default();
        let err = mounts.resolve("/data/x").expect_err("no mounts");
        assert!(matches!(&err, FsError::NotFound(m) if m.contains("no directory is mounted")));
    }
}
