//! The WIT contract model: packages → interfaces → host functions → the
//! capability each one requires, read from the `@capability` line of its
//! doc comment, and the lint that keeps the contract honest.
//!
//! ```
//! use airssys_contract::model::Contract;
//!
//! let contract = Contract::embedded();
//! assert!(contract.lint().is_empty());
//! println!("{}", contract.summary());
//! ```
//!
//! A *host interface* is one that some world imports, or that no world
//! exports; its functions are host functions and each carries a
//! `@capability` line. Interfaces that worlds only export (the component
//! side: lifecycle, message handler) carry no annotations.

mod embedded;
mod export;
mod lint;
mod requirement;
mod source;
mod usage;
mod wit_type;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wit_parser::{FunctionKind, InterfaceId, Resolve, WorldId, WorldItem};

pub use embedded::EMBEDDED_FILES;
pub use export::{ExportError, WitTree};
pub use lint::Problem;
pub use requirement::{ANNOTATION, CapabilityTemplate, Requirement, TemplatePart};
use source::Sources;
#[cfg(feature = "compat")]
pub(crate) use source::error_location;
pub use usage::{GuardedImport, HANDLER_INTERFACE, ImportUsage, Wording};
pub use wit_type::{NamedType, NamedTypeKind, WitType};

/// A loaded WIT contract: the resolved packages plus the host functions
/// and their capability requirements.
#[derive(Debug)]
pub struct Contract {
    resolve: Resolve,
    interfaces: Vec<Interface>,
    /// Interfaces that worlds only export (the component side).
    exported: Vec<InterfaceId>,
    sources: Sources,
}

/// A host interface of the contract.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// The interface's id in [`Contract::resolve`].
    pub id: InterfaceId,
    /// The package, e.g. `airssys:core@1.0.0`.
    pub package: String,
    /// The interface name, e.g. `storage`.
    pub name: String,
    /// The host functions: freestanding functions, then resource
    /// constructors, methods and static functions, in source order.
    pub functions: Vec<HostFunction>,
    /// The interface's doc comment.
    pub docs: String,
    /// Where the interface is declared.
    pub location: Location,
}

/// A function the host provides.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFunction {
    /// The WIT name: `open`, `[method]bucket.get`, `[constructor]bucket`,
    /// `[static]bucket.create`.
    pub name: String,
    /// The resource a constructor, method or static function belongs to.
    pub resource: Option<String>,
    /// What kind of function this is (freestanding, method, ...).
    pub kind: FunctionKind,
    /// The parameters as written in WIT; a method's implicit `self` is not
    /// listed.
    pub params: Vec<Param>,
    /// The result type, e.g. `result<bucket, error>` (its `Display`).
    pub result: Option<WitType>,
    /// What the function requires, from its `@capability` line.
    pub requirement: Requirement,
    /// The function's doc comment.
    pub docs: String,
    /// Where the function is declared (its name).
    pub location: Location,
}

/// A function parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The WIT name, e.g. `key`.
    pub name: String,
    /// The type, e.g. `list<u8>` (its `Display`).
    pub ty: WitType,
}

/// A place in a WIT file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// The file, as given to the loader (for the embedded contract:
    /// `wit/...`).
    pub file: PathBuf,
    /// The 1-based line.
    pub line: u32,
}

/// Counts for a one-line report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Packages in the contract (dependencies included).
    pub packages: usize,
    /// Named interfaces, host and component side.
    pub interfaces: usize,
    /// Host interfaces.
    pub host_interfaces: usize,
    /// Host functions.
    pub functions: usize,
    /// Host functions with a valid `@capability` annotation.
    pub annotated: usize,
}

