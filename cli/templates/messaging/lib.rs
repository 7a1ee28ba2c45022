//! `{{name}}`: announces itself on a topic when it starts, and answers
//! every message it receives with an acknowledgement on another topic.

#[airssys::component(
    requires = [
        "msg:publish:{{name}}.>",
        "log:write",
    ],
)]
struct {{type}};

/// Published once, when the component starts.
const STARTED: &str = "{{name}}.started";
/// Published for every message handled.
const ACKS: &str = "{{name}}.acks";

impl guest::Lifecycle for {{type}} {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let host = {{type}}::host();
        let me = host.messaging().self_name();
        host.messaging()
            .publish(STARTED, me.as_bytes())
            .map_err(|e| guest::lifecycle::Error::Other(describe(e)))
    }
}

impl guest::Handler for {{type}} {
    /// Logs the message, then publishes `ack <topic> <bytes>` on the
    /// acknowledgement topic.
    fn handle_message(message: guest::handler::Message) -> Result<(), guest::handler::Error> {
        let host = {{type}}::host();
        let size = message.payload.len();
        let text = format!(
            "{size} bytes on `{}` from `{}`",
            message.topic, message.source
        );
        let _ = host
            .logging()
            .log(host::logging::Level::Info, "{{name}}", &text);
        let ack = format!("ack {} {}", message.topic, size);
        host.messaging()
            .publish(ACKS, ack.as_bytes())
            .map_err(|e| guest::handler::Error::Other(describe(e)))
    }
}

/// The host's error as text for a person: its kind and message (the
/// bindings' `to_string()` would print Rust debug text).
fn describe(e: host::messaging::Error) -> String {
    use host::messaging::Error;
    match e {
        Error::Denied(m) => format!("denied: {m}"),
        Error::InvalidInput(m) => format!("invalid input: {m}"),
        Error::NotFound(m) => format!("not found: {m}"),
        Error::Timeout(m) => format!("timeout: {m}"),
        Error::QuotaExceeded(m) => format!("quota exceeded: {m}"),
        Error::Remote(m) => format!("remote: {m}"),
        Error::Other(m) => m,
    }
}
