//! `{{name}}`: when it starts, lists the files directly under `/data`,
//! reads each one and logs its size and number of lines.

#[airssys::component(
    requires = [
        "fs:list:/data",
        "fs:read:/data/*",
        "log:write",
    ],
)]
struct {{type}};

/// The directory the component reads; the host maps it to one of its own.
const DIR: &str = "/data";
/// Bytes asked for per read.
const CHUNK: u32 = 64 * 1024;

impl guest::Lifecycle for {{type}} {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let other = |e: host::filesystem::Error| guest::lifecycle::Error::Other(describe(e));
        let host = {{type}}::host();
        let entries = host.filesystem().list_dir(DIR).map_err(other)?;
        for entry in entries {
            if entry.kind != host::filesystem::EntryKind::File {
                continue;
            }
            let path = format!("{DIR}/{}", entry.name);
            let bytes = read_file(&path).map_err(other)?;
            let lines = bytes.iter().filter(|&&b| b == b'\n').count();
            let text = format!("{path}: {} bytes, {lines} lines", bytes.len());
            let _ = host
                .logging()
                .log(host::logging::Level::Info, "{{name}}", &text);
        }
        Ok(())
    }
}

impl guest::Handler for {{type}} {}

/// The whole content of the file at `path`.
fn read_file(path: &str) -> Result<Vec<u8>, host::filesystem::Error> {
    let host = {{type}}::host();
    let file = host.filesystem().open_read(path)?;
    let mut content = Vec::new();
    loop {
        let pending = file.read(content.len() as u64, CHUNK)?;
        let chunk = loop {
            if let Some(chunk) = pending.get()? {
                break chunk;
            }
            let ready = pending.subscribe();
            host.poll()
                .poll(&[&ready], None)
                .map_err(|e| host::filesystem::Error::Other(describe_poll(e)))?;
        };
        if chunk.is_empty() {
            return Ok(content);
        }
        content.extend_from_slice(&chunk);
    }
}

/// The host's error as text for a person: its kind and message (the
/// bindings' `to_string()` would print Rust debug text).
fn describe(e: host::filesystem::Error) -> String {
    use host::filesystem::Error;
    match e {
        Error::Denied(m) => format!("denied: {m}"),
        Error::NotFound(m) => format!("not found: {m}"),
        Error::AlreadyExists(m) => format!("already exists: {m}"),
        Error::InvalidInput(m) => format!("invalid input: {m}"),
        Error::QuotaExceeded(m) => format!("quota exceeded: {m}"),
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
