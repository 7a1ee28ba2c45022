//! Host services of the embedder's own: a [`HostExtension`] serves one WIT
//! package next to the airssys contract.
//!
//! An extension brings three things: its WIT (so the load-time check
//! compares a component's imports of that package with it, as it does for
//! the contract), a function that links the package's host functions
//! (wasmtime `bindgen!` output implemented for [`HostState`]), and
//! optionally per-instance state the host functions reach with
//! [`HostState::extension`]. An extension with resources also says how a
//! handle of each is named ([`HostExtension::handle_name`]), so `{self}`
//! in a method's capability template resolves.

use std::any::Any;
use std::path::Path;

use wasmtime::component::Linker;
use wit_parser::{PackageId, Resolve, TypeDefKind};

use crate::error::BuildError;
use crate::host::handles::HandleNames;
use crate::host::state::HostState;

type LinkFn = dyn Fn(&mut Linker<HostState>) -> wasmtime::Result<()> + Send + Sync;
type StateFn = dyn Fn(&str) -> Box<dyn Any + Send> + Send + Sync;

/// A host service of the embedder's own: the WIT package it serves, how
/// its host functions are linked, and the state each instance gets.
///
/// Implement the `Host` trait(s) that wasmtime `bindgen!` generates for
/// your WIT on [`HostState`] (guard them with `#[airssys::host_impl(wit =
/// "wit", ..)]` and `#[airssys::host_fn(capability = "..")]`), then link
/// them with [`HostExtension::link`]. `HostState` implements
/// [`GuardContext`](airssys_contract::guard::GuardContext), so the guards
/// check the calling component's grants and write to the runtime's audit
/// log.
///
/// # Examples
///
/// ```no_run
/// use airssys_runtime::{HostExtension, HostState, Runtime};
///
/// # struct Phrasebook;
/// # fn add_to_linker(_: &mut airssys_runtime::wasmtime::component::Linker<HostState>)
/// #     -> airssys_runtime::wasmtime::Result<()> { Ok(()) }
/// let greeter = HostExtension::from_wit_str(
///     "greeter.wit",
///     "package example:greeter@0.1.0; interface greet { greet: func(name: string) -> string; }",
/// )?
/// // In a real host: `Service::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)`.
/// .link(add_to_linker)
/// .instance_state(|_component| Phrasebook);
/// let runtime = Runtime::builder().extension(greeter).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct HostExtension {
    served: Served,
    link: Option<Box<LinkFn>>,
    states: Vec<Box<StateFn>>,
    handle_names: HandleNames,
}

impl std::fmt::Debug for HostExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostExtension")
            .field("package", &self.served.name())
            .field("linked", &self.link.is_some())
            .field("states", &self.states.len())
            .field("handle_names", &self.handle_names)
            .finish()
    }
}

/// The WIT package an extension serves, kept for the load-time check.
pub(crate) struct Served {
    resolve: Resolve,
    package: PackageId,
}

impl Served {
    /// The WIT an import of [`Served::package`] is checked against.
    pub(crate) fn resolve(&self) -> &Resolve {
        &self.resolve
    }

    /// `example:greeter@0.1.0`.
    pub(crate) fn name(&self) -> String {
        self.resolve.packages[self.package].name.to_string()
    }

