//! How a handle is named for `{self}` in a method's `@capability`
//! template: the runtime names the handles of the contract's `bucket` (its
//! bucket name) and `child` (its program) itself; an extension names its
//! own resources' handles with
//! [`HostExtension::handle_name`](crate::HostExtension::handle_name).

use wasmtime::component::{Resource, ResourceTable};

use super::process::Child;
use super::storage::Bucket;

/// The name of handle `rep` in a resource table, type-erased: `None` when
/// the table holds no value of the resource's Rust type at `rep`.
type HandleNameFn = dyn for<'a> Fn(&'a ResourceTable, u32) -> Option<&'a str> + Send + Sync;

/// `name` of the `T` at a rep of the table, as the type-erased
/// [`HandleNameFn`] (the `impl` return gives the closure its
/// higher-ranked signature).
fn table_lookup<T: 'static>(
    name: impl Fn(&T) -> &str + Send + Sync + 'static,
) -> impl for<'a> Fn(&'a ResourceTable, u32) -> Option<&'a str> + Send + Sync + 'static {
    move |table, rep| {
        // A wrong type or a rep with nothing in it is an error of `get`:
        // no name, so the guard denies.
        table.get(&Resource::<T>::new_borrow(rep)).ok().map(&name)
    }
}

/// The extensions' handle namers, by WIT resource name: what
/// [`HostState`](super::state::HostState)'s `GuardContext::handle_name`
/// asks for resources other than the contract's.
#[derive(Default)]
pub(crate) struct HandleNames {
    /// Few entries (one per resource with `{self}` methods): a scan beats
    /// hashing.
    names: Vec<HandleNamer>,
}

/// How handles of one resource are named.
struct HandleNamer {
    /// The WIT resource name, as the guard passes it.
    resource: String,
    /// The package of the extension that registered it, for messages.
    package: String,
    name: Box<HandleNameFn>,
}

impl std::fmt::Debug for HandleNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.names.iter().map(|n| &n.resource))
            .finish()
    }
}

impl HandleNames {
    /// Names the handles of the resource `resource` (of the extension
    /// serving `package`) with `name`, applied to the `T` a handle stands
    /// for.
    pub(crate) fn push<T: 'static>(
        &mut self,
        resource: &str,
        package: String,
        name: impl Fn(&T) -> &str + Send + Sync + 'static,
    ) {
        self.names.push(HandleNamer {
            resource: resource.to_owned(),
            package,
            name: Box::new(table_lookup(name)),
        });
    }

    /// The resources named, in the order they were pushed.
    pub(crate) fn resources(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| n.resource.as_str())
    }

    /// Adds every namer of `other`.
    pub(crate) fn extend(&mut self, other: HandleNames) {
        self.names.extend(other.names);
    }

    /// The package of the extension naming `resource`'s handles.
    pub(crate) fn named_by(&self, resource: &str) -> Option<&str> {
        self.names
            .iter()
            .find(|n| n.resource == resource)
            .map(|n| n.package.as_str())
    }

    /// The name of handle `rep` of `resource` in `table`, for `{self}`:
    /// the runtime's own name for a contract resource's handle, else the
    /// extension's; `None` when nobody names `resource`'s handles or `rep`
    /// is not one of them.
    pub(crate) fn name<'a>(
        &self,
        table: &'a ResourceTable,
        resource: &str,
        rep: u32,
    ) -> Option<&'a str> {
        if let Some(name) = contract_handle_name(table, resource, rep) {
            return name;
        }
        let namer = self.names.iter().find(|n| n.resource == resource)?;
        (namer.name)(table, rep)
    }
}

/// The name of handle `rep` of the contract's resource `resource`, for
/// `{self}`: `Some(..)` when the runtime names `resource`'s handles itself
/// (the inner `None`: `rep` is not such a handle), `None` for any other
/// resource.
fn contract_handle_name<'a>(
    table: &'a ResourceTable,
    resource: &str,
    rep: u32,
) -> Option<Option<&'a str>> {
    match resource {
        "bucket" => Some(
            table
                .get(&Resource::<Bucket>::new_borrow(rep))
                .ok()
                .map(|b| b.name.as_str()),
        ),
        "child" => Some(
            table
                .get(&Resource::<Child>::new_borrow(rep))
                .ok()
                .map(|c| c.program.as_str()),
        ),
        _ => None,
    }
}

/// Whether the runtime names the handles of the contract resource
/// `resource` itself (so an extension may not name a resource of its own
/// so).
pub(crate) fn names_contract_handles(resource: &str) -> bool {
    contract_handle_name(&ResourceTable::new(), resource, 0).is_some()
}
