//! The embedded contract as a WIT directory that other toolchains read
//! as it is (`componentize-py -d`, `componentize-js --wit`,
//! `wit-bindgen c`): the files of `wit/`, or only the packages one world
//! needs with that world's package at the root.

use std::collections::{BTreeMap, BTreeSet};

use wit_parser::PackageId;

use super::Contract;
use super::embedded::EMBEDDED_FILES;

/// A WIT directory to write: relative paths (`/`-separated) and texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitTree {
    /// Every file, e.g. `worlds.wit` or `deps/core/storage.wit`, sorted.
    pub files: Vec<(String, &'static str)>,
    /// The root package, e.g. `airssys:ext@1.0.0`.
    pub root: String,
    /// Every package in the tree, the root first.
    pub packages: Vec<String>,
    /// The world asked for, qualified (`airssys:core/component@1.0.0`).
    pub world: Option<String>,
}

/// Why a tree could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// No world of the contract has that name (or it names several).
    #[error("world `{wanted}` is not in the contract; it defines: {}", worlds.join(", "))]
    UnknownWorld {
        /// The name given.
        wanted: String,
        /// Every world, qualified.
        worlds: Vec<String>,
    },
}

/// One package of the embedded sources: the directory its files sit in
/// (`` for the root, `deps/core`), and the files relative to it.
struct Group {
    files: Vec<(String, &'static str)>,
}

impl Contract {
    /// The embedded contract as a WIT directory.
    ///
    /// Without `world`, the files of this repository's `wit/` as they are
    /// (the root package `airssys:ext`, `deps/core/` holding
    /// `airssys:core`). With `world` (`component`, `airssys:core/component`
    /// or with its version), that world's package is the root and `deps/`
    /// holds only the packages it depends on, so the tree is the smallest
    /// one the world resolves in.
    ///
    /// # Errors
    ///
    /// [`ExportError::UnknownWorld`] listing the contract's worlds.
    ///
    /// # Examples
    ///
    /// ```
    /// use airssys_contract::model::Contract;
    ///
    /// let tree = Contract::export_tree(Some("airssys:core/component"))?;
    /// assert_eq!(tree.root, "airssys:core@1.0.0");
    /// assert!(tree.files.iter().all(|(path, _)| !path.starts_with("deps/")));
    /// # Ok::<(), airssys_contract::model::ExportError>(())
    /// ```
    pub fn export_tree(world: Option<&str>) -> Result<WitTree, ExportError> {
        let contract = Contract::embedded();
        let resolve = contract.resolve();
        let groups = groups();
        let package_of = |dir: &str| package_line(&groups[dir]);
        let Some(wanted) = world else {
            let mut files: Vec<(String, &'static str)> = EMBEDDED_FILES
                .iter()
                .map(|(path, text)| ((*path).to_owned(), *text))
                .collect();
            files.sort();
            let root = package_of("").unwrap_or_default();
            let mut packages = vec![root.clone()];
            packages.extend(
                groups
                    .keys()
                    .filter(|dir| !dir.is_empty())
                    .filter_map(|dir| package_of(dir)),
            );
            return Ok(WitTree {
                files,
                root,
                packages,
                world: None,
            });
        };
        let unknown = || ExportError::UnknownWorld {
            wanted: wanted.to_owned(),
            worlds: contract.worlds(),
        };
        let id = contract.world(wanted).ok_or_else(unknown)?;
        let pkg = resolve.worlds[id].package.ok_or_else(unknown)?;
        let needed = with_dependencies(resolve, pkg);
        let name_of = |p: PackageId| resolve.packages[p].name.to_string();
        let dir_of = |p: PackageId| {
            let name = name_of(p);
            groups
                .keys()
                .find(|dir| package_of(dir).as_deref() == Some(name.as_str()))
                .cloned()
        };
        let mut files = Vec::new();
        let mut packages = vec![name_of(pkg)];
        for &p in &needed {
            let Some(dir) = dir_of(p) else { continue };
            let target = if p == pkg {
                String::new()
            } else {
                let n = &resolve.packages[p].name;
                format!("deps/{}-{}/", n.namespace, n.name)
            };
            if p != pkg {
                packages.push(name_of(p));
            }
            for (file, text) in &groups[&dir].files {
                files.push((format!("{target}{file}"), *text));
            }
        }
        files.sort();
        Ok(WitTree {
            files,
            root: name_of(pkg),
            packages,
            world: Some(contract.world_name(id)),
        })
    }
}

/// The embedded files by package directory (`` is the root).
fn groups() -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (path, text) in EMBEDDED_FILES {
        let (dir, file) = match path.strip_prefix("deps/") {
            Some(rest) => match rest.split_once('/') {
                Some((dir, file)) => (format!("deps/{dir}"), file.to_owned()),
                // A single-file dependency: its own package.
                None => ((*path).to_owned(), rest.to_owned()),
            },
            None => (String::new(), (*path).to_owned()),
        };
        groups
            .entry(dir)
            .or_insert_with(|| Group { files: Vec::new() })
            .files
            .push((file, *text));
    }
    groups
}

/// The `package ns:name@version;` a group's files declare.
fn package_line(group: &Group) -> Option<String> {
    group.files.iter().find_map(|(_, text)| {
        text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("package ")?;
            Some(rest.trim_end_matches(';').trim().to_owned())
        })
    })
}

