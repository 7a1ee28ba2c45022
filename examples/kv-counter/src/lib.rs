//! `kv-counter`: counts in the key-value bucket `counter`.
//!
//! - `init` adds one to `counter/starts` and logs the count.
//! - A request `get` answers the count, `increment` adds one and answers
//!   the new count, `reset` deletes the key.
//!
//! `reset` needs `kv:delete:counter/*`, which the component lists as
//! `optional` and which `policy.toml` does not grant: the host refuses
//! the call with `denied`, and the component passes that on.

#[airssys::component(
    requires = [
        "kv:read:counter/*",
        "kv:write:counter/*",
        "log:write",
    ],
    optional = ["kv:delete:counter/*"],
)]
struct KvCounter;

/// The bucket and the key holding the count.
const BUCKET: &str = "counter";
const KEY: &str = "starts";

impl guest::Lifecycle for KvCounter {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let other = |e: host::storage::Error| guest::lifecycle::Error::Other(e.to_string());
        let host = KvCounter::host();
        let bucket = host.storage().open(BUCKET).map_err(other)?;
        let starts = add_one(&bucket).map_err(other)?;
        let message = format!("started {starts} time(s)");
        let _ = host
            .logging()
            .log(host::logging::Level::Info, "kv-counter", &message);
        Ok(())
    }
}

impl guest::Handler for KvCounter {
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        use guest::handler::Error;
        let bucket = KvCounter::host()
            .storage()
            .open(BUCKET)
            .map_err(|e| Error::Other(e.to_string()))?;
        let answer = match payload.as_slice() {
            b"get" => read_count(&bucket).map(|n| n.to_string()),
            b"increment" => add_one(&bucket).map(|n| n.to_string()),
            b"reset" => bucket
                .delete(KEY)
                .map(|was| if was { "reset" } else { "nothing to reset" }.to_owned()),
            _ => {
                return Err(Error::InvalidInput(
                    "send `get`, `increment` or `reset`".to_owned(),
                ));
            }
        };
        answer.map(String::into_bytes).map_err(|e| match e {
            // The host's text already starts with "denied: ".
            host::storage::Error::Denied(m) => {
                Error::Denied(m.trim_start_matches("denied: ").to_owned())
            }
            e => Error::Other(e.to_string()),
        })
    }
}

/// Adds one to the count and returns the new value.
fn add_one(bucket: &host::storage::Bucket<KvCounter>) -> Result<u64, host::storage::Error> {
    let count = read_count(bucket)? + 1;
    bucket.set(KEY, &count.to_le_bytes())?;
    Ok(count)
}

/// The stored count; 0 before the first write.
fn read_count(bucket: &host::storage::Bucket<KvCounter>) -> Result<u64, host::storage::Error> {
    let value = bucket.get(KEY)?;
    Ok(value
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_le_bytes))
}
