//! Hostile probes: the network service (`airssys:ext/network`). A hostile
//! component tries to reach addresses its policy does not name (loopback
//! through its own manifest, this host's interface addresses, a name that
//! resolves to loopback), to take every network slot, to hold them with a
//! slow server, and to make the host hold results; each attempt ends in a
//! refusal or limit error naming the rule or limit while the neighbour
//! keeps serving.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use airssys_runtime::Runtime;

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{ask, fixture, runtime_with};

#[path = "../support/netprobe.rs"]
mod netprobe_support;

use netprobe_support::raw_http_server;

/// How long a test server waits for its clients.
const LIMIT: Duration = Duration::from_secs(20);

fn hello(_: &str, s: &mut TcpStream) {
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nhi there");
}

fn local() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    (listener, port)
}

fn load(runtime: &Runtime, bytes: &[u8]) -> airssys_runtime::Instance {
    runtime
        .load(bytes)
        .expect("the component loads")
        .instantiate()
        .expect("the component starts")
}

/// Item 1: a manifest naming loopback under a policy wildcard once
/// reached a loopback server (the manifest's pattern counted as the
/// explicit address grant).
#[test]
fn loopback_named_only_by_the_manifest_is_refused() {
    let (listener, port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:*:*\"]\n{NEIGHBOUR_POLICY}"
    ));
    let bytes = netprobe_support::netprobe_as("netprobe", &["net:http:127.0.0.1:*"]);
    let reply = while_serving(&runtime, || {
        let mut hostile = load(&runtime, &bytes);
        ask(&mut hostile, &format!("http GET 127.0.0.1:{port} /secret"))
    });
    assert!(reply.starts_with("error: denied:"), "{reply}");
    assert!(
        reply.contains(&format!("`net:http:127.0.0.1:{port}`")),
        "{reply}"
    );
    assert!(reply.contains("rule of the host policy itself"), "{reply}");
    listener.set_nonblocking(true).expect("non-blocking");
    assert!(
        listener.accept().is_err(),
        "no connection reached the server"
    );
}

/// Item 2: a service bound to every interface is reachable through the
/// host's own LAN address; a wildcard grant no longer reaches it.
#[test]
fn this_hosts_interface_address_is_refused() {
    let own = if_addrs::get_if_addrs()
        .expect("interfaces")
        .into_iter()
        .map(|i| i.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.to_string().starts_with("169.254."));
    let Some(own) = own else {
        eprintln!("skipped: this machine has no non-loopback IPv4 interface address");
        return;
    };
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:connect:*:*\"]\n{NEIGHBOUR_POLICY}"
    ));
    let reply = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        ask(&mut hostile, &format!("tcp-connect {own}:{port}"))
    });
    assert!(reply.starts_with("error: denied:"), "{reply}");
    assert!(
        reply.contains(&format!("`net:connect:{own}:{port}`")),
        "{reply}"
    );
    assert!(reply.contains("this host's own"), "{reply}");
    listener.set_nonblocking(true).expect("non-blocking");
    assert!(
        listener.accept().is_err(),
        "no connection reached the server"
    );
}

/// Item 3: a name grant works by itself for public addresses, but DNS
/// cannot lead it to a special one: `localhost` resolves to loopback.
#[test]
fn a_name_grant_resolving_to_loopback_is_refused() {
    let (listener, port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:localhost:{port}\"]\n{NEIGHBOUR_POLICY}"
    ));
    let reply = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        ask(&mut hostile, &format!("http GET localhost:{port} /secret"))
    });
    assert!(reply.starts_with("error: denied:"), "{reply}");
    assert!(
        reply.contains(&format!("`localhost:{port}` resolved to")),
        "{reply}"
    );
    assert!(reply.contains("loopback"), "{reply}");
    assert!(reply.contains("rule of the host policy itself"), "{reply}");
    listener.set_nonblocking(true).expect("non-blocking");
    assert!(
        listener.accept().is_err(),
        "no connection reached the server"
    );
}

/// Item 4: one component takes every network slot it may (requests to a
/// server that never answers); the 33rd is refused naming the limit, and
/// another component still gets its own slots.
#[test]
fn an_in_flight_flood_leaves_other_components_their_slots() {
    // Never accepts: the kernel completes the connections, nobody answers.
    let (silent, silent_port) = local();
    let (serving, serving_port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:127.0.0.1:{silent_port}\"]\n\n\
         [components.netfriend]\ngrants = [\"net:http:127.0.0.1:{serving_port}\"]\n\
         {NEIGHBOUR_POLICY}"
    ));
    let friend_bytes = netprobe_support::netprobe_as(
        "netfriend",
        &[&format!("net:http:127.0.0.1:{serving_port}")],
    );
    let (flood, friend, answered) = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        let mut friend = load(&runtime, &friend_bytes);
        // Servers start once the components are compiled, so their
        // deadlines do not run meanwhile.
        let answered = raw_http_server(serving, 1, LIMIT, hello);
        let flood = ask(
            &mut hostile,
            &format!("http-hold 127.0.0.1:{silent_port} /x 100"),
        );
        // The flood's requests are all still running.
        let friend = ask(
            &mut friend,
            &format!("http GET 127.0.0.1:{serving_port} /hello"),
        );
        (flood, friend, answered)
    });
    assert!(
        flood.starts_with("refused after 32: error: other: network in-flight limit exceeded"),
        "{flood}"
    );
    assert!(flood.contains("limits.max_net_in_flight"), "{flood}");
    assert_eq!(friend, "status: 200 body: hi there");
    assert_eq!(answered.join().expect("server"), 1);
    drop(silent);
}

