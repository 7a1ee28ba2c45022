//! For the network tests and the hostile suite (both include this file):
//! the `netprobe` fixture under a manifest other than its own, and a raw
//! HTTP server that answers as each test scripts it.

#![allow(dead_code, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use airssys_runtime::contract::manifest::Manifest;

/// netprobe's component bytes whose only manifest is one naming it
/// `name` and asking for `optional` (and nothing required). Its own
/// manifest, inside its core module, is renamed in place (sizes
/// unchanged) so the appended one is the only one the loader finds.
pub(crate) fn netprobe_as(name: &str, optional: &[&str]) -> Vec<u8> {
    let list = optional
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = Manifest::from_toml_str(&format!(
        "[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[capabilities]\noptional = \
         [{list}]\n"
    ))
    .expect("valid manifest");
    let mut bytes = crate::support::fixture("netprobe").to_vec();
    let own = b"\x10airssys:manifest";
    let at = bytes
        .windows(own.len())
        .position(|w| w == own)
        .expect("netprobe carries a manifest section");
    bytes[at + 1..at + own.len()].copy_from_slice(b"airssys:disabled");
    crate::support::append_custom_section(&mut bytes, "airssys:manifest", &manifest.encode());
    bytes
}

/// Serves `count` connections (or until `limit` has passed) with
/// `respond(path, stream)` after reading the request head; returns how
/// many it served. Each connection gets `limit` as its read timeout.
pub(crate) fn raw_http_server(
    listener: TcpListener,
    count: usize,
    limit: Duration,
    respond: impl Fn(&str, &mut TcpStream) + Send + 'static,
) -> JoinHandle<usize> {
    listener.set_nonblocking(true).expect("non-blocking");
    std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            s.set_nonblocking(false).expect("blocking");
            s.set_read_timeout(Some(limit)).expect("timeout");
            let path = read_head(&s);
            respond(&path, &mut s);
            served += 1;
        }
        served
    })
}

/// Reads one request head from `s`; its path.
fn read_head(s: &TcpStream) -> String {
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let mut h = String::new();
    while reader.read_line(&mut h).unwrap_or(0) > 0 && h.trim_end() != "" {
        h.clear();
    }
    line.split(' ').nth(1).unwrap_or("/").to_owned()
}
