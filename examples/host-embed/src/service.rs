//! The greeter service: `example:greeter/greet` (from `wit/greeter.wit`)
//! implemented on the runtime's [`HostState`], its capabilities checked by
//! `#[airssys::host_fn]` against the WIT's `@capability` lines: on a
//! function (`{language}`, an argument) and on a method of the
//! `phrasebook` resource (`{self}`, the language the handle was opened
//! for, named by [`HostExtension::handle_name`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use airssys_runtime::wasmtime;
use airssys_runtime::wasmtime::component::{HasSelf, Resource};
use airssys_runtime::{BuildError, HostExtension, HostState};

use self::bindings::example::greeter::greet::{self, Error, Host, HostPhrasebook};

/// Host bindings for the `service` world (only `example:greeter/greet`).
#[allow(missing_docs, unreachable_pub)]
mod bindings {
    airssys_runtime::wasmtime::component::bindgen!({
        world: "example:greeter/service",
        path: "wit",
        wasmtime_crate: airssys_runtime::wasmtime,
        // A `phrasebook` handle stands for an `OpenBook` in the instance's
        // resource table (`greet::Phrasebook` is this type).
        with: { "example:greeter/greet.phrasebook": crate::service::OpenBook },
    });
}

/// What a `phrasebook` handle stands for: the language it was opened for.
/// `open` pushes one into [`HostState::resource_table`].
// `pub`: `bindgen!` re-exports it as `greet::Phrasebook`.
#[allow(unreachable_pub)]
#[derive(Debug)]
pub struct OpenBook {
    language: String,
}

/// Phrases per language, shared by every instance (the data; a handle of
/// the WIT resource `phrasebook` is an [`OpenBook`]).
#[derive(Debug)]
pub(crate) struct Phrasebook(BTreeMap<&'static str, &'static str>);

impl Phrasebook {
    fn new() -> Phrasebook {
        Phrasebook(BTreeMap::from([
            ("en", "Hello, {name}!"),
            ("fr", "Bonjour, {name} !"),
        ]))
    }
}

/// The greeting for `name` in `language`, from the shared phrasebook.
fn greeting(state: &HostState, language: String, name: &str) -> Result<String, Error> {
    let Some(book) = state.extension::<Arc<Phrasebook>>() else {
        return Err(Error::Other("the phrasebook is not installed".to_owned()));
    };
    match book.0.get(language.as_str()) {
        Some(phrase) => Ok(phrase.replace("{name}", name)),
        None => Err(Error::UnknownLanguage(language)),
    }
}

// The WIT says `@capability kv:read:phrasebook/{language}`: the guard
// builds `kv:read:phrasebook/<language>` from the argument and checks it
// against the scope below, then against the calling component's grants.
#[airssys::host_impl(interface = "example:greeter/greet", wit = "wit")]
impl Host for HostState {
    #[airssys::host_fn(capability = "kv:read:phrasebook/*")]
    fn greet(&mut self, language: String, name: String) -> Result<String, Error> {
        greeting(self, language, &name)
    }

    // `@capability none`: no guard. The check is on the handle's methods.
    fn open(&mut self, language: String) -> Result<Resource<greet::Phrasebook>, Error> {
        let known = self
            .extension::<Arc<Phrasebook>>()
            .is_some_and(|book| book.0.contains_key(language.as_str()));
        if !known {
            return Err(Error::UnknownLanguage(language));
        }
        self.resource_table()
            .push(OpenBook { language })
            .map_err(|e| Error::Other(format!("cannot open the phrasebook: {e}")))
    }

    // `@capability none`: no guard.
    fn languages(&mut self) -> Vec<String> {
        self.extension::<Arc<Phrasebook>>()
            .map(|book| book.0.keys().map(|k| (*k).to_owned()).collect())
            .unwrap_or_default()
    }
}

// The WIT says `@capability kv:read:phrasebook/{self}`: the guard asks the
// runtime for the handle's name (the `OpenBook`'s language, see
// `handle_name` below) and builds `kv:read:phrasebook/<language>` from it.
#[airssys::host_impl(interface = "example:greeter/greet", wit = "wit")]
impl HostPhrasebook for HostState {
    #[airssys::host_fn(capability = "kv:read:phrasebook/*")]
    fn greet(&mut self, self_: Resource<greet::Phrasebook>, name: String) -> Result<String, Error> {
        let language = match self.resource_table().get(&self_) {
            Ok(open) => open.language.clone(),
            Err(e) => return Err(Error::Other(format!("not a phrasebook: {e}"))),
        };
        greeting(self, language, &name)
    }

    // The destructor: unchecked.
    fn drop(&mut self, rep: Resource<greet::Phrasebook>) -> wasmtime::Result<()> {
        self.resource_table().delete(rep)?;
        Ok(())
    }
}

/// The greeter as a runtime extension: [`greeter`] and how a `phrasebook`
/// handle is named (for `{self}`).
pub(crate) fn extension() -> Result<HostExtension, BuildError> {
    Ok(greeter()?
        // `{self}` of a `phrasebook`'s method: the language it was opened for.
        .handle_name("phrasebook", |open: &OpenBook| open.language.as_str()))
}

/// Its WIT (embedded, for the load-time check), its linker entries and
/// the phrasebook every instance shares; without [`extension`]'s
/// `.handle_name(..)`, every call of a `phrasebook`'s method is denied on
/// an unknown handle (the README's third mistake, `tests/run.rs`).
pub(crate) fn greeter() -> Result<HostExtension, BuildError> {
    let phrasebook = Arc::new(Phrasebook::new());
    Ok(
        HostExtension::from_wit_str("wit/greeter.wit", include_str!("../wit/greeter.wit"))?
            .link(|linker| {
                bindings::Service::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| {
                    state
                })
            })
            .instance_state(move |_component| Arc::clone(&phrasebook)),
    )
}
