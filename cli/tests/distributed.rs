//! Several `airssys serve` hosts on one NATS server (docs/distributed.md),
//! end to end: real `airssys serve` processes, a real `nats-server`
//! (Debian package `nats-server`; a missing one fails the test, naming
//! the package) with JetStream on a free loopback port in a temporary
//! directory, real HTTP.
//!
//! Components build into `<repo>/target/new-templates` (shared with the
//! other CLI tests); compiled components are cached in `serve-cache`
//! there.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Answer, Client};

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    std::fs::canonicalize(common::repo()).unwrap()
}

fn shared_target() -> PathBuf {
    repo_root().join("target").join("new-templates")
}

/// A `nats-server -js` of this test (the shared starter).
type Nats = common::NatsServer;

/// A running `airssys serve` host, its output collected as it comes.
struct Host {
    child: Child,
    address: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Host {
    /// `airssys serve ARGS --listen 127.0.0.1:0` from the repository
    /// root; waits until every component serves.
    fn start(args: &[&str]) -> Host {
        let host = Host::spawn(args);
        host.wait_for("\nready: every component serves", 1);
        host
    }

    /// `airssys serve ARGS --listen 127.0.0.1:0`; waits until it listens.
    fn spawn(args: &[&str]) -> Host {
        let (mut child, stdout, stderr) =
            common::spawn_serve(&repo_root(), &shared_target(), args, &[]);
        let address = common::wait_listening(&mut child, &stdout, &stderr);
        Host {
            child,
            address,
            stdout,
            stderr,
        }
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Answer {
        Client::connect(self.address).call(method, path, &[], body)
    }

    fn request(&self, component: &str, payload: &str) -> Answer {
        self.call(
            "POST",
            &format!("/v1/components/{component}/request"),
            payload.as_bytes(),
        )
    }

    fn publish(&self, topic: &str, payload: &str) {
        let answer = self.call("POST", &format!("/v1/topics/{topic}"), payload.as_bytes());
        assert_eq!(answer.status, 202, "{answer:?}");
    }

    /// Everything printed so far, stdout then stderr.
    fn output(&self) -> String {
        format!(
            "{}{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits until the output holds `needle` `times` times.
    fn wait_for(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let seen = self.output();
            if seen.matches(needle).count() >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{needle}` not printed {times} time(s):\n{seen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `call` answers as `wanted` says (at most 60 s).
    fn wait_until(&self, what: &str, mut wanted: impl FnMut(&Host) -> Option<Answer>) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(answer) = wanted(self) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "never {what}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A component crate `name` that answers each request with
/// `<name> got <payload>` and logs each message it receives
/// (`<name> received <payload> on <topic> from <source>`); it may
/// subscribe to `orders.>` and log (both optional).
fn listener_crate(name: &str) -> PathBuf {
    let dir = shared_target().join("fixtures").join(name);
    let cargo_toml = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         publish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n\
         airssys = {{ path = {:?} }}\n\n[workspace]\n",
        repo_root().display().to_string()
    );
    let lib_rs = r#"//! Answers requests with its name; logs the messages it receives.

#[airssys::component(optional = ["msg:subscribe:orders.>", "log:write"])]
struct Listener;

impl guest::Lifecycle for Listener {}

impl guest::Handler for Listener {
    fn handle_message(message: guest::handler::Message) -> Result<(), guest::handler::Error> {
        let text = format!(
            "{} received {} on {} from {}",
            env!("CARGO_PKG_NAME"),
            String::from_utf8_lossy(&message.payload),
            message.topic,
            message.source,
        );
        let _ = Listener::host()
            .logging()
            .log(host::logging::Level::Info, "listener", &text);
        Ok(())
    }

    fn handle_request(
        _source: String,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, guest::handler::Error> {
        let payload = String::from_utf8_lossy(&payload);
        Ok(format!("{} got {payload}", env!("CARGO_PKG_NAME")).into_bytes())
    }
}
"#;
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

/// Writes `text` to `name` in `dir` and returns the path as text.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A nats-server under `examples/nats/server.conf` (its users and their
/// permissions).
fn example_server() -> Nats {
    Nats::start_with(&["-c", path(&repo_root().join("examples/nats/server.conf"))])
}

/// A host serving `examples/ping-pong/<component>` under the example's
/// policy, connected to `nats` as `user` (password `<user>-password`,
/// written to a file in `dir`) with the inbox prefix `_INBOX.<user>`, as
/// `examples/nats/server.conf` permits that user.
fn ping_pong_host(nats: &Nats, dir: &Path, component: &str, user: &str) -> Host {
    let password = file(dir, user, &format!("{user}-password\n"));
    Host::start(&[
        path(&repo_root().join("examples/ping-pong").join(component)),
        "--policy",
        path(&repo_root().join("examples/ping-pong/policy.toml")),
        "--nats",
        &nats.url(),
        "--nats-user",
        user,
        "--nats-password-file",
        &password,
        "--nats-inbox-prefix",
        &format!("_INBOX.{user}"),
    ])
}

/// The server stopped under two running hosts: host A's health says
/// `reconnecting` (503) and its metrics `airssys_nats_connected 0`; the
/// server back on the same port, both reconnect (health 200, `nats:
/// connected (reconnects: 1)`, `airssys_nats_reconnects_total 1`) and a
/// request through host A's ingress is again answered by host B's
/// component. Host B takes its server from the policy's `[nats]` table,
/// with a short reconnect backoff.
#[test]
fn hosts_report_a_lost_nats_server_and_go_on_when_it_is_back() {
    let mut nats = Nats::start();
    let tmp = tempfile::tempdir().unwrap();
    let front = listener_crate("dist-front");
    let back = listener_crate("dist-back");
    // Host A takes its reconnect settings from flags, host B from its
    // policy.
    let policy_a = file(tmp.path(), "a.toml", "");
    let policy_b = file(
        tmp.path(),
        "b.toml",
        &format!(
            "[nats]\nurl = \"{}\"\nreconnect_delay_ms = 50\nreconnect_max_delay_ms = 200\n",
            nats.url()
        ),
    );
    let a = Host::start(&[
        path(&front),
        "--policy",
        &policy_a,
        "--nats",
        &nats.url(),
        "--nats-reconnect-delay-ms",
        "50",
        "--nats-reconnect-max-delay-ms",
        "200",
    ]);
    let b = Host::start(&[path(&back), "--policy", &policy_b]);
    b.wait_for("messages and requests over NATS", 1);

    let health = a.call("GET", "/v1/health", b"");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "ready\nnats: connected (reconnects: 0)\n")
    );
    let answer = a.request("dist-back", "hello");
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "dist-back got hello"),
        "{}",
        a.output()
    );
    let metrics = a.call("GET", "/metrics", b"").body;
    assert!(
        metrics.contains("\nairssys_nats_connected 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nairssys_nats_reconnects_total 0\n"),
        "{metrics}"
    );

    nats.stop();
    let down = a.wait_until("reported the lost server", |a| {
        let answer = a.call("GET", "/v1/health", b"");
        (answer.status == 503).then_some(answer)
    });
    assert!(
        down.body.contains("the NATS connection is reconnecting"),
        "{down:?}"
    );
    a.wait_for("lost the connection to the NATS server", 1);
    let metrics = a.call("GET", "/metrics", b"").body;
    assert!(
        metrics.contains("\nairssys_nats_connected 0\n"),
        "{metrics}"
    );

    nats.restart();
    for host in [&a, &b] {
        let up = host.wait_until("reconnected", |h| {
            let answer = h.call("GET", "/v1/health", b"");
            (answer.status == 200).then_some(answer)
        });
        assert_eq!(up.body, "ready\nnats: connected (reconnects: 1)\n");
    }
    a.wait_for("reconnected to the NATS server", 1);
    let metrics = a.call("GET", "/metrics", b"").body;
    assert!(
        metrics.contains("\nairssys_nats_reconnects_total 1\n"),
        "{metrics}"
    );
    // Host B renews its subscriptions as it reconnects; the request goes
    // through once it has.
    let answer = a.wait_until("answered after the restart", |a| {
        let answer = a.request("dist-back", "again");
        (answer.status == 200).then_some(answer)
    });
    assert_eq!(answer.body, "dist-back got again");
}

/// `examples/ping-pong` split across two hosts that connect as the users
/// of `examples/nats/server.conf` (host A: `ping`, host B: `pong`), with
/// the defaults of `--nats` (JetStream delivery, storage in the JetStream
/// key-value bucket): the ball goes back and forth over NATS. A third
/// host connecting as `host-b` but serving `ping`, outside that user's
/// permissions, is refused by the server: it prints the permission
/// violations naming the subjects (the JetStream consumers of `ping`, its
/// requests, its storage namespace), the game's messages all go to host
/// A's `ping`, none to it, and what it publishes outside its permissions
/// reaches nobody.
#[test]
fn ping_pong_split_across_two_hosts_under_the_example_server_permissions() {
    let nats = example_server();
    let tmp = tempfile::tempdir().unwrap();
    let host = |component: &str, user: &str| ping_pong_host(&nats, tmp.path(), component, user);
    let a = host("ping", "host-a");
    let b = host("pong", "host-b");
    for host in [&a, &b] {
        host.wait_for("storage in the NATS key-value bucket `airssys`", 1);
    }

    a.publish("game.serve", "3");
    a.wait_for("ping: ping (3 left) from `host`", 1);
    b.wait_for("pong: pong (2 left) from `ping`", 1);
    a.wait_for("ping: ping (1 left) from `pong`", 1);
    b.wait_for("pong: pong (0 left) from `ping`", 1);
    // pong's optional `msg:publish:game.over` is not granted: host B
    // refuses it before anything reaches NATS.
    b.wait_for("DENY `pong` msg:publish:game.over", 1);
    for host in [&a, &b] {
        assert!(
            !host.output().contains("Permissions Violation"),
            "{}",
            host.output()
        );
    }

    // A host outside its user's permissions.
    let c = host("ping", "host-b");
    for refused in [
        // The durable consumers of `ping`'s subscriptions ...
        "Permissions Violation for Publish to \"$JS.API.CONSUMER.INFO.airssys_messages.\
         ping-8523051087bbe871\"",
        "Permissions Violation for Publish to \"$JS.API.CONSUMER.INFO.airssys_messages.\
         ping-680b60c7676b67ed\"",
        // ... its requests ...
        "Permissions Violation for Subscription to \"airssys.request.ping.*\" using queue \"ping\"",
        // ... and its storage namespace.
        "Permissions Violation for Publish to \"$JS.API.DIRECT.GET.KV_airssys.$KV.airssys.u.\
         cGluZw\"",
    ] {
        c.wait_for(refused, 1);
    }
    // As docs/distributed.md shows it.
    let page = std::fs::read_to_string(repo_root().join("docs/distributed.md")).unwrap();
    let shown = page
        .lines()
        .find(|l| l.starts_with("  note: the NATS server nats://127.0.0.1:4222 refused"))
        .expect("docs/distributed.md shows a refusal");
    c.wait_for(&shown.replace("nats://127.0.0.1:4222", &nats.url()), 1);
    // Nor may it publish the serve: the server refuses to store it.
    let answer = c.call("POST", "/v1/topics/game.serve", b"7");
    assert_ne!(answer.status, 202, "{answer:?}");
    c.wait_for(
        "Permissions Violation for Publish to \"airssys.msg.host.game.serve\"",
        1,
    );
    a.publish("game.serve", "1");
    // The whole game ran on hosts A and B ...
    a.wait_for("ping: ping (1 left) from `host`", 1);
    b.wait_for("pong: pong (0 left) from `ping`", 2);
    // ... and nothing reached host C's `ping`, which would have logged it
    // (without the server's refusal it would share the consumers of
    // host A's `ping`, and its requests).
    assert!(!c.output().contains("ping: ping ("), "{}", c.output());
    assert!(!a.output().contains("(7 left)"), "{}", a.output());
    let metrics = c.call("GET", "/metrics", b"").body;
    assert!(
        !metrics.contains("\nairssys_nats_server_errors_total 0\n")
            && metrics.contains("\nairssys_nats_server_errors_total "),
        "{metrics}"
    );
}

/// A client speaking the NATS protocol by hand, as one host's NATS user
/// (verbose: the server answers every operation with `+OK` or `-ERR`).
struct RawNats {
    stream: TcpStream,
    reader: std::io::BufReader<TcpStream>,
}

impl RawNats {
    fn connect(nats: &Nats, user: &str, password: &str) -> RawNats {
        use std::io::Write;
        let stream = TcpStream::connect(("127.0.0.1", nats.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = RawNats {
            reader: std::io::BufReader::new(stream.try_clone().unwrap()),
            stream,
        };
        assert!(raw.line().starts_with("INFO "));
        let connect = format!(
            "CONNECT {{\"verbose\":true,\"headers\":true,\"user\":\"{user}\",\"pass\":\"{password}\"}}\r\n"
        );
        raw.stream.write_all(connect.as_bytes()).unwrap();
        assert_eq!(raw.line(), "+OK\r\n", "the server took the credentials");
        raw
    }

    fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Publishes `payload` on `subject` (with one header when given) and
    /// returns the server's answer: `+OK`, or `-ERR '...'`.
    fn publish(&mut self, subject: &str, header: Option<(&str, &str)>, payload: &str) -> String {
        use std::io::Write;
        let frame = match header {
            None => format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()),
            Some((name, value)) => {
                let headers = format!("NATS/1.0\r\n{name}: {value}\r\n\r\n");
                format!(
                    "HPUB {subject} {} {}\r\n{headers}{payload}\r\n",
                    headers.len(),
                    headers.len() + payload.len()
                )
            }
        };
        self.stream.write_all(frame.as_bytes()).unwrap();
        self.line().trim_end().to_owned()
    }

    /// Subscribes to `subject` and returns the server's answer.
    fn subscribe(&mut self, subject: &str) -> String {
        use std::io::Write;
        let frame = format!("SUB {subject} 1\r\n");
        self.stream.write_all(frame.as_bytes()).unwrap();
        self.line().trim_end().to_owned()
    }

    /// Publishes a request `payload` on `subject` whose answers go to
    /// `reply`, and returns the server's answer: `+OK`, or `-ERR '...'`.
    fn request(&mut self, subject: &str, reply: &str, payload: &str) -> String {
        use std::io::Write;
        let frame = format!("PUB {subject} {reply} {}\r\n{payload}\r\n", payload.len());
        self.stream.write_all(frame.as_bytes()).unwrap();
        self.line().trim_end().to_owned()
    }

    /// The next message delivered to a subscription: its subject and its
    /// headers and payload as text (waits at most the read timeout).
    fn next_message(&mut self) -> (String, String) {
        use std::io::{Read, Write};
        loop {
            let line = self.line();
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("MSG" | "HMSG") => {
                    let total: usize = words.last().unwrap().parse().unwrap();
                    let mut body = vec![0; total + 2];
                    self.reader.read_exact(&mut body).unwrap();
                    body.truncate(total);
                    return (
                        words[1].to_owned(),
                        String::from_utf8_lossy(&body).into_owned(),
                    );
                }
                Some("PING") => self.stream.write_all(b"PONG\r\n").unwrap(),
                Some("+OK") => {}
                _ => panic!("unexpected from the server: {line:?}"),
            }
        }
    }
}

/// Under `examples/nats/server.conf`, a host's NATS user may stamp only
/// the components that host runs: a client with host B's credentials (host
/// B runs `pong`) publishing to `ping` as `judge`, as `ping`, as `pong-2`
/// (a name extending `pong`), or on the older layout (`Airssys-Source`
/// header, which the server cannot see) is refused by the server
/// (permissions violation), and host A's `ping` never sees any of them;
/// the same client stamping `pong`, which host B runs, reaches it.
#[test]
fn a_host_cannot_stamp_a_component_it_does_not_run_under_the_example_permissions() {
    let nats = example_server();
    let tmp = tempfile::tempdir().unwrap();
    let a = ping_pong_host(&nats, tmp.path(), "ping", "host-a");
    let mut b = RawNats::connect(&nats, "host-b", "host-b-password");
    for (subject, header, payload) in [
        ("airssys.msg.judge.ball.to-ping", None, "5"),
        ("airssys.msg.ping.ball.to-ping", None, "6"),
        ("airssys.msg.pong-2.ball.to-ping", None, "4"),
        (
            "airssys.topic.ball.to-ping",
            Some(("Airssys-Source", "judge")),
            "7",
        ),
    ] {
        assert_eq!(
            b.publish(subject, header, payload),
            format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'"),
            "a forged stamp on `{subject}`"
        );
    }
    assert_eq!(
        b.publish("airssys.msg.pong.ball.to-ping", None, "0"),
        "+OK",
        "host B's own stamp"
    );
    a.wait_for("ping: ping (0 left) from `pong`", 1);
    // Published before the stamped one on the same connection: had any
    // passed, `ping` would have logged it first.
    let output = a.output();
    for forged in ["(5 left)", "(6 left)", "(4 left)", "(7 left)", "`judge`"] {
        assert!(!output.contains(forged), "{forged}: {output}");
    }
    assert!(!output.contains("Permissions Violation"), "{output}");
}

/// Under `examples/nats/server.conf`, requests between the hosts pass
/// only with the stamps the hosts need: host A's ingress asks host B's
/// `pong` (as `http`, on `airssys.request.pong.http`) and gets pong's
/// answer. A client with host B's credentials (host B runs `pong`) asking
/// host A's `ping` as `judge`, as `ping` or as `pong-2`, or asking as
/// `pong` (which `ping` is not granted to take), is refused by the server
/// (permissions violation), and host A's `ping` never sees these
/// requests; asking as `http`, host B's ingress stamp, it is answered.
#[test]
fn a_host_may_request_only_as_its_own_components_under_the_example_permissions() {
    let nats = example_server();
    let tmp = tempfile::tempdir().unwrap();
    let host = |component: &str, user: &str| ping_pong_host(&nats, tmp.path(), component, user);
    let a = host("ping", "host-a");
    let b = host("pong", "host-b");
    b.wait_for("storage in the NATS key-value bucket `airssys`", 1);

    // The quickstart's request between hosts: host A's ingress, host B's
    // component (pong answers every request with its handler's error).
    let answered = a.request("pong", "hello");
    assert_eq!(answered.status, 500, "{answered:?}\n{}", b.output());
    assert!(answered.body.contains("pong"), "{answered:?}");

    let mut raw = RawNats::connect(&nats, "host-b", "host-b-password");
    assert_eq!(raw.subscribe("_INBOX.host-b.>"), "+OK");
    for (n, subject) in [
        "airssys.request.ping.judge",
        "airssys.request.ping.ping",
        "airssys.request.ping.pong-2",
        "airssys.request.ping.pong",
        "airssys.request.pong.judge",
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            raw.request(subject, &format!("_INBOX.host-b.forged{n}"), "forged"),
            format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'"),
            "a forged stamp on `{subject}`"
        );
    }
    assert_eq!(
        raw.request("airssys.request.ping.http", "_INBOX.host-b.own", "own"),
        "+OK",
        "host B's ingress stamp"
    );
    // Sent after the forged ones on the same connection: had any reached
    // host A's `ping`, its answers would come first. The first answer says
    // the request was accepted, the second is ping's.
    let mut answers = Vec::new();
    while answers.len() < 2 {
        answers.push(raw.next_message());
    }
    for (subject, answer) in &answers {
        assert_eq!(subject, "_INBOX.host-b.own", "{answers:?}");
        assert!(!answer.contains("forged"), "{answers:?}");
    }
    assert!(
        answers[0].1.contains("Airssys-Status: accepted"),
        "{answers:?}"
    );
    assert!(answers[1].1.contains("Airssys-Status: "), "{answers:?}");
    for host in [&a, &b] {
        assert!(
            !host.output().contains("Permissions Violation"),
            "{}",
            host.output()
        );
    }
}

/// Under `examples/nats/server.conf`, host A's user may ask only host B's
/// `pong` (as `http`): a request through host A's ingress for another
/// component (`judge`, on `airssys.request.judge.http`) is refused by the
/// NATS server, and the ingress answers 403 at once, naming the subject
/// and the server's permissions (before, it waited its 30 s and answered
/// 504).
#[test]
fn a_request_the_servers_permissions_refuse_is_answered_403_at_once() {
    let nats = example_server();
    let tmp = tempfile::tempdir().unwrap();
    let a = ping_pong_host(&nats, tmp.path(), "ping", "host-a");
    a.wait_for("storage in the NATS key-value bucket `airssys`", 1);
    let refused = a.request("judge", "hello");
    assert_eq!(refused.status, 403, "{refused:?}\n{}", a.output());
    for part in [
        "the NATS server refused this host's request for component `judge`",
        "`airssys.request.judge.http`",
        "`permissions.publish.allow`",
    ] {
        assert!(refused.body.contains(part), "{part}: {refused:?}");
    }
}

/// One component, `dist-orders`, served by two hosts: host A's policy
/// subscribes it to `orders.*`, host B's only to `orders.public`. Messages
/// on `orders.secret` all reach host A's instance and never host B's,
/// whatever host A's policy says: each host delivers only what its own
/// grants cover. Messages on `orders.public` reach one replica each (the
/// queue group is the component's).
#[test]
fn a_subscriber_on_host_b_refused_by_its_own_grants_never_sees_the_message() {
    let nats = Nats::start();
    let tmp = tempfile::tempdir().unwrap();
    let orders = listener_crate("dist-orders");
    let wide = file(
        tmp.path(),
        "a.toml",
        "[components.dist-orders]\ngrants = [\"msg:subscribe:orders.*\", \"log:write\"]\n\
         subscribe = [\"orders.*\"]\n",
    );
    let narrow = file(
        tmp.path(),
        "b.toml",
        "[components.dist-orders]\ngrants = [\"msg:subscribe:orders.public\", \"log:write\"]\n\
         subscribe = [\"orders.public\"]\n",
    );
    let a = Host::start(&[path(&orders), "--policy", &wide, "--nats", &nats.url()]);
    let b = Host::start(&[path(&orders), "--policy", &narrow, "--nats", &nats.url()]);
    for n in 0..20 {
        a.publish("orders.secret", &format!("s{n}"));
    }
    // Published after the secrets, from the same host: NATS keeps their
    // order, so once the last public one was handled the secrets had
    // arrived.
    for n in 0..20 {
        a.publish("orders.public", &format!("p{n}"));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let both = format!("{}{}", a.output(), b.output());
        if (0..20).all(|n| both.contains(&format!("received p{n} on orders.public"))) {
            break;
        }
        assert!(Instant::now() < deadline, "public orders missing:\n{both}");
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in 0..20 {
        a.wait_for(&format!("received s{n} on orders.secret from host"), 1);
    }
    assert!(
        !b.output().contains("received s"),
        "host B's replica got a message its grants do not cover:\n{}",
        b.output()
    );
    // Host B's own count of what it delivered to its replica is exactly
    // the public orders the replica logged. The count and the log reach
    // this test by different paths (HTTP, a pipe read by another thread),
    // so wait until they agree: a delivery the replica did not log (one
    // its grants do not cover) would keep them apart for ever.
    let calls = |b: &Host| {
        let status = b.call("GET", "/v1/components", b"");
        let all: serde_json::Value = serde_json::from_str(&status.body).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "dist-orders")
            .unwrap()["calls"]
            .as_u64()
            .unwrap()
    };
    b.wait_until("counted exactly the deliveries its replica logged", |b| {
        let logged = b.output().matches("received p").count() as u64;
        (calls(b) == logged).then(|| b.call("GET", "/v1/components", b""))
    });
    assert!(
        !b.output().contains("received s"),
        "host B's replica got a message its grants do not cover:\n{}",
        b.output()
    );
}

/// The `[nats]` example of docs/distributed.md is a valid policy table.
#[test]
fn the_nats_table_of_distributed_md_is_a_valid_policy() {
    let page = std::fs::read_to_string(repo_root().join("docs/distributed.md")).unwrap();
    let toml = page
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/distributed.md shows a [nats] table");
    let policy = airssys_runtime::Policy::from_toml_str(toml).unwrap();
    let nats = policy.nats().expect("a [nats] table");
    assert_eq!(nats.url.as_deref(), Some("nats://nats.internal:4222"));
    assert_eq!(nats.reconnect_max_delay, Some(Duration::from_millis(2000)));
    assert!(nats.credentials_file.is_some() && nats.tls_ca_file.is_some());
    assert_eq!(nats.inbox_prefix.as_deref(), Some("_INBOX.host-a"));
    assert_eq!(nats.stream_max_messages_per_component, Some(50_000));
}

/// Bad NATS input is refused before anything is built or connected,
/// naming the flag or the policy key and the file.
#[test]
fn bad_nats_files_are_refused_naming_the_flag_or_key_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
            .args(args)
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        common::stderr(&out)
    };
    // `run` connecting to a server nowhere, with `flags`.
    let run_nats = |flags: &[&str]| {
        run(&[
            &["run", "nothing.wasm", "--nats", "nats://127.0.0.1:1"],
            flags,
        ]
        .concat())
    };
    // `serve` under the policy file `name` in the test's folder, holding `text`.
    let serve_policy = |name: &str, text: &str| {
        run(&[
            "serve",
            "nothing.wasm",
            "--policy",
            &file(tmp.path(), name, text),
        ])
    };
    let policy = file(tmp.path(), "policy.toml", "");
    let missing = tmp.path().join("missing.creds");
    let stderr = run(&[
        "serve",
        "nothing.wasm",
        "--policy",
        &policy,
        "--nats",
        "nats://me:s3cret@127.0.0.1:1",
        "--nats-creds",
        path(&missing),
    ]);
    assert!(
        stderr.contains(&format!(
            "--nats-creds: NATS credentials file `{}`: cannot read it",
            missing.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let not_pem = file(tmp.path(), "ca.pem", "not a certificate\n");
    let stderr = run_nats(&["--nats-tls-ca", &not_pem]);
    assert!(
        stderr.contains(&format!(
            "--nats-tls-ca: TLS CA file `{not_pem}`: it holds no PEM `CERTIFICATE` block"
        )),
        "{stderr}"
    );

    // A relative file in the policy is the policy file's neighbour.
    let policy = file(
        tmp.path(),
        "with-nats.toml",
        "# NATS\n[nats]\nurl = \"nats://127.0.0.1:1\"\nnkey_seed_file = \"host.nk\"\n",
    );
    let stderr = run(&["serve", "nothing.wasm", "--policy", &policy]);
    assert!(
        stderr.contains(&format!(
            "[nats] `nkey_seed_file` (policy line 2): NATS NKey seed file `{}`: cannot read it",
            tmp.path().join("host.nk").display()
        )),
        "{stderr}"
    );
    let stderr = serve_policy(
        "both.toml",
        "[nats]\nuser = \"a\"\nnkey_seed_file = \"x\"\n",
    );
    assert!(stderr.contains("give one way to authenticate"), "{stderr}");
    let stderr = run(&[
        "serve",
        "nothing.wasm",
        "--policy",
        &policy,
        "--nats-prefix",
        "x",
    ]);
    assert!(!stderr.contains("need a NATS server"), "{stderr}");
    let stderr = run(&[
        "serve",
        "nothing.wasm",
        "--policy",
        &file(tmp.path(), "empty.toml", ""),
        "--nats-prefix",
        "x",
    ]);
    assert!(
        stderr.contains("the --nats-* options need a NATS server"),
        "{stderr}"
    );
    // A reply-subject prefix must be a concrete subject.
    let stderr = run_nats(&["--nats-inbox-prefix", "_INBOX.>"]);
    assert!(
        stderr.contains("--nats-inbox-prefix: `_INBOX.>` is not a NATS subject"),
        "{stderr}"
    );
    // An inbox prefix in the server's `$` subjects, or overlapping the
    // subject prefix (where components' topics and requests travel), is
    // refused naming both flags or keys; so is a subject prefix that is
    // not a subject.
    for (args, says) in [
        (
            &["--nats-inbox-prefix", "airssys.topic.x"][..],
            "--nats-inbox-prefix and the default subject prefix: the inbox prefix \
             `airssys.topic.x` is the subject prefix `airssys` or inside it",
        ),
        (
            &["--nats-inbox-prefix", "$JS.API"][..],
            "error: --nats-inbox-prefix: the inbox prefix `$JS.API` is in the NATS server's \
             own subjects",
        ),
        (
            &["--nats-prefix", "_INBOX.shop"][..],
            "the default inbox prefix and --nats-prefix: the subject prefix `_INBOX.shop` is \
             inside the inbox prefix `_INBOX`",
        ),
        (
            &["--nats-prefix", "shop", "--nats-inbox-prefix", "shop"][..],
            "--nats-inbox-prefix and --nats-prefix: the inbox prefix `shop` is the subject \
             prefix `shop`",
        ),
        (
            &["--nats-prefix", "a..b"][..],
            "--nats-prefix: `a..b` is not a NATS subject",
        ),
    ] {
        let stderr = run(&[
            &["run", "nothing.wasm", "--nats", "nats://127.0.0.1:1"],
            args,
        ]
        .concat());
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let stderr = run(&[
        "serve",
        "nothing.wasm",
        "--policy",
        &file(
            tmp.path(),
            "inbox.toml",
            "[nats]\nurl = \"nats://127.0.0.1:1\"\ninbox_prefix = \"_INBOX.host-a\"\n",
        ),
        "--nats-prefix",
        "_INBOX.host-a.x",
    ]);
    assert!(
        stderr.contains(
            "[nats] `inbox_prefix` (policy line 1) and --nats-prefix: the subject prefix \
             `_INBOX.host-a.x` is inside the inbox prefix `_INBOX.host-a`"
        ),
        "{stderr}"
    );
    // Reconnect settings: a bad value names the flag (or the key).
    let stderr = run_nats(&["--nats-reconnect-delay-ms", "soon"]);
    assert!(
        stderr.contains("invalid value 'soon' for '--nats-reconnect-delay-ms <MS>'"),
        "{stderr}"
    );
    let stderr = run_nats(&["--nats-reconnect-delay-ms", "9000"]);
    assert!(
        stderr.contains(
            "--nats-reconnect-delay-ms 9000 is larger than the default 5000 ms of \
             --nats-reconnect-max-delay-ms"
        ),
        "{stderr}"
    );
    let stderr = run(&[
        "serve",
        "nothing.wasm",
        "--policy",
        &file(
            tmp.path(),
            "reconnect.toml",
            "[nats]\nurl = \"nats://127.0.0.1:1\"\nreconnect_max_delay_ms = 200\n",
        ),
        "--nats-reconnect-delay-ms",
        "300",
    ]);
    assert!(
        stderr.contains(
            "--nats-reconnect-delay-ms 300 is larger than [nats] `reconnect_max_delay_ms` = 200"
        ),
        "{stderr}"
    );
    let stderr = run_nats(&["--nats-max-reconnects=many"]);
    assert!(
        stderr.contains("invalid value 'many' for '--nats-max-reconnects <N>'"),
        "{stderr}"
    );
    // 0 would mean "never give up" to the client: refused, naming the
    // flag or key. The largest values are taken, never a panic.
    let stderr = run_nats(&["--nats-max-reconnects", "0"]);
    assert!(
        stderr.contains("--nats-max-reconnects 0: give at least 1"),
        "{stderr}"
    );
    let stderr = serve_policy(
        "zero.toml",
        "[nats]\nurl = \"nats://127.0.0.1:1\"\nmax_reconnects = 0\n",
    );
    assert!(
        stderr.contains("`max_reconnects = 0`: give at least 1"),
        "{stderr}"
    );
    let max = u64::MAX.to_string();
    for flags in [
        &[
            "--nats-reconnect-delay-ms",
            "0",
            "--nats-reconnect-max-delay-ms",
            "0",
        ][..],
        &[
            "--nats-reconnect-delay-ms",
            &max,
            "--nats-reconnect-max-delay-ms",
            &max,
            "--nats-max-reconnects",
            &max,
        ][..],
    ] {
        let stderr = run(&[
            &["storage", "recount", "--nats", "nats://127.0.0.1:1"],
            flags,
        ]
        .concat());
        assert!(
            stderr.contains("could not connect") && !stderr.contains("panicked"),
            "{flags:?}: {stderr}"
        );
    }
    // A share of the stream of 0 would refuse every message.
    let stderr = run_nats(&["--nats-stream-max-messages-per-component", "0"]);
    assert!(
        stderr.contains(
            "invalid value '0' for '--nats-stream-max-messages-per-component <N>': 0 is not in \
             1.."
        ),
        "{stderr}"
    );
    let stderr = serve_policy(
        "share.toml",
        "[nats]\nurl = \"nats://127.0.0.1:1\"\nstream_max_messages_per_component = 0\n",
    );
    assert!(
        stderr.contains("`stream_max_messages_per_component = 0` would refuse every message"),
        "{stderr}"
    );
}

/// The words of a shell line: single and double quotes group.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

/// The quickstart of docs/distributed.md, followed to the letter from the
/// repository root: every line of its ```` ```sh ```` blocks runs in
/// order, and the ```` ```text ```` block right after a block lists what
/// its commands print, in order.
///
/// - `nats-server ...` starts this test's server with those arguments,
///   on a free port standing for the page's `4222` (and a temporary
///   JetStream store);
/// - `airssys serve ... --listen ADDR` starts a host (in the background,
///   as the page's "another terminal") listening on a free port standing
///   for `ADDR`; its output is what it printed once ready;
/// - `curl ...` is sent with this test's HTTP client (`-s`, `-X`,
///   `--data`, the URL), the status must be 2xx.
#[test]
fn the_quickstart_of_distributed_md_runs_as_written() {
    let page = std::fs::read_to_string(repo_root().join("docs/distributed.md")).unwrap();
    let section = page
        .split("## Quickstart")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/distributed.md has a quickstart");
    let lines: Vec<&str> = section.lines().collect();
    let mut blocks: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some(info) = lines[i].strip_prefix("```") {
            let mut body = Vec::new();
            i += 1;
            while !lines[i].starts_with("```") {
                body.push(lines[i].to_owned());
                i += 1;
            }
            blocks.push((info.trim().to_owned(), body));
        }
        i += 1;
    }

    let mut nats: Option<Nats> = None;
    let mut hosts: Vec<(String, Host)> = Vec::new();
    let mut ran = Vec::new();
    for (n, (info, body)) in blocks.iter().enumerate() {
        if info != "sh" {
            continue;
        }
        let mut printed = String::new();
        for line in body.iter().filter(|l| !l.trim().is_empty()) {
            let command = words(line);
            let url = nats.as_ref().map(Nats::url);
            let page_url = "nats://127.0.0.1:4222";
            match command.first().map(String::as_str) {
                Some("nats-server") => {
                    let args: Vec<&str> = command[1..].iter().map(String::as_str).collect();
                    assert_eq!(
                        args,
                        ["-js", "-a", "127.0.0.1", "-p", "4222"],
                        "this test knows these arguments: {line}"
                    );
                    nats = Some(Nats::start());
                }
                Some("airssys") if command.get(1).is_some_and(|c| c == "serve") => {
                    let url = url.expect("the page starts nats-server first");
                    let mut args: Vec<String> = Vec::new();
                    let mut listen = None;
                    let mut rest = command[2..].iter();
                    while let Some(word) = rest.next() {
                        match word.as_str() {
                            "--listen" => listen = rest.next().cloned(),
                            other => args.push(other.replace(page_url, &url)),
                        }
                    }
                    let listen = listen.expect("each host of the page names --listen");
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let host = Host::start(&args);
                    printed.push_str(
                        &host
                            .stdout
                            .lock()
                            .unwrap()
                            .replace(&host.address.to_string(), &listen)
                            .replace(&url, page_url),
                    );
                    hosts.push((listen, host));
                }
                Some("curl") => {
                    let mut method = None;
                    let mut data: Option<String> = None;
                    let mut target = None;
                    let mut rest = command[1..].iter();
                    while let Some(word) = rest.next() {
                        match word.as_str() {
                            "-s" => {}
                            "-X" => method = rest.next().cloned(),
                            "--data" => data = rest.next().cloned(),
                            other if other.starts_with("http://") => {
                                target = Some(other.to_owned());
                            }
                            other => panic!("`{line}`: this test's curl knows no `{other}`"),
                        }
                    }
                    let target = target.expect("a URL");
                    let (host, path) = hosts
                        .iter()
                        .find_map(|(listen, host)| {
                            target
                                .strip_prefix(&format!("http://{listen}"))
                                .map(|path| (host, path))
                        })
                        .unwrap_or_else(|| panic!("`{line}`: no host listens there"));
                    let method = method
                        .unwrap_or_else(|| if data.is_some() { "POST" } else { "GET" }.to_owned());
                    let answer = host.call(&method, path, data.unwrap_or_default().as_bytes());
                    assert!(
                        (200..300).contains(&answer.status),
                        "`{line}`: {answer:?}\n{}",
                        host.output()
                    );
                    printed.push_str(&answer.body);
                    if !answer.body.ends_with('\n') {
                        printed.push('\n');
                    }
                }
                _ => panic!(
                    "docs/distributed.md: this test runs `nats-server`, `airssys serve` and \
                     `curl` only: {line}"
                ),
            }
            ran.push(line.clone());
        }
        if let Some((next, expected)) = blocks.get(n + 1)
            && next == "text"
        {
            let needles: Vec<&str> = expected
                .iter()
                .flat_map(|line| line.split('…'))
                .filter(|part| !part.is_empty())
                .collect();
            common::assert_in_order(&printed, &needles);
        }
    }
    assert_eq!(ran.len(), 6, "the quickstart's commands: {ran:#?}");
    assert_eq!(hosts.len(), 2, "two hosts");
}

/// A self-signed operator JWT (`nats-jwt` makes account and user JWTs,
/// not operators'): the same header, claims and ed25519 signature.
fn operator_jwt(operator: &nkeys::KeyPair) -> String {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let claims = serde_json::json!({
        "iat": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        "iss": operator.public_key(),
        "jti": "AIRSSYSTESTOPERATOR",
        "name": "airssys-test",
        "sub": operator.public_key(),
        "nats": {"type": "operator", "version": 2},
    });
    let half = format!(
        "{}.{}",
        b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#),
        b64(claims.to_string().as_bytes())
    );
    let signature = operator.sign(half.as_bytes()).unwrap();
    format!("{half}.{}", b64(&signature))
}

/// A `.creds` file, as `nsc generate creds` writes it.
fn creds(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

/// A server in operator (JWT) mode, its account preloaded in memory: a
/// host started with `--nats-creds FILE` (a user of that account)
/// connects and serves; a creds file of an account the server does not
/// know, and an expired one, are refused when the host starts, naming
/// the flag and the file, never printing the seed.
#[test]
fn a_creds_file_connects_to_a_server_in_operator_mode_and_a_wrong_or_expired_one_is_named() {
    use nats_jwt::{KeyPair, Token};

    let tmp = tempfile::tempdir().unwrap();
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let account_jwt = Token::new_account(account.public_key())
        .name("hosts")
        .sign(&operator);
    // The server's own account (JetStream needs one).
    let system = KeyPair::new_account();
    let system_jwt = Token::new_account(system.public_key())
        .name("SYS")
        .sign(&operator);
    let conf = file(
        tmp.path(),
        "operator.conf",
        &format!(
            "operator: {}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: \
             {}\n  {}: {}\n}}\n",
            operator_jwt(&operator),
            system.public_key(),
            account.public_key(),
            account_jwt,
            system.public_key(),
            system_jwt
        ),
    );
    let nats = Nats::start_with(&["-c", &conf]);
    let user_creds = |name: &str, signer: &KeyPair, issuer: &KeyPair, expires: Option<i64>| {
        let user = KeyPair::new_user();
        let mut token = Token::new_user(issuer.public_key(), user.public_key()).name(name);
        if let Some(at) = expires {
            token = token.expires(at);
        }
        let seed = user.seed().unwrap();
        (
            file(
                tmp.path(),
                &format!("{name}.creds"),
                &creds(&token.sign(signer), &seed),
            ),
            seed,
        )
    };
    let back = listener_crate("dist-back");
    let policy = file(tmp.path(), "policy.toml", "");
    let host_args = |creds: &str| -> Vec<String> {
        [
            path(&back),
            "--policy",
            &policy,
            "--nats",
            &nats.url(),
            "--nats-delivery",
            "core",
            "--storage",
            path(&tmp.path().join("store.redb")),
            "--nats-creds",
            creds,
        ]
        .map(str::to_owned)
        .to_vec()
    };

    let (good, _) = user_creds("host-a", &account, &account, None);
    let args = host_args(&good);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = Host::start(&args);
    let health = host.call("GET", "/v1/health", b"");
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, "ready\nnats: connected (reconnects: 0)\n")
    );
    let answer = host.request("dist-back", "hello");
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "dist-back got hello"),
        "{}",
        host.output()
    );
    drop(host);

    let stranger = KeyPair::new_account();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    for (creds, seed) in [
        user_creds("unknown-account", &stranger, &stranger, None),
        user_creds("expired", &account, &account, Some(now - 60)),
    ] {
        let args = host_args(&creds);
        let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
            .arg("serve")
            .args(&args)
            .args(["--listen", "127.0.0.1:0"])
            .current_dir(repo_root())
            .env("CARGO_TARGET_DIR", shared_target())
            .output()
            .unwrap();
        let stderr = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "--nats-creds `{creds}`: the NATS server refused these credentials"
            )),
            "{stderr}"
        );
        assert!(!stderr.contains(&seed), "{stderr}");
    }
}

