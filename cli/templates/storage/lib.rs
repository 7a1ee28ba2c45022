//! `{{name}}`: counts its starts in a key-value bucket and answers
//! requests with the current count.

#[airssys::component(
    requires = [
        "kv:read:counter/*",
        "kv:write:counter/*",
        "log:write",
    ],
)]
struct {{type}};

/// The bucket and the key holding the count.
const BUCKET: &str = "counter";
const KEY: &str = "starts";

impl guest::Lifecycle for {{type}} {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let other = |e: host::storage::Error| guest::lifecycle::Error::Other(describe(e));
        let host = {{type}}::host();
        let bucket = host.storage().open(BUCKET).map_err(other)?;
        let starts = read_count(&bucket).map_err(other)? + 1;
        bucket.set(KEY, &starts.to_le_bytes()).map_err(other)?;
        let message = format!("started {starts} time(s)");
        let _ = host
            .logging()
            .log(host::logging::Level::Info, "{{name}}", &message);
        Ok(())
    }
}

impl guest::Handler for {{type}} {
    /// Any request is answered with the count, as decimal text.
    fn handle_request(
        _source: String,
        _payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let other = |e: host::storage::Error| guest::handler::Error::Other(describe(e));
        let bucket = {{type}}::host().storage().open(BUCKET).map_err(other)?;
        let starts = read_count(&bucket).map_err(other)?;
        Ok(starts.to_string().into_bytes())
    }
}

/// The stored count; 0 before the first write.
fn read_count(bucket: &host::storage::Bucket<{{type}}>) -> Result<u64, host::storage::Error> {
    let value = bucket.get(KEY)?;
    Ok(value
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_le_bytes))
}

/// The host's error as text for a person: its kind and message (the
/// bindings' `to_string()` would print Rust debug text).
fn describe(e: host::storage::Error) -> String {
    use host::storage::Error;
    match e {
        Error::Denied(m) => format!("denied: {m}"),
        Error::InvalidInput(m) => format!("invalid input: {m}"),
        Error::QuotaExceeded(m) => format!("quota exceeded: {m}"),
        Error::Other(m) => m,
    }
}
