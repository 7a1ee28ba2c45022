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

    /// Stops the server with SIGSTOP (it keeps its connections but answers
    /// nothing) until the returned guard is dropped (SIGCONT).
    pub(crate) fn pause(&self) -> Paused {
        let pid = self.child.id();
        signal("-STOP", pid);
        Paused { pid }
    }
}

/// A server stopped by [`JetStreamServer::pause`]; dropping it resumes
/// the server.
pub(crate) struct Paused {
    pid: u32,
}

impl Drop for Paused {
    fn drop(&mut self) {
        // No panic here: it may run while a failed assertion unwinds.
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .status();
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .expect("`kill` runs");
    assert!(status.success(), "kill {name} {pid}");
}

impl Drop for JetStreamServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