/// Why a contract could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The path is not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The WIT does not parse or resolve. The message is wit-parser's, with
    /// the file, line and column of the problem and the offending source
    /// line.
    #[error("{message}")]
    Wit {
        /// The rendered error.
        message: String,
        /// The file and line of the problem (from wit-parser's span), if
        /// known.
        location: Option<Location>,
    },
    /// Embedded sources are laid out in a way a WIT directory cannot be.
    #[error("{}: {message}", path.display())]
    Layout {
        /// The offending source path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Contract {
    /// Loads the WIT directory `dir` (top-level `*.wit` files form the root
    /// package; `deps/` holds dependencies), as `wasm-tools component wit`
    /// does.
    ///
    /// Loading does not lint: call [`Contract::lint`].
    ///
    /// # Errors
    ///
    /// [`ContractError::NotADirectory`], or [`ContractError::Wit`] when the
    /// WIT does not parse or resolve (the message names file and line).
    pub fn load_dir(dir: &Path) -> Result<Contract, ContractError> {
        if !dir.is_dir() {
            return Err(ContractError::NotADirectory {
                path: dir.to_owned(),
            });
        }
        let mut resolve = Resolve::new();
        if let Err(e) = resolve.push_dir(dir) {
            return Err(ContractError::Wit {
                message: resolve.render_error(&e),
                location: source::error_location(&resolve.source_map, e.chain()),
            });
        }
        let sources = Sources::read(&resolve.source_map);
        Ok(Contract::build(resolve, sources))
    }

    /// Loads a contract from WIT sources in memory, laid out as in a WIT
    /// directory: `files` pairs a path relative to the directory
    /// (`storage.wit`, `deps/core/types.wit`, `deps/single.wit`) with its
    /// text. Locations name `root` joined with that path.
    ///
    /// # Errors
    ///
    /// As [`Contract::load_dir`]; [`ContractError::Layout`] for a path
    /// nested deeper than `deps/<name>/<file>`.
    pub fn from_sources(root: &Path, files: &[(&str, &str)]) -> Result<Contract, ContractError> {
        let (resolve, sources) = source::resolve_sources(root, files)?;
        Ok(Contract::build(resolve, sources))
    }

    /// The contract in this repository's `wit/`, embedded at build time.
    /// Locations name `wit/...`.
    ///
    /// # Panics
    ///
    /// Never in a released build: a test asserts the embedded contract
    /// loads and lints clean.
    pub fn embedded() -> &'static Contract {
        static EMBEDDED: OnceLock<Contract> = OnceLock::new();
        EMBEDDED.get_or_init(|| {
            Contract::from_sources(Path::new("wit"), EMBEDDED_FILES)
                .expect("the embedded contract resolves (tested)")
        })
    }

    fn build(resolve: Resolve, sources: Sources) -> Contract {
        let mut imported = HashSet::new();
        let mut exported = HashSet::new();
        for (_, world) in resolve.worlds.iter() {
            for (set, items) in [
                (&mut imported, &world.imports),
                (&mut exported, &world.exports),
            ] {
                for item in items.values() {
                    if let WorldItem::Interface { id, .. } = item {
                        set.insert(*id);
                    }
                }
            }
        }
        let mut interfaces = Vec::new();
        let mut component_side = Vec::new();
        for (_, package) in resolve.packages.iter() {
            for (name, &id) in &package.interfaces {
                if imported.contains(&id) || !exported.contains(&id) {
                    interfaces.push(build_interface(&resolve, &sources, id, name));
                } else {
                    component_side.push(id);
                }
            }
        }
        Contract {
            resolve,
            interfaces,
            exported: component_side,
            sources,
        }
    }

    /// The resolved WIT, for bindings generators and the compatibility
    /// checks.
    pub fn resolve(&self) -> &Resolve {
        &self.resolve
    }

    /// The host interfaces, in package and source order.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// A host interface by name: `storage` (when only one package has it),
    /// `airssys:core/storage` or `airssys:core/storage@1.0.0`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        if name.contains('/') {
            return self
                .interfaces
                .iter()
                .find(|i| i.qualified_name() == name || i.unversioned_name() == name);
        }
        let mut matches = self.interfaces.iter().filter(|i| i.name == name);
        let first = matches.next()?;
        matches.next().is_none().then_some(first)
    }

    /// A host function by interface (as in [`Contract::interface`]) and
    /// WIT name (`open`, `[method]bucket.get`).
    pub fn function(&self, interface: &str, name: &str) -> Option<&HostFunction> {
        self.interface(interface)?
            .functions
            .iter()
            .find(|f| f.name == name)
    }

    /// Every world, qualified: `airssys:core/component@1.0.0`.
    pub fn worlds(&self) -> Vec<String> {
        self.resolve
            .worlds
            .iter()
            .map(|(id, _)| self.world_name(id))
            .collect()
    }

    /// A world by name: `component` (when only one package has it),
    /// `airssys:core/component` or `airssys:core/component@1.0.0`.
    pub fn world(&self, name: &str) -> Option<WorldId> {
        let mut matches = self.resolve.worlds.iter().filter(|(id, world)| {
            let qualified = self.world_name(*id);
            qualified == name
                || qualified
                    .split_once('@')
                    .is_some_and(|(bare, _)| bare == name)
                || world.name == name
        });
        let (first, _) = matches.next()?;
        matches.next().is_none().then_some(first)
    }

    /// The host functions a world imports, with their interfaces, in import
    /// order; `None` when no world has that name.
    pub fn world_functions(&self, world: &str) -> Option<Vec<(&Interface, &HostFunction)>> {
        let world = &self.resolve.worlds[self.world(world)?];
        let mut out = Vec::new();
        for item in world.imports.values() {
            let WorldItem::Interface { id, .. } = item else {
                continue;
            };
            if let Some(interface) = self.interfaces.iter().find(|i| i.id == *id) {
                out.extend(interface.functions.iter().map(|f| (interface, f)));
            }
        }
        Some(out)
    }

    /// Counts: packages, interfaces, host functions, annotated ones.
    pub fn summary(&self) -> Summary {
        let functions = self.interfaces.iter().flat_map(|i| &i.functions);
        Summary {
            packages: self.resolve.packages.len(),
            interfaces: self.interfaces.len() + self.exported.len(),
            host_interfaces: self.interfaces.len(),
            functions: functions.clone().count(),
            annotated: functions
                .filter(|f| f.requirement != Requirement::Invalid)
                .count(),
        }
    }

    fn world_name(&self, id: WorldId) -> String {
        let world = &self.resolve.worlds[id];
        match world.package {
            Some(pkg) => self.resolve.id_of_name(pkg, &world.name),
            None => world.name.clone(),
        }
    }
}

