//! Helpers shared by the CLI's end-to-end tests: run the built `airssys`
//! binary and read what it printed.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs `airssys` with `args` and waits for it.
pub(crate) fn airssys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `airssys` with `args` from the repository root, building component
/// crates into `<repo>/target/new-templates` (the target directory the
/// CLI tests share), and waits for it.
pub(crate) fn airssys_building(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(args)
        .current_dir(repo())
        .env(
            "CARGO_TARGET_DIR",
            repo().join("target").join("new-templates"),
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("runs airssys")
}

/// What the command printed on stdout.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// What the command printed on stderr.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// What the command printed on stdout, after asserting that it exited 0
/// (showing both streams when it did not).
pub(crate) fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Asserts that `needles` occur in `haystack` in this order.
pub(crate) fn assert_in_order(haystack: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        let Some(at) = haystack[from..].find(needle) else {
            panic!("`{needle}` not found (in order) in:\n{haystack}");
        };
        from += at + needle.len();
    }
}

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The repository root, absolute and without `..` (printed by tests and
/// written into generated crates).
pub(crate) fn repo_root() -> PathBuf {
    std::fs::canonicalize(repo()).unwrap()
}

/// `<repo>/target/new-templates`: the target directory every test that
/// builds a component crate shares, so airssys and its dependencies
/// compile for `wasm32-wasip2` once.
pub(crate) fn shared_target() -> PathBuf {
    repo_root().join("target").join("new-templates")
}

/// Writes a component crate named `name` whose every request is answered
/// with `<name> got <payload>` ([`component_crate`]). It declares no
/// capability, so it loads under any policy.
pub(crate) fn echo_crate(name: &str) -> PathBuf {
    let lib_rs = "//! Answers each request with its name and the payload.\n\
        \n\
        #[airssys::component]\n\
        struct Echo;\n\
        \n\
        impl guest::Lifecycle for Echo {}\n\
        \n\
        impl guest::Handler for Echo {\n\
        \x20   fn handle_request(\n\
        \x20       _source: String,\n\
        \x20       payload: Vec<u8>,\n\
        \x20   ) -> Result<Vec<u8>, guest::handler::Error> {\n\
        \x20       let payload = String::from_utf8_lossy(&payload);\n\
        \x20       Ok(format!(\"{} got {payload}\", env!(\"CARGO_PKG_NAME\")).into_bytes())\n\
        \x20   }\n\
        }\n";
    component_crate(name, lib_rs)
}

/// Writes a component crate named `name` with `lib_rs` as its
/// `src/lib.rs`, depending on this repository's airssys, and returns its
/// directory (under `<repo>/target/new-templates/fixtures`, inside the
/// airssys workspace so the pinned toolchain applies). Files already
/// holding the same text are not rewritten, so the crate is not rebuilt
/// for nothing.
pub(crate) fn component_crate(name: &str, lib_rs: &str) -> PathBuf {
    let repo = repo_root();
    let dir = shared_target().join("fixtures").join(name);
    let cargo_toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
         airssys = {{ path = {:?} }}\n\n[workspace]\n",
        repo.display().to_string()
    );
    for (path, text) in [
        (dir.join("Cargo.toml"), cargo_toml.as_str()),
        (dir.join("src").join("lib.rs"), lib_rs),
    ] {
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    dir
}

/// A component of world `app` in `wit` (resolved against the embedded
/// contract), whose core module is wit-component's dummy: it imports and
/// exports what the world does and does nothing. No manifest.
pub(crate) fn app_component(wit: &str) -> Vec<u8> {
    let mut resolve = airssys_contract::model::Contract::embedded()
        .resolve()
        .clone();
    let pkg = resolve.push_str("app.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("app")).unwrap();
    dummy_component(&resolve, world)
}

/// A component of `world` whose core module is wit-component's dummy.
pub(crate) fn dummy_component(
    resolve: &wit_parser::Resolve,
    world: wit_parser::WorldId,
) -> Vec<u8> {
    use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
    let mut module = dummy_module(resolve, world, wit_parser::ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8).unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// An answer: status and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// One HTTP/1.1 connection to `airssys serve`, kept alive across calls
/// (bodies with `Content-Length`, as the ingress answers).
pub(crate) struct Client {
    pub(crate) reader: BufReader<TcpStream>,
    pub(crate) writer: TcpStream,
}

impl Client {
    pub(crate) fn connect(address: SocketAddr) -> Client {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        Client {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    pub(crate) fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        // One write: a second small one would wait for the first's
        // delayed ACK (Nagle).
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {status_line:?}"))
            .parse()
            .unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Collects what `stream` prints, line by line, as it comes.
pub(crate) fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    text
}

/// What a spawned `airssys serve` printed so far, collected as it comes.
pub(crate) type Printed = Arc<Mutex<String>>;

/// `airssys serve ARGS` in `cwd`, with environment `env`, building into
/// `target` (compiled components cached in its `serve-cache`), on a free
/// loopback port unless `args` names `--listen`: the process and its
/// stdout and stderr. Shared by the serve and distributed tests.
pub(crate) fn spawn_serve(
    cwd: &Path,
    target: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, Printed, Printed) {
    let cache = target.join("serve-cache");
    std::fs::create_dir_all(&cache).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_airssys"));
    command.arg("serve").args(args);
    if !args.contains(&"--listen") {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    command
        .arg("--cache-dir")
        .arg(&cache)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("AIRSSYS_PATH")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("AIRSSYS_SERVE_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    (child, stdout, stderr)
}

/// The address a spawned `airssys serve` listens on, once it says so;
/// panics with its output when it exits first.
pub(crate) fn wait_listening(child: &mut Child, stdout: &Printed, stderr: &Printed) -> SocketAddr {
    // The first run builds the crates (minutes on a cold target).
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let text = stdout.lock().unwrap().clone();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            return rest.split_whitespace().next().unwrap().parse().unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "airssys serve exited ({status}) before listening:\n{text}\n{}",
                stderr.lock().unwrap()
            );
        }
        assert!(Instant::now() < deadline, "never listened:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `nats-server -js` of this test, on a free loopback port, killed on
/// drop: the workspace's one starter, shared with the runtime's tests.
#[path = "../../../runtime/tests/support/jetstream.rs"]
mod jetstream;

#[allow(unused_imports)]
pub(crate) use jetstream::JetStreamServer as NatsServer;

/// `quiet`: logs one record per request and answers `quiet got <payload>`
/// (serve_output.rs, audit_file.rs).
pub(crate) fn quiet_crate() -> std::path::PathBuf {
    component_crate(
        "quiet",
        r#"//! Logs one record per request and answers it.

#[airssys::component(optional = ["log:write"])]
struct Quiet;

impl guest::Lifecycle for Quiet {}

impl guest::Handler for Quiet {
    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let payload = String::from_utf8_lossy(&payload).into_owned();
        let _ = Quiet::host()
            .logging()
            .log(host::logging::Level::Info, "quiet", &format!("answering {payload}"));
        Ok(format!("quiet got {payload}").into_bytes())
    }
}
"#,
    )
}

/// `POST /v1/components/NAME/request` on a thread: the answer (status,
/// body) arrives on the receiver.
pub(crate) fn request_on_thread(
    address: SocketAddr,
    component: &str,
    body: &str,
) -> std::sync::mpsc::Receiver<(u16, String)> {
    let (send, receive) = std::sync::mpsc::channel();
    let path = format!("/v1/components/{component}/request");
    let body = body.to_owned();
    std::thread::spawn(move || {
        let answer = Client::connect(address).call("POST", &path, &[], body.as_bytes());
        let _ = send.send((answer.status, answer.body));
    });
    receive
}

/// The value of the `/metrics` line starting with `name`.
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
}

/// Kills the serve process on drop (the test failed).
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