    /// The WIT names of the resources the package's interfaces define.
    fn resources(&self) -> Vec<&str> {
        self.resolve
            .interfaces
            .iter()
            .filter(|(_, interface)| interface.package == Some(self.package))
            .flat_map(|(_, interface)| interface.types.iter())
            .filter(|(_, ty)| matches!(self.resolve.types[**ty].kind, TypeDefKind::Resource))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Whether this extension serves packages named `namespace:name` (any
    /// version: the version rule is the check's job).
    pub(crate) fn serves(&self, namespace: &str, name: &str) -> bool {
        let own = &self.resolve.packages[self.package].name;
        own.namespace == namespace && own.name == name
    }
}

impl HostExtension {
    /// An extension serving the root package of the WIT directory `dir`
    /// (its top-level `*.wit` files; `deps/` may hold the packages it
    /// refers to, which it does not serve).
    ///
    /// # Errors
    ///
    /// [`BuildError::Extension`] when the WIT does not parse or resolve
    /// (the message names the file and line).
    pub fn from_wit_dir(dir: &Path) -> Result<HostExtension, BuildError> {
        let mut resolve = Resolve::new();
        match resolve.push_dir(dir) {
            Ok((package, _)) => Ok(HostExtension::new(resolve, package)),
            Err(e) => Err(BuildError::Extension {
                package: dir.display().to_string(),
                message: resolve.render_error(&e),
                source: None,
            }),
        }
    }

    /// An extension serving the package written in `text` (a single WIT
    /// file, typically `include_str!`-ed, so the host binary carries its
    /// WIT); `path` names it in error messages.
    ///
    /// # Errors
    ///
    /// [`BuildError::Extension`] when the WIT does not parse or resolve.
    pub fn from_wit_str(path: &str, text: &str) -> Result<HostExtension, BuildError> {
        let mut resolve = Resolve::new();
        match resolve.push_str(path, text) {
            Ok(package) => Ok(HostExtension::new(resolve, package)),
            Err(e) => Err(BuildError::Extension {
                package: path.to_owned(),
                message: resolve.render_error(&e),
                source: None,
            }),
        }
    }

    fn new(resolve: Resolve, package: PackageId) -> HostExtension {
        HostExtension {
            served: Served { resolve, package },
            link: None,
            states: Vec::new(),
            handle_names: HandleNames::default(),
        }
    }

    /// The package served, e.g. `example:greeter@0.1.0`.
    pub fn package(&self) -> String {
        self.served.name()
    }

    /// How the package's host functions are added to the runtime's
    /// linker, typically the `add_to_linker` that `bindgen!` generates:
    /// `|linker| Service::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)`.
    /// Called once, by [`RuntimeBuilder::build`](crate::RuntimeBuilder::build).
    pub fn link(
        mut self,
        link: impl Fn(&mut Linker<HostState>) -> wasmtime::Result<()> + Send + Sync + 'static,
    ) -> HostExtension {
        self.link = Some(Box::new(link));
        self
    }

    /// State every instance starts with, made by `make` from the
    /// component's name; the host functions reach it with
    /// [`HostState::extension`] / [`HostState::extension_mut`]. One value
    /// per type: a second `T` (from any extension) is never reached.
    /// Share data between instances by making an `Arc`.
    pub fn instance_state<T: Send + 'static>(
        mut self,
        make: impl Fn(&str) -> T + Send + Sync + 'static,
    ) -> HostExtension {
        self.states
            .push(Box::new(move |component| Box::new(make(component))));
        self
    }

    /// How a handle of the WIT resource `resource` (one of this
    /// extension's resources, by its WIT name: `"file"`) is named, for a
    /// `{self}` part of its methods' `@capability` templates: `name` reads
    /// the name from the value the handle stands for, the `T` that
    /// `bindgen!`'s `with: { "..file": T }` maps the resource to and that
    /// the host functions push into [`HostState::resource_table`].
    ///
    /// A guard on a method of `resource` then builds its request from
    /// `name(value)`, as the runtime does for the contract's `bucket` (a
    /// bucket's name) and `child` (the program). A handle that is not a
    /// `T` in the calling instance's table has no name, and the call is
    /// denied. Without this, every `{self}` call on `resource` is denied as
    /// made on an unknown handle.
    ///
    /// # Errors
    ///
    /// Checked by [`RuntimeBuilder::build`](crate::RuntimeBuilder::build),
    /// which returns [`BuildError::Extension`] when `resource` is not a
    /// resource of the package this extension serves, is named twice
    /// (here or by another extension: the guard knows a resource by its
    /// WIT name only), or is a contract resource whose handles the runtime
    /// names itself (`bucket`, `child`).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use airssys_runtime::{HostExtension, HostState, Runtime};
    ///
    /// /// What a `file` handle stands for (`with: { "example:files/files/file": OpenFile }`).
    /// struct OpenFile {
    ///     path: String,
    /// }
    ///
    /// # fn add_to_linker(_: &mut airssys_runtime::wasmtime::component::Linker<HostState>)
    /// #     -> airssys_runtime::wasmtime::Result<()> { Ok(()) }
    /// let files = HostExtension::from_wit_str(
    ///     "files.wit",
    ///     "package example:files@0.1.0;
    ///      interface files {
    ///        resource file {
    ///          /// @capability fs:read:{self}
    ///          read: func() -> list<u8>;
    ///        }
    ///        /// @capability none
    ///        open: func(path: string) -> file;
    ///      }",
    /// )?
    /// .link(add_to_linker)
    /// // `read` on a file opened as `/data/a.txt` asks for `fs:read:/data/a.txt`.
    /// .handle_name("file", |file: &OpenFile| file.path.as_str());
    /// let runtime = Runtime::builder().extension(files).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle_name<T: 'static>(
        mut self,
        resource: &str,
        name: impl Fn(&T) -> &str + Send + Sync + 'static,
    ) -> HostExtension {
        let package = self.served.name();
        self.handle_names.push(resource, package, name);
        self
    }
}