/// `pkg` and every package it depends on, `pkg` first.
fn with_dependencies(resolve: &wit_parser::Resolve, pkg: PackageId) -> Vec<PackageId> {
    let mut seen = BTreeSet::new();
    let mut order = Vec::new();
    let mut stack = vec![pkg];
    while let Some(p) = stack.pop() {
        if !seen.insert(p) {
            continue;
        }
        order.push(p);
        stack.extend(resolve.package_direct_deps(p));
    }
    order
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn write(tree: &WitTree) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in &tree.files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    #[test]
    fn the_whole_contract_loads_back_and_lints_clean() {
        let tree = Contract::export_tree(None).expect("tree");
        assert_eq!(tree.root, "airssys:ext@1.0.0");
        assert_eq!(tree.files.len(), EMBEDDED_FILES.len());
        let dir = write(&tree);
        let loaded = Contract::load_dir(dir.path()).expect("loads");
        assert!(loaded.lint().is_empty(), "{:?}", loaded.lint());
        assert_eq!(loaded.worlds(), Contract::embedded().worlds());
    }

    #[test]
    fn one_world_keeps_only_its_packages() {
        let tree = Contract::export_tree(Some("airssys:core/component")).expect("tree");
        assert_eq!(tree.packages, ["airssys:core@1.0.0"]);
        assert_eq!(tree.world.as_deref(), Some("airssys:core/component@1.0.0"));
        let dir = write(&tree);
        let loaded = Contract::load_dir(dir.path()).expect("loads");
        assert!(loaded.world("airssys:core/component").is_some());
        assert!(loaded.world("airssys:ext/component").is_none());

        let ext = Contract::export_tree(Some("airssys:ext/component")).expect("tree");
        assert_eq!(ext.packages, ["airssys:ext@1.0.0", "airssys:core@1.0.0"]);
        assert!(
            ext.files
                .iter()
                .any(|(p, _)| Path::new(p).starts_with("deps/airssys-core"))
        );
        let dir = write(&ext);
        let loaded = Contract::load_dir(dir.path()).expect("loads");
        assert!(loaded.world("airssys:ext/component").is_some());
    }

    #[test]
    fn an_unknown_world_lists_the_worlds() {
        let err = Contract::export_tree(Some("nope")).expect_err("unknown");
        let text = err.to_string();
        assert!(text.contains("airssys:core/component@1.0.0"), "{text}");
        // `component` alone names two worlds (core and ext): ambiguous.
        assert!(Contract::export_tree(Some("component")).is_err());
    }
}