impl Interface {
    /// The qualified name, e.g. `airssys:core/storage@1.0.0`.
    pub fn qualified_name(&self) -> String {
        match self.package.split_once('@') {
            Some((package, version)) => format!("{package}/{}@{version}", self.name),
            None => format!("{}/{}", self.package, self.name),
        }
    }

    /// The qualified name without version, e.g. `airssys:core/storage`.
    pub fn unversioned_name(&self) -> String {
        let package = self
            .package
            .split_once('@')
            .map_or(&*self.package, |(p, _)| p);
        format!("{package}/{}", self.name)
    }
}

impl HostFunction {
    /// Whether this is a resource method (it has a `self` handle).
    pub fn is_method(&self) -> bool {
        matches!(
            self.kind,
            FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
        )
    }

    /// The name as written inside the interface: `open`, `bucket.get`,
    /// `bucket.constructor`.
    pub fn display_name(&self) -> String {
        match (&self.resource, &self.kind) {
            (Some(resource), FunctionKind::Constructor(_)) => format!("{resource}.constructor"),
            (Some(_), _) => self
                .name
                .split_once(']')
                .map_or(self.name.clone(), |(_, rest)| rest.to_owned()),
            (None, _) => self.name.clone(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl fmt::Display for Summary {
    /// `2 packages, 11 interfaces (9 host), 58 host functions (58 annotated)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} packages, {} interfaces ({} host), {} host functions ({} annotated)",
            self.packages, self.interfaces, self.host_interfaces, self.functions, self.annotated
        )
    }
}

fn build_interface(resolve: &Resolve, sources: &Sources, id: InterfaceId, name: &str) -> Interface {
    let iface = &resolve.interfaces[id];
    let package = iface
        .package
        .map(|p| resolve.packages[p].name.to_string())
        .unwrap_or_default();
    // Freestanding functions first, then resource functions, each group in
    // source order, so listings read like the WIT.
    let mut funcs: Vec<_> = iface.functions.values().collect();
    funcs.sort_by_key(|f| (f.kind.resource().is_some(), f.span.start()));
    let functions = funcs
        .into_iter()
        .map(|f| build_function(resolve, sources, f))
        .collect();
    Interface {
        id,
        package,
        name: name.to_owned(),
        functions,
        docs: iface.docs.contents.clone().unwrap_or_default(),
        location: sources.location(&resolve.source_map, iface.span),
    }
}

fn build_function(resolve: &Resolve, sources: &Sources, f: &wit_parser::Function) -> HostFunction {
    let is_method = matches!(
        f.kind,
        FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
    );
    let params = f
        .params
        .iter()
        .skip(usize::from(is_method))
        .map(|p| Param {
            name: p.name.clone(),
            ty: WitType::from_resolve(resolve, p.ty),
        })
        .collect();
    let docs = f.docs.contents.clone().unwrap_or_default();
    HostFunction {
        name: f.name.clone(),
        resource: f
            .kind
            .resource()
            .and_then(|r| resolve.types[r].name.clone()),
        kind: f.kind.clone(),
        params,
        result: f
            .result
            .as_ref()
            .map(|t| WitType::from_resolve(resolve, *t)),
        requirement: requirement::requirement_of(&docs),
        docs,
        location: sources.location(&resolve.source_map, f.span),
    }
}
