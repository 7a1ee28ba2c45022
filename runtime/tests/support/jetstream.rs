//! A `nats-server -js` of one test (Debian package `nats-server`), on a
//! free loopback port with its store in a temporary directory, killed on
//! drop. A missing `nats-server` fails the test, naming the package.
//!
//! The one starter of the workspace's tests: the runtime's integration
//! tests (`mod support`; `nats_connect.rs` alone), its KV unit tests
//! (`storage/nats_kv.rs`) and the CLI's tests (`cli/tests/common/mod.rs`)
//! include this file.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running server.
pub(crate) struct JetStreamServer {
    child: Child,
    port: u16,
    /// The arguments it runs with (port and store included).
    args: Vec<String>,
    dir: tempfile::TempDir,
}

impl JetStreamServer {
    pub(crate) fn start() -> JetStreamServer {
        JetStreamServer::start_with(&[])
    }

    /// With `extra` arguments before the address, port and store (e.g.
    /// `-c FILE`: they override the file's `listen`).
    pub(crate) fn start_with(extra: &[&str]) -> JetStreamServer {
        JetStreamServer::launch(extra, true)
    }

    /// A server without JetStream (`nats-server` without `-js`).
    pub(crate) fn start_without_jetstream() -> JetStreamServer {
        JetStreamServer::launch(&[], false)
    }

    /// Without JetStream, with `extra` arguments (e.g. `-c FILE`).
    pub(crate) fn start_core_with(extra: &[&str]) -> JetStreamServer {
        JetStreamServer::launch(extra, false)
    }

    fn launch(extra: &[&str], jetstream: bool) -> JetStreamServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut args: Vec<String> = extra.iter().map(|a| (*a).to_owned()).collect();
        args.extend(["-a", "127.0.0.1", "-p", &port.to_string()].map(str::to_owned));
        args.push("-l".to_owned());
        args.push(
            dir.path()
                .join("nats.log")
                .to_str()
                .expect("a UTF-8 path")
                .to_owned(),
        );
        if jetstream {
            args.extend(["-js", "-sd"].map(str::to_owned));
            args.push(dir.path().to_str().expect("a UTF-8 path").to_owned());
        }
        let child = spawn(port, &args);
        JetStreamServer {
            child,
            port,
            args,
            dir,
        }
    }

    /// Stops the server (SIGKILL).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server if it runs and starts it again, on the same port
    /// with the same store.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.port, &self.args);
    }

    /// Stops the server with SIGTERM (it writes its state and exits) and
    /// starts it again, on the same port with the same store.
    pub(crate) fn restart_gracefully(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.child = spawn(self.port, &self.args);
    }

    /// What the server has logged so far (`-l`, in its directory).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server with SIGSTOP (it keeps its connections but answers
    /// nothing) until the returned guard is dropped (SIGCONT).
    ///
    /// Returns once every thread of the server is stopped: a stop reaches
    /// each thread on its own, and one still running could answer a
    /// request sent just after the signal.
    pub(crate) fn pause(&self) -> Paused {
        let pid = self.child.id();
        signal("-STOP", pid);
        let paused = Paused { pid };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "nats-server {pid} did not stop");
            std::thread::sleep(Duration::from_millis(5));
        }
        paused
    }
}

/// `nats-server ARGS`, once it accepts connections on `port` (tried again
/// while the port is still held by a server stopped before).
fn spawn(port: u16, args: &[String]) -> Child {
    let program = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("nats-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut child = Command::new(program)
            .args(args)
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
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if child.try_wait().expect("the server's status").is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().expect("the server's status").is_none() {
            return child;
        }
        assert!(
            Instant::now() < deadline,
            "nats-server did not start (`nats-server {}`)",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(200));
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

/// Whether every thread of `pid` is stopped (state `T` in
/// `/proc/PID/task/TID/stat`, the field after the parenthesised name).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state == 'T' || state == 't')
        })
    })
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
        self.stop();
    }
}
