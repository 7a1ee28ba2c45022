//! A `nats-server -js` of one test (Debian package `nats-server`), on a
//! free loopback port with its store in a temporary directory, killed on
//! drop. A missing `nats-server` fails the test, naming the package.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running server.
pub(crate) struct JetStreamServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl JetStreamServer {
    pub(crate) fn start() -> JetStreamServer {
        JetStreamServer::start_with(&[])
    }

    /// With `extra` arguments before the port and store (e.g. `-c FILE`:
    /// they override the file's `listen`).
    #[allow(dead_code)]
    pub(crate) fn start_with(extra: &[&str]) -> JetStreamServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let program = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nats-server");
        let child = Command::new(program)
            .args(extra)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `nats-server` ({e}): this test needs it; install it with \
                     `apt-get install nats-server`"
                )
            });
        let server = JetStreamServer {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for JetStreamServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
