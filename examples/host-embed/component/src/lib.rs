//! `greeter-guest`: the component `host-embed` runs.
//!
//! A request `<language> <name>` (e.g. `en Ada`) asks the host's own
//! greeter service (`example:greeter/greet`, not part of airssys) for the
//! greeting, logs it through airssys logging and answers it. The greeting
//! for a language needs `kv:read:phrasebook/<language>`: English is
//! required, French optional, and the host grants only English.

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
        let Some((language, name)) = request.split_once(' ') else {
            return Err(Error::InvalidInput(
                "send `<language> <name>`, e.g. `en Ada`".to_owned(),
            ));
        };
        let host = GreeterGuest::host();
        match host.greet().greet(language, name) {
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