/// Every extension of one runtime.
#[derive(Default)]
pub(crate) struct Extensions {
    served: Vec<Served>,
    states: Vec<Box<StateFn>>,
    /// Moved into the runtime's shared services by `build()`, where every
    /// instance's guards reach it.
    pub(crate) handle_names: HandleNames,
}

impl Extensions {
    /// Links each extension into `linker` and keeps what the runtime needs
    /// later.
    ///
    /// # Errors
    ///
    /// [`BuildError::Extension`] when an extension has no link function,
    /// serves a package of the airssys contract or one another extension
    /// serves, names handles of a resource it does not serve, of a
    /// resource already named or of a contract resource the runtime names
    /// itself, or its link function fails.
    pub(crate) fn install(
        extensions: Vec<HostExtension>,
        linker: &mut Linker<HostState>,
    ) -> Result<Extensions, BuildError> {
        let contract = airssys_contract::model::Contract::embedded().resolve();
        let mut installed = Extensions::default();
        for extension in extensions {
            let package = extension.served.name();
            let fail = |message: String| BuildError::Extension {
                package: package.clone(),
                message,
                source: None,
            };
            let (namespace, name) = {
                let own = &extension.served.resolve.packages[extension.served.package].name;
                (own.namespace.clone(), own.name.clone())
            };
            if contract
                .packages
                .iter()
                .any(|(_, p)| p.name.namespace == namespace && p.name.name == name)
            {
                return Err(fail(format!(
                    "`{namespace}:{name}` is part of the airssys contract, which the runtime \
                     serves itself; an extension serves a package of its own"
                )));
            }
            if installed.served.iter().any(|s| s.serves(&namespace, &name)) {
                return Err(fail(format!(
                    "another extension already serves `{namespace}:{name}`"
                )));
            }
            let Some(link) = extension.link else {
                return Err(fail(
                    "no link function: call `.link(|linker| ..::add_to_linker(..))` on the \
                     extension"
                        .to_owned(),
                ));
            };
            let names: Vec<&str> = extension.handle_names.resources().collect();
            for (i, &resource) in names.iter().enumerate() {
                let twice = names[..i].contains(&resource);
                check_handle_name(&extension.served, resource, twice, &installed.handle_names)
                    .map_err(&fail)?;
            }
            link(linker).map_err(|e| BuildError::Extension {
                package: package.clone(),
                message: format!("linking failed: {e}"),
                source: Some(e),
            })?;
            installed.handle_names.extend(extension.handle_names);
            installed.served.push(extension.served);
            installed.states.extend(extension.states);
        }
        Ok(installed)
    }

    /// The packages the extensions serve.
    pub(crate) fn served(&self) -> &[Served] {
        &self.served
    }

    /// The per-instance state of a new instance of `component`.
    pub(crate) fn instance_states(&self, component: &str) -> Vec<Box<dyn Any + Send>> {
        self.states.iter().map(|make| make(component)).collect()
    }
}

/// Whether `.handle_name(resource, ..)` of the extension serving `served`
/// may be installed: `resource` is one of its WIT resources, not named
/// twice (`twice`: earlier in the same extension), not named by an
/// extension installed before (`installed`), and not a contract resource
/// whose handles the runtime names itself.
///
/// # Errors
///
/// The message of the [`BuildError::Extension`], naming the resource and
/// what it clashes with.
fn check_handle_name(
    served: &Served,
    resource: &str,
    twice: bool,
    installed: &HandleNames,
) -> Result<(), String> {
    let call = format!("`.handle_name(\"{resource}\", ..)`");
    let resources = served.resources();
    if !resources.contains(&resource) {
        let known = if resources.is_empty() {
            "it has none".to_owned()
        } else {
            format!("its resources: {}", resources.join(", "))
        };
        return Err(format!(
            "{call}: `{}` has no resource `{resource}` ({known})",
            served.name()
        ));
    }
    if crate::host::handles::names_contract_handles(resource) {
        return Err(format!(
            "{call}: `{resource}` is also a resource of the airssys contract, whose handles \
             the runtime names itself, and a guard knows a resource by its WIT name only; \
             rename the extension's resource"
        ));
    }
    if twice {
        return Err(format!(
            "{call} is given twice; name each resource's handles once"
        ));
    }
    if let Some(other) = installed.named_by(resource) {
        return Err(format!(
            "{call}: the extension serving `{other}` already names the handles of a resource \
             `{resource}`, and a guard knows a resource by its WIT name only; rename one of \
             the two resources"
        ));
    }
    Ok(())
}
