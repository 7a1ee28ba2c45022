//! `file-indexer`: when it starts, walks the directory mounted at `/data`,
//! reads every file it may read, and writes `/out/index.txt`: one line per
//! file, `<path>\t<bytes> bytes\t<lines> lines`, or `<path>\tnot readable:
//! <reason>` when the host refused to open it.
//!
//! What `/data` and `/out` are is the host's choice (`mounts` in the
//! policy, or `airssys run --mount`). The component sees only those
//! virtual paths; `..` and symbolic links cannot leave them.

#[airssys::component(
    requires = [
        "fs:list:/data",
        "fs:list:/data/**",
        "fs:read:/data/**",
        "fs:create:/out/index.txt",
        "log:write",
    ],
    optional = ["fs:write:/out/index.txt"],
)]
struct FileIndexer;

/// The directory indexed.
const ROOT: &str = "/data";
/// Where the index goes.
const INDEX: &str = "/out/index.txt";
/// Bytes asked for per read (the host returns at most 1 MiB per call).
const CHUNK: u32 = 64 * 1024;

use host::filesystem::{EntryKind, Error as FsError};

impl guest::Lifecycle for FileIndexer {
    fn init(_config: Vec<guest::lifecycle::KeyValue>) -> Result<(), guest::lifecycle::Error> {
        let failed = |what: &str, e: FsError| {
            guest::lifecycle::Error::Other(format!("{what}: {}", error_text(&e)))
        };
        let mut files = Vec::new();
        walk(ROOT, &mut files).map_err(|e| failed(ROOT, e))?;
        let mut index = String::new();
        let (mut read, mut refused) = (0, 0);
        for path in &files {
            match read_file(path) {
                Ok(bytes) => {
                    read += 1;
                    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
                    index.push_str(&format!("{path}\t{} bytes\t{lines} lines\n", bytes.len()));
                }
                // A file the host does not let us read is listed as such;
                // the rest of the index is still useful.
                Err(e) => {
                    refused += 1;
                    let reason = error_text(&e);
                    log(
                        host::logging::Level::Warn,
                        &format!("skipping {path}: {reason}"),
                    );
                    index.push_str(&format!("{path}\tnot readable: {reason}\n"));
                }
            }
        }
        write_index(index.as_bytes()).map_err(|e| failed(INDEX, e))?;
        log(
            host::logging::Level::Info,
            &format!("indexed {read} file(s) under {ROOT}, {refused} not readable; wrote {INDEX}"),
        );
        Ok(())
    }
}

impl guest::Handler for FileIndexer {}

/// Adds the files under `dir` to `files`, depth first, in name order.
fn walk(dir: &str, files: &mut Vec<String>) -> Result<(), FsError> {
    let mut entries = FileIndexer::host().filesystem().list_dir(dir)?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries {
        let path = format!("{dir}/{}", entry.name);
        match entry.kind {
            EntryKind::File => files.push(path),
            EntryKind::Directory => walk(&path, files)?,
            // Links and special files are not followed.
            EntryKind::Other => {}
        }
    }
    Ok(())
}

/// The whole content of the file at `path`.
fn read_file(path: &str) -> Result<Vec<u8>, FsError> {
    let file = FileIndexer::host().filesystem().open_read(path)?;
    let mut content = Vec::new();
    loop {
        // Filesystem reads complete when started: `get` answers at once.
        let chunk = file
            .read(content.len() as u64, CHUNK)?
            .get()?
            .unwrap_or_default();
        if chunk.is_empty() {
            return Ok(content);
        }
        content.extend_from_slice(&chunk);
    }
}

/// Writes the index, replacing an earlier one when `fs:write` is granted.
fn write_index(bytes: &[u8]) -> Result<(), FsError> {
    let fs = FileIndexer::host().filesystem();
    let file = match fs.create(INDEX) {
        Err(FsError::AlreadyExists(_)) => {
            let file = fs.open_write(INDEX)?;
            file.set_size(0)?;
            file
        }
        other => other?,
    };
    let mut written = 0;
    while written < bytes.len() {
        let done = file
            .write(written as u64, &bytes[written..])?
            .get()?
            .unwrap_or_default();
        if done == 0 {
            return Err(FsError::Other("the host wrote nothing".to_owned()));
        }
        written += usize::try_from(done).unwrap_or(usize::MAX);
    }
    Ok(())
}

/// The error's text without the variant name.
fn error_text(error: &FsError) -> String {
    match error {
        FsError::Denied(m)
        | FsError::NotFound(m)
        | FsError::AlreadyExists(m)
        | FsError::InvalidInput(m)
        | FsError::QuotaExceeded(m)
        | FsError::Other(m) => m.clone(),
    }
}

fn log(level: host::logging::Level, text: &str) {
    let _ = FileIndexer::host()
        .logging()
        .log(level, "file-indexer", text);
}
