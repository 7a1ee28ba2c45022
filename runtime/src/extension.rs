//! Host services of the embedder's own: a [`HostExtension`] serves one WIT
//! package next to the airssys contract.
//!
//! An extension brings three things: its WIT (so the load-time check
//! compares a component's imports of that package with it, as it does for
//! the contract), a function that links the package's host functions
//! (wasmtime `bindgen!` output implemented for [`HostState`]), and
//! optionally per-instance state the host functions reach with
//! [`HostState::extension`].

use std::any::Any;
use std::path::Path;

use wasmtime::component::Linker;
use wit_parser::{PackageId, Resolve};

use crate::error::BuildError;
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
}

impl std::fmt::Debug for HostExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostExtension")
            .field("package", &self.served.name())
            .field("linked", &self.link.is_some())
            .field("states", &self.states.len())
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
            }),
        }
    }

    fn new(resolve: Resolve, package: PackageId) -> HostExtension {
        HostExtension {
            served: Served { resolve, package },
            link: None,
            states: Vec::new(),
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
}

/// Every extension of one runtime.
#[derive(Default)]
pub(crate) struct Extensions {
    served: Vec<Served>,
    states: Vec<Box<StateFn>>,
}

impl Extensions {
    /// Links each extension into `linker` and keeps what the runtime needs
    /// later.
    ///
    /// # Errors
    ///
    /// [`BuildError::Extension`] when an extension has no link function,
    /// serves a package of the airssys contract or one another extension
    /// serves, or its link function fails.
    pub(crate) fn install(
        extensions: Vec<HostExtension>,
        linker: &mut Linker<HostState>,
    ) -> Result<Extensions, BuildError> {
        let contract = airssys_contract::contract::Contract::embedded().resolve();
        let mut installed = Extensions::default();
        for extension in extensions {
            let package = extension.served.name();
            let fail = |message: String| BuildError::Extension {
                package: package.clone(),
                message,
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
            link(linker).map_err(|e| fail(format!("linking failed: {e:?}")))?;
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