/// Item 4: a server that sends one byte at a time cannot hold a slot
/// past the operation's deadline (made short through the policy); the
/// slot is free again afterwards.
#[test]
fn a_slow_loris_server_is_cut_off_at_the_deadline() {
    let (listener, port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:127.0.0.1:{port}\"]\nlimits = {{ \
         net_timeout_ms = 1000, max_net_in_flight = 1 }}\n{NEIGHBOUR_POLICY}"
    ));
    let slow = move || {
        raw_http_server(listener, 2, LIMIT, |path, s| {
            if path != "/slow" {
                return hello(path, s);
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            for _ in 0..100 {
                if s.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let (cut, after, slow) = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        let slow = slow();
        let cut = ask(&mut hostile, &format!("http GET 127.0.0.1:{port} /slow"));
        let after = ask(&mut hostile, &format!("http GET 127.0.0.1:{port} /hello"));
        (cut, after, slow)
    });
    assert!(cut.starts_with("error: timeout:"), "{cut}");
    assert!(cut.contains("within 1000 ms"), "{cut}");
    assert!(cut.contains("limits.net_timeout_ms"), "{cut}");
    assert_eq!(
        after, "status: 200 body: hi there",
        "the slot was given back"
    );
    assert_eq!(slow.join().expect("server"), 2);
}

/// Item 4: dropping a pending request cancels it (the server sees the
/// connection close) and gives its slot back at once.
#[test]
fn dropping_a_pending_request_cancels_it_and_frees_its_slot() {
    let (listener, port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:127.0.0.1:{port}\"]\nlimits = {{ \
         max_net_in_flight = 1 }}\n{NEIGHBOUR_POLICY}"
    ));
    // Reads each request and never answers; reports each request read and
    // each connection the client closes.
    let (read_tx, read) = mpsc::channel();
    let (closed_tx, closed) = mpsc::channel();
    let watcher = move || {
        raw_http_server(listener, 2, LIMIT, move |_, s| {
            let _ = read_tx.send(());
            let tx = closed_tx.clone();
            let mut s = s.try_clone().expect("clone");
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                let _ = tx.send(());
            });
        })
    };
    let (held, second, released, closed_in_time, again, watcher) = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        let watcher = watcher();
        let held = ask(&mut hostile, &format!("http-hold 127.0.0.1:{port} /x 1"));
        // The request is on the wire, waiting for its response.
        read.recv_timeout(LIMIT)
            .expect("the request reached the server");
        let second = ask(&mut hostile, &format!("http-hold 127.0.0.1:{port} /x 1"));
        let released = ask(&mut hostile, "release");
        let closed_in_time = closed.recv_timeout(Duration::from_secs(10)).is_ok();
        let again = ask(&mut hostile, &format!("http-hold 127.0.0.1:{port} /x 1"));
        read.recv_timeout(LIMIT)
            .expect("the new request reached the server");
        (held, second, released, closed_in_time, again, watcher)
    });
    assert_eq!(held, "started 1");
    assert!(
        second.starts_with("refused after 0: error: other: network in-flight limit exceeded"),
        "{second}"
    );
    assert!(second.contains("limits.max_net_in_flight"), "{second}");
    assert_eq!(released, "released");
    assert!(
        closed_in_time,
        "the cancelled request's connection was closed"
    );
    assert_eq!(again, "started 1", "the dropped request gave its slot back");
    assert_eq!(watcher.join().expect("server"), 2);
}

/// Item 5: pending network operations count against the instance's
/// `limits.max_pending`, however many network slots the policy allows.
#[test]
fn pending_requests_are_bounded_by_max_pending() {
    let (silent, port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:127.0.0.1:{port}\"]\nlimits = {{ \
         max_net_in_flight = 1000 }}\n{NEIGHBOUR_POLICY}"
    ));
    let reply = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        ask(&mut hostile, &format!("http-hold 127.0.0.1:{port} /x 1000"))
    });
    assert!(
        reply.starts_with("refused after 64: error: other: pending-operations limit exceeded"),
        "{reply}"
    );
    assert!(reply.contains("limits.max_pending"), "{reply}");
    drop(silent);
}

/// Item 6: a hostile server streaming an endless chunked body makes the
/// host hold at most the body limit, then the request fails naming it.
#[test]
fn an_endless_chunked_response_stops_at_the_body_limit() {
    let (listener, port) = local();
    let runtime = runtime_with(&format!(
        "[components.netprobe]\ngrants = [\"net:http:127.0.0.1:{port}\"]\nlimits = {{ \
         held_bytes = 67108864 }}\n{NEIGHBOUR_POLICY}"
    ));
    let endless = move || {
        raw_http_server(listener, 1, LIMIT, |_, s| {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..1024 {
                let sent = write!(s, "{:x}\r\n", chunk.len())
                    .and_then(|()| s.write_all(&chunk))
                    .and_then(|()| s.write_all(b"\r\n"));
                if sent.is_err() {
                    return;
                }
            }
        })
    };
    let (reply, endless) = while_serving(&runtime, || {
        let mut hostile = load(&runtime, fixture("netprobe"));
        let endless = endless();
        let reply = ask(&mut hostile, &format!("http GET 127.0.0.1:{port} /endless"));
        (reply, endless)
    });
    assert!(reply.starts_with("error: other:"), "{reply}");
    assert!(
        reply.contains("exceeds the host's limit of 8388608 bytes"),
        "{reply}"
    );
    assert_eq!(endless.join().expect("server"), 1);
}
