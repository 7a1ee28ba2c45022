//! `{{name}}`: when it starts, sends an HTTP GET to the host named in its
//! configuration (`authority`, e.g. `example.com:443`, and `path`) and logs
//! the response's status and size.

#[airssys::component(
    requires = [
        "net:http:example.com:443",
        "log:write",
    ],
)]
struct {{type}};

/// How long the whole exchange may take.
const TIMEOUT_MS: u64 = 10_000;

impl guest::Lifecycle for {{type}} {
    fn init(config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let setting = |key: &str| {
            config
                .iter()
                .find(|kv| kv.key == key)
                .map(|kv| kv.value.as_str())
        };
        let authority = setting("authority").ok_or_else(|| {
            guest::lifecycle::Error::InvalidConfig(
                "`authority` is missing; set it to `host:port` in the policy's `config`".into(),
            )
        })?;
        let path = setting("path").unwrap_or("/");
        let response =
            get(authority, path).map_err(|e| guest::lifecycle::Error::Other(describe(e)))?;
        let text = format!(
            "GET {authority}{path}: status {}, {} bytes",
            response.status,
            response.body.len()
        );
        let _ = {{type}}::host()
            .logging()
            .log(host::logging::Level::Info, "{{name}}", &text);
        Ok(())
    }
}

impl guest::Handler for {{type}} {}

/// Sends `GET path` to `authority` (HTTPS on port 443, HTTP otherwise) and
/// waits for the response.
fn get(authority: &str, path: &str) -> Result<host::network::HttpResponse, host::network::Error> {
    let host = {{type}}::host();
    let request = host::network::HttpRequest {
        method: host::network::HttpMethod::Get,
        tls: authority.ends_with(":443"),
        path_and_query: path.to_owned(),
        headers: vec![host::network::KeyValue {
            key: "user-agent".to_owned(),
            value: "{{name}}".to_owned(),
        }],
        body: Vec::new(),
        timeout_ms: Some(TIMEOUT_MS),
    };
    let pending = host.network().send_http(authority, &request)?;
    loop {
        if let Some(response) = pending.get()? {
            return Ok(response);
        }
        let ready = pending.subscribe();
        host.poll()
            .poll(&[&ready], Some(TIMEOUT_MS))
            .map_err(|e| host::network::Error::Other(describe_poll(e)))?;
    }
}

/// The host's error as text for a person: its kind and message (the
/// bindings' `to_string()` would print Rust debug text).
fn describe(e: host::network::Error) -> String {
    use host::network::Error;
    match e {
        Error::Denied(m) => format!("denied: {m}"),
        Error::InvalidInput(m) => format!("invalid input: {m}"),
        Error::Unresolved(m) => format!("unresolved: {m}"),
        Error::Refused(m) => format!("refused: {m}"),
        Error::Timeout(m) => format!("timeout: {m}"),
        Error::Closed(m) => format!("closed: {m}"),
        Error::Other(m) => m,
    }
}

/// A `poll` error as text for a person.
fn describe_poll(e: host::poll::Error) -> String {
    use host::poll::Error;
    match e {
        Error::Denied(m) => format!("denied: {m}"),
        Error::InvalidInput(m) => format!("invalid input: {m}"),
        Error::Other(m) => m,
    }
}
