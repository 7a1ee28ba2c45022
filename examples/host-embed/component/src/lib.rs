//! `greeter-guest`: the component `host-embed` runs.
//!
//! Two request forms, both answered with a greeting from the host's own
//! greeter service (`example:greeter/greet`, not part of airssys), logged
//! through airssys logging:
//!
//! - `<language> <name>` (e.g. `en Ada`) calls the function `greet`, whose
//!   capability is built from its `language` argument;
//! - `book <language> <name>` (e.g. `book fr Ada`) opens the `phrasebook`
//!   resource for the language and calls its method `greet`, whose
//!   capability is built from the handle (`{self}`: the language it was
//!   opened for).
//!
//! Either way the greeting for a language needs
//! `kv:read:phrasebook/<language>`: English is required, French optional,
//! and the host grants only English.

#[airssys::component(
    wit = "../wit",
    world = "example:greeter/guest",
    requires = ["log:write", "kv:read:phrasebook/en"],
    optional = ["kv:read:phrasebook/fr"],
)]
struct GreeterGuest;

impl guest::Handler for GreeterGuest {
    fn handle_request(_source: String, payload: Vec<u8>) -> Result<Vec<u8>, guest::handler::Error> {
        use guest::handler::Error;
        let request = String::from_utf8(payload)
            .map_err(|_| Error::InvalidInput("the request is not UTF-8".to_owned()))?;
        let (through_book, rest) = match request.strip_prefix("book ") {
            Some(rest) => (true, rest),
            None => (false, request.as_str()),
        };
        let Some((language, name)) = rest.split_once(' ') else {
            return Err(Error::InvalidInput(
                "send `<language> <name>` or `book <language> <name>`, e.g. `en Ada`".to_owned(),
            ));
        };
        let host = GreeterGuest::host();
        let greeting = if through_book {
            // The handle's method is checked against the language the
            // phrasebook was opened for; opening needs no capability.
            host.greet()
                .open(language)
                .and_then(|book| book.greet(name))
        } else {
            host.greet().greet(language, name)
        };
        match greeting {
            Ok(greeting) => {
                let _ = host
                    .logging()
                    .log(host::logging::Level::Info, "greeter-guest", &greeting);
                Ok(greeting.into_bytes())
            }
            Err(host::greet::Error::Denied(message)) => Err(Error::Denied(message)),
            Err(host::greet::Error::UnknownLanguage(language)) => Err(Error::InvalidInput(
                format!("the phrasebook has no `{language}`"),
            )),
            Err(host::greet::Error::Other(message)) => Err(Error::Other(message)),
        }
    }
}
