//! `airssys serve`'s HTTP ingress under hostile or broken clients: one
//! client address holding every connection, clients that never read
//! their answers. A well-behaved client on another address must still be
//! answered within 5 s.
//!
//! The clients bind loopback addresses of their own (127.0.0.1 for the
//! attacker, 127.0.0.2 for the well-behaved client; all of 127.0.0.0/8 is
//! loopback on Linux).

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const NEIGHBOUR: [u8; 4] = [127, 0, 0, 2];

/// Descriptors the tests need: the attacker's 1,024 connections on both
/// ends (the served host inherits this process's limit) and the rest.
const DESCRIPTORS: u64 = 2_400;

/// Raises this process's soft limit of open files to [`DESCRIPTORS`]
/// (within the hard limit); fails saying how when the hard limit is lower.
fn enough_descriptors() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|n| n >= DESCRIPTORS) || limit.current.is_none() {
        return;
    }
    let hard = limit.maximum;
    assert!(
        hard.is_none_or(|n| n >= DESCRIPTORS),
        "these tests open about {DESCRIPTORS} descriptors; the hard limit of open files is \
         {hard:?}: raise it (`ulimit -Hn {DESCRIPTORS}` as root, or `nofile` in \
         /etc/security/limits.conf)"
    );
    let mut raised = limit;
    raised.current = Some(DESCRIPTORS);
    setrlimit(Resource::Nofile, raised).expect("raise the soft limit of open files");
}

/// `airssys serve` of an echo component with `args`, killed on drop.
struct Served {
    child: Child,
    address: SocketAddr,
    /// Holds the policy file.
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        enough_descriptors();
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, "").unwrap();
        let echo = common::echo_crate("serve-echo");
        let mut all = vec![echo.to_str().unwrap(), "--policy", policy.to_str().unwrap()];
        all.extend_from_slice(args);
        let (mut child, stdout, stderr) =
            common::spawn_serve(&common::repo_root(), &common::shared_target(), &all, &[]);
        let address = common::wait_listening(&mut child, &stdout, &stderr);
        let served = Served {
            child,
            address,
            _dir: dir,
        };
        // Ready once the echo answers.
        let runtime = runtime();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let up = || {
            runtime.block_on(async {
                let request = echo_request(b"up");
                let asked = ask(NEIGHBOUR, address, &request);
                tokio::time::timeout(Duration::from_secs(5), asked).await
            })
        };
        while !up().is_ok_and(|answer| answer.starts_with("HTTP/1.1 200")) {
            assert!(std::time::Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        served
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A connection from the loopback address `from`, with a receive buffer
/// of `receive_buffer` bytes if given.
async fn connect(
    from: [u8; 4],
    to: SocketAddr,
    receive_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.bind((from, 0).into())?;
    socket.connect(to).await
}

/// `POST /v1/components/serve-echo/request` with `body`, closing after.
fn echo_request(body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /v1/components/serve-echo/request HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

const HEALTH: &[u8] = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// `request` on a new connection from `from`: the whole answer (empty
/// when the connection was closed unanswered).
async fn ask(from: [u8; 4], to: SocketAddr, request: &[u8]) -> String {
    let Ok(mut stream) = connect(from, to, None).await else {
        return String::new();
    };
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// [`ask`], failing when no answer comes within 5 s.
async fn answered_within_5_s(from: [u8; 4], to: SocketAddr, request: &[u8], what: &str) -> String {
    tokio::time::timeout(Duration::from_secs(5), ask(from, to, request))
        .await
        .unwrap_or_else(|_| panic!("{what} was not answered within 5 s"))
}

/// Opens `count` connections from `from`, each starting a request whose
/// body never comes (a slow upload); keeps them open.
fn hold_connections(
    from: [u8; 4],
    to: SocketAddr,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            tokio::spawn(async move {
                let Ok(mut stream) = connect(from, to, None).await else {
                    return;
                };
                let _ = stream
                    .write_all(
                        b"POST /v1/components/serve-echo/request HTTP/1.1\r\nHost: x\r\n\
                          Content-Length: 1000\r\n\r\nx",
                    )
                    .await;
                // Held until the server closes it.
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
                std::future::pending::<()>().await;
            })
        })
        .collect()
}

/// Reproduces the hole: with the default bounds (1,024 connections), one
/// address opening 1,024 slow uploads took every connection, and another
/// client's `GET /v1/health` waited in the listen queue (seen failing on
/// the branch point, "was not answered within 5 s").
#[test]
fn one_address_holding_every_connection_leaves_the_others_served() {
    let served = Served::start(&[]);
    let runtime = runtime();
    runtime.block_on(async {
        let held = hold_connections(ATTACKER, served.address, 1024);
        // Let them connect and be accepted (or closed).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let answer = answered_within_5_s(NEIGHBOUR, served.address, HEALTH, "GET /v1/health").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let answer = answered_within_5_s(
            NEIGHBOUR,
            served.address,
            &echo_request(b"hi"),
            "a request to serve-echo",
        )
        .await;
        assert!(answer.ends_with("serve-echo got hi"), "{answer}");
        for task in held {
            task.abort();
        }
    });
}

/// `--max-connections` and `--max-connections-per-address` are in
/// force: with one connection per address, the attacker's second
/// connection is closed at once and another address is served.
#[test]
fn the_connection_bounds_are_taken_from_the_flags() {
    let served = Served::start(&[
        "--max-connections",
        "4",
        "--max-connections-per-address",
        "1",
    ]);
    let runtime = runtime();
    runtime.block_on(async {
        let _first = connect(ATTACKER, served.address, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer =
            answered_within_5_s(ATTACKER, served.address, HEALTH, "a second connection").await;
        assert_eq!(
            answer, "",
            "a second connection of one address is closed unanswered"
        );
        let answer = answered_within_5_s(NEIGHBOUR, served.address, HEALTH, "GET /v1/health").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    });
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--max-connections-per-address", "0"),
    ] {
        let out = common::airssys(&["serve", "x.wasm", "--policy", "p.toml", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        assert!(
            common::stderr(&out).contains(flag),
            "{}",
            common::stderr(&out)
        );
    }
}

/// A client that asks for answers and never reads them holds only its
/// connections, never the component: the reply is made whole before it
/// is written. (Passes on the branch point too: this answers "does a
/// stalled write hold the component's worker?" — no.)
#[test]
fn clients_that_never_read_their_answers_hold_no_component() {
    let served = Served::start(&[]);
    let runtime = runtime();
    runtime.block_on(async {
        let payload = vec![b'x'; 1024 * 1024];
        let mut stalled = Vec::new();
        for _ in 0..8 {
            let mut stream = connect(ATTACKER, served.address, Some(4096)).await.unwrap();
            stream.write_all(&echo_request(&payload)).await.unwrap();
            stalled.push(stream);
        }
        let answer = answered_within_5_s(
            NEIGHBOUR,
            served.address,
            &echo_request(b"hi"),
            "a request to serve-echo",
        )
        .await;
        assert!(answer.ends_with("serve-echo got hi"), "{answer}");
        drop(stalled);
    });
}