/// A usage counter left high (written directly, as a host that charged a
/// growing write and crashed before writing the entry leaves it) is set
/// back to the cost of the namespace's entries by `airssys storage
/// recount`, which prints before and after; a second pass finds nothing
/// to change.
#[test]
fn storage_recount_repairs_a_usage_counter_left_high() {
    use airssys_runtime::storage::{NatsKvStorage, StorageBackend};
    use std::io::{BufRead, BufReader, Write};

    let nats = Nats::start();
    let storage = NatsKvStorage::connect(nats.url()).open().unwrap();
    storage
        .set("counter-app", "b", "k", &[1; 10], None)
        .unwrap();
    let real = storage.usage("counter-app").unwrap();
    assert!(real > 0);
    // The stale counter, published straight into the bucket.
    let socket = TcpStream::connect(("127.0.0.1", nats.port())).unwrap();
    let mut lines = BufReader::new(socket.try_clone().unwrap());
    let mut line = String::new();
    lines.read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO"), "{line}");
    (&socket)
        .write_all(
            b"CONNECT {\"verbose\":false}\r\nPUB $KV.airssys.u.Y291bnRlci1hcHA 5\r\n99999\r\nPING\r\n",
        )
        .unwrap();
    line.clear();
    lines.read_line(&mut line).unwrap();
    assert_eq!(line, "PONG\r\n");
    assert_eq!(storage.usage("counter-app").unwrap(), 99_999);

    let recount = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
            .args(["storage", "recount", "--nats", &nats.url()])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let said = recount(&["--component", "counter-app"]);
    assert!(
        said.contains(&format!(
            "  counter-app: 99999 -> {real} bytes (was high: repaired)\n"
        )),
        "{said}"
    );
    assert_eq!(storage.usage("counter-app").unwrap(), real);
    // As docs/cli.md shows it.
    let page = std::fs::read_to_string(repo_root().join("docs/cli.md")).unwrap();
    let shown = page
        .split("## `airssys storage recount`")
        .nth(1)
        .expect("docs/cli.md documents the recount");
    for line in said.lines() {
        assert!(
            shown.contains(&line.replace(&nats.url(), "nats://127.0.0.1:4222")),
            "docs/cli.md does not show {line:?}"
        );
    }
    // A namespace name from the bucket holding control characters (an
    // OSC title sequence) is printed escaped, never sent to the terminal.
    (&socket)
        .write_all(b"PUB $KV.airssys.u.G10wO3gH 1\r\n7\r\nPING\r\n")
        .unwrap();
    line.clear();
    lines.read_line(&mut line).unwrap();
    assert_eq!(line, "PONG\r\n");
    let said = recount(&[]);
    assert!(
        said.contains(&format!(
            "  counter-app: {real} -> {real} bytes (unchanged)\n"
        )),
        "{said}"
    );
    assert!(
        !said.contains('\u{1b}') && said.contains("  \\u{1b}]0;x\\u{7}: 7 -> 0 bytes"),
        "{said}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_airssys"))
        .args(["storage", "recount"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(common::stderr(&out).contains("--nats URL"), "{out:?}");
}
