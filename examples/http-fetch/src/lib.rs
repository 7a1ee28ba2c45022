//! `http-fetch`: answers each request, an address such as
//! `127.0.0.1:8080/hello` (an `http://` prefix is accepted), with the
//! response to an HTTP GET of it: `<status> <bytes> bytes: <first line of
//! the body>`.
//!
//! The manifest declares `net:http:127.0.0.1:*`, HTTP to any port of the
//! loopback address, as `optional`: the host policy decides which ports
//! (a required capability would have to be granted whole). A port the
//! policy does not grant is denied by the host, and the component answers
//! with the refusal.

#[airssys::component(requires = ["log:write"], optional = ["net:http:127.0.0.1:*"])]
struct HttpFetch;

/// How long one exchange may take, in milliseconds.
const TIMEOUT_MS: u64 = 5_000;

impl guest::Lifecycle for HttpFetch {}

impl guest::Handler for HttpFetch {
    fn handle_request(_source: String, payload: Vec<u8>) -> Result<Vec<u8>, guest::handler::Error> {
        use guest::handler::Error;
        let target = String::from_utf8(payload)
            .map_err(|_| Error::InvalidInput("send an address as UTF-8 text".to_owned()))?;
        let target = target.trim();
        let target = target.strip_prefix("http://").unwrap_or(target);
        let (authority, path) = match target.find('/') {
            Some(at) => target.split_at(at),
            None => (target, "/"),
        };
        let response = get(authority, path).map_err(|e| match e {
            // The host's text already starts with "denied: ".
            host::network::Error::Denied(m) => {
                Error::Denied(m.trim_start_matches("denied: ").to_owned())
            }
            e => Error::Other(format!("GET {authority}{path}: {e}")),
        })?;
        let body = String::from_utf8_lossy(&response.body);
        let first_line = body.lines().next().unwrap_or_default();
        let answer = format!(
            "{} {} bytes: {first_line}",
            response.status,
            response.body.len()
        );
        let text = format!("GET {authority}{path} -> {answer}");
        let _ = HttpFetch::host()
            .logging()
            .log(host::logging::Level::Info, "http-fetch", &text);
        Ok(answer.into_bytes())
    }
}

/// Sends `GET path` to `authority` over plain HTTP and waits for the
/// response.
fn get(authority: &str, path: &str) -> Result<host::network::HttpResponse, host::network::Error> {
    let request = host::network::HttpRequest {
        method: host::network::HttpMethod::Get,
        tls: false,
        path_and_query: path.to_owned(),
        headers: vec![host::network::KeyValue {
            key: "user-agent".to_owned(),
            value: "airssys-http-fetch".to_owned(),
        }],
        body: Vec::new(),
        timeout_ms: Some(TIMEOUT_MS),
    };
    let pending = HttpFetch::host().network().send_http(authority, &request)?;
    // The host answers `none` while the exchange runs. It serves no
    // pollables yet (docs/network.md), so poll with a short sleep; the
    // host ends the exchange after `timeout_ms`.
    loop {
        if let Some(response) = pending.get()? {
            return Ok(response);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
