//! The greeter service: `example:greeter/greet` (from `wit/greeter.wit`)
//! implemented on the runtime's [`HostState`], its capability checked by
//! `#[airssys::host_fn]` against the WIT's `@capability` line.

use std::collections::BTreeMap;
use std::sync::Arc;

use airssys_runtime::wasmtime::component::HasSelf;
use airssys_runtime::{BuildError, HostExtension, HostState};

use self::bindings::example::greeter::greet::{Error, Host};

/// Host bindings for the `service` world (only `example:greeter/greet`).
#[allow(missing_docs, unreachable_pub)]
mod bindings {
    airssys_runtime::wasmtime::component::bindgen!({
        world: "example:greeter/service",
        path: "wit",
        wasmtime_crate: airssys_runtime::wasmtime,
    });
}

/// Phrases per language, shared by every instance.
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

// The WIT says `@capability kv:read:phrasebook/{language}`: the guard
// builds `kv:read:phrasebook/<language>` from the argument and checks it
// against the scope below, then against the calling component's grants.
#[airssys::host_impl(interface = "example:greeter/greet", wit = "wit")]
impl Host for HostState {
    #[airssys::host_fn(capability = "kv:read:phrasebook/*")]
    fn greet(&mut self, language: String, name: String) -> Result<String, Error> {
        let Some(book) = self.extension::<Arc<Phrasebook>>() else {
            return Err(Error::Other("the phrasebook is not installed".to_owned()));
        };
        match book.0.get(language.as_str()) {
            Some(phrase) => Ok(phrase.replace("{name}", &name)),
            None => Err(Error::UnknownLanguage(language)),
        }
    }

    // `@capability none`: no guard.
    fn languages(&mut self) -> Vec<String> {
        self.extension::<Arc<Phrasebook>>()
            .map(|book| book.0.keys().map(|k| (*k).to_owned()).collect())
            .unwrap_or_default()
    }
}

/// The greeter as a runtime extension: its WIT (embedded, for the load-time
/// check), its linker entries, and the phrasebook every instance shares.
pub(crate) fn extension() -> Result<HostExtension, BuildError> {
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
