//! `airssys:ext/network`: TCP streams, UDP sockets and an HTTP/1.1 client
//! over the standard library, with every address checked.
//!
//! - The capability guard (from `#[airssys::host_fn]`) checks the request
//!   as written (`net:connect:{address}`, `net:bind:{local-address}`,
//!   `net:http:{authority}`).
//! - The host then resolves names itself and checks every resolved address
//!   again as an IP request (`net:connect:10.0.0.5:443`); only addresses
//!   that pass are used, and the connection goes to that checked address
//!   (no second resolution). Loopback, link-local, unspecified, broadcast
//!   and cloud-metadata addresses pass only through a grant that names them
//!   by address or by a CIDR inside their special range (see
//!   [`addr::check`]): a name grant such as `net:connect:localhost:8080`
//!   never reaches `127.0.0.1`.
//! - Operations that wait run on a helper thread and complete through a
//!   `pending-*` resource whose `get` never blocks; its `subscribe` gives
//!   a pollable that turns ready when the thread has finished (and wakes
//!   waiting `poll` calls, see [`super::poll`]). At most
//!   [`MAX_IN_FLIGHT`] operations run at once in the process; each is
//!   bounded by a timeout.
//! - UDP datagrams from senders no `net:connect` grant covers (by the same
//!   address rule) are dropped; HTTP redirects are followed up to
//!   [`MAX_REDIRECTS`] times, each hop checked again against `net:http`.

mod addr;
mod http;
mod tls;

pub(crate) use tls::TlsRoots;

use std::net::{SocketAddr, TcpStream as StdTcpStream, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use airssys_contract::capability::{Action, Decision, Domain, GrantSet, Request, Rule, Verdict};
use airssys_contract::guard::{GuardEvent, Outcome};
use airssys_macros::host_impl;
use wasmtime::component::{Resource, ResourceTable};

use super::bindings::airssys::core::types::KeyValue;
use super::bindings::airssys::ext::network::{
    Datagram, Error, Host, HostPendingConnect, HostPendingDatagram, HostPendingRead,
    HostPendingResponse, HostPendingWrite, HostTcpStream, HostUdpSocket, HttpMethod, HttpRequest,
    HttpResponse, PendingConnect, PendingDatagram, PendingRead, PendingResponse, PendingWrite,
    Pollable, TcpStream, UdpSocket,
};
use super::poll::{Readiness, wake};
use super::state::{ComponentInfo, HostState, Services};

/// How long a TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one TCP read or write, or one UDP receive, may wait.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest read per `tcp-stream.read`.
const MAX_READ: usize = 64 * 1024;
/// Largest write per `tcp-stream.write`.
const MAX_WRITE: usize = 1024 * 1024;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;
/// Default and largest HTTP exchange time.
const HTTP_DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const HTTP_MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Redirects followed per request.
pub(crate) const MAX_REDIRECTS: usize = 5;
/// Network operations running at once, across the process.
pub(crate) const MAX_IN_FLIGHT: usize = 256;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Decrements [`IN_FLIGHT`] when the helper thread ends.
struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The result of an operation running on a helper thread.
#[derive(Debug)]
struct Pending<T> {
    rx: Receiver<Result<T, Error>>,
    taken: bool,
    /// Set when the resource is dropped: the thread stops at its next
    /// check.
    cancel: Arc<AtomicBool>,
    /// Held only here, so a pollable notices when this handle is dropped.
    probe: Arc<NetProbe>,
}

/// Readiness of a network operation: its thread has finished (the result,
/// or the disconnect of a failed thread, is waiting in the channel).
#[derive(Debug)]
struct NetProbe {
    finished: Arc<AtomicBool>,
}

impl Readiness for NetProbe {
    fn is_ready(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// Marks the operation finished and wakes `poll` when the helper thread
/// ends, normally or not.
struct Finished(Arc<AtomicBool>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
        wake();
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Release);
    }
}

impl<T: Send + 'static> Pending<T> {
    fn spawn(
        what: &str,
        work: impl FnOnce(&AtomicBool) -> Result<T, Error> + Send + 'static,
    ) -> Result<Pending<T>, Error> {
        if IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Other(format!(
                "too many network operations in flight (limit {MAX_IN_FLIGHT}); retry later"
            )));
        }
        let guard = InFlight;
        let (tx, rx) = mpsc::sync_channel(1);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let finished = Arc::new(AtomicBool::new(false));
        let done = Finished(Arc::clone(&finished));
        std::thread::Builder::new()
            .name(format!("airssys-net-{what}"))
            .spawn(move || {
                // Dropped last: the sender is gone (result sent, or the
                // channel disconnected) before the operation reads as
                // finished.
                let _done = done;
                let _guard = guard;
                let tx = tx;
                let _ = tx.send(work(&flag));
            })
            .map_err(|e| Error::Other(format!("cannot start the {what} operation: {e}")))?;
        Ok(Pending {
            rx,
            taken: false,
            cancel,
            probe: Arc::new(NetProbe { finished }),
        })
    }

    /// `ok(none)` while running, the result once, `closed` after.
    fn take(&mut self) -> Result<Option<T>, Error> {
        if self.taken {
            return Err(Error::Closed("the result was already taken".into()));
        }
        match self.rx.try_recv() {
            Ok(result) => {
                self.taken = true;
                result.map(Some)
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => {
                self.taken = true;
                Err(Error::Other("the operation ended without a result".into()))
            }
        }
    }
}

/// A connected TCP stream (the `tcp-stream` resource).
#[derive(Debug)]
struct NetStream {
    stream: Arc<StdTcpStream>,
    reading: Arc<AtomicBool>,
    writing: Arc<AtomicBool>,
}

impl Drop for NetStream {
    fn drop(&mut self) {
        // Wakes any helper thread still blocked on the socket.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// A UDP socket (the `udp-socket` resource).
#[derive(Debug)]
struct NetUdp {
    socket: Arc<StdUdpSocket>,
    receiving: Arc<AtomicBool>,
    closed: Arc<AtomicBool>,
}

impl Drop for NetUdp {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Clears a busy flag when dropped.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn claim(flag: &Arc<AtomicBool>, what: &str) -> Result<Busy, Error> {
    if flag.swap(true, Ordering::AcqRel) {
        Err(Error::Closed(format!("another {what} is still pending")))
    } else {
        Ok(Busy(Arc::clone(flag)))
    }
}

/// Stores `value` in the table as the guest-visible resource `U`.
fn push<T: Send + 'static, U: 'static>(
    table: &mut ResourceTable,
    value: T,
) -> wasmtime::Result<Resource<U>> {
    Ok(Resource::new_own(table.push(value)?.rep()))
}

/// The host entry behind a guest handle.
fn entry<T: 'static, U: 'static>(handle: &Resource<U>) -> Resource<T> {
    Resource::new_borrow(handle.rep())
}

fn delete<T: 'static, U: 'static>(
    table: &mut ResourceTable,
    handle: Resource<U>,
) -> wasmtime::Result<()> {
    table.delete(Resource::<T>::new_own(handle.rep()))?;
    Ok(())
}

fn io_error(what: &str, target: &str, e: &std::io::Error) -> Error {
    use std::io::ErrorKind as K;
    let text = format!("{what} `{target}`: {e}");
    match e.kind() {
        K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted => Error::Refused(text),
        K::TimedOut | K::WouldBlock => Error::Timeout(text),
        K::BrokenPipe | K::NotConnected => Error::Closed(text),
        _ => Error::Other(text),
    }
}

/// What a helper thread needs to check addresses and write refusals to
/// the runtime's audit log.
#[derive(Clone)]
struct Checker {
    info: Arc<ComponentInfo>,
    services: Arc<Services>,
    /// The host function, for audit records.
    function: &'static str,
}

impl Checker {
    fn new(state: &HostState, function: &'static str) -> Checker {
        Checker {
            info: Arc::clone(&state.info),
            services: Arc::clone(&state.services),
            function,
        }
    }

    fn grants(&self) -> &GrantSet {
        &self.info.grants
    }

    /// Writes the refusal of a concrete address to the audit log.
    fn refused(&self, action: Action, sa: SocketAddr, why: &str) {
        let resource = addr::resource(sa);
        let decision = Decision {
            verdict: Verdict::Deny,
            rule: Rule::NoGrant,
        };
        let event = GuardEvent {
            function: self.function,
            domain: Domain::Net,
            action,
            resource: &resource,
            outcome: Outcome::Refused(&decision),
        };
        self.services.audit.record(&self.info.name, &event, why);
    }

    /// Checks one concrete address, auditing a refusal.
    fn check(&self, action: Action, sa: SocketAddr) -> Result<(), String> {
        addr::check(self.grants(), action, sa).inspect_err(|why| self.refused(action, sa, why))
    }
}

/// Resolves `address` and keeps the addresses the grants allow for
/// `action`; `denied` (naming the first refused address) when none is.
fn checked_addresses(
    checker: &Checker,
    action: Action,
    address: &str,
) -> Result<Vec<SocketAddr>, Error> {
    let addrs = addr::resolve(address).map_err(Error::Unresolved)?;
    let mut ok = Vec::new();
    let mut denial = None;
    for sa in addrs {
        let sa = SocketAddr::new(addr::canonical(sa.ip()), sa.port());
        match checker.check(action, sa) {
            Ok(()) => ok.push(sa),
            Err(why) => {
                denial.get_or_insert(why);
            }
        }
    }
    if ok.is_empty() {
        let why = denial.unwrap_or_else(|| format!("`{address}` resolved to no usable address"));
        return Err(Error::Denied(format!(
            "`{address}` resolved to a refused address: {why}"
        )));
    }
    Ok(ok)
}

/// An IP-literal address is checked at once, so its denial comes from
/// the call itself rather than from `get`.
fn precheck(checker: &Checker, action: Action, address: &str) -> Result<(), Error> {
    match address.parse::<SocketAddr>() {
        Ok(sa) => checker.check(action, sa).map_err(Error::Denied),
        Err(_) => Ok(()),
    }
}

/// Connects to the first reachable checked address of `address`.
fn connect(
    checker: &Checker,
    action: Action,
    address: &str,
    deadline: Instant,
) -> Result<StdTcpStream, Error> {
    let mut last = None;
    for sa in checked_addresses(checker, action, address)? {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        match StdTcpStream::connect_timeout(&sa, left.min(CONNECT_TIMEOUT)) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(io_error("connecting to", &addr::resource(sa), &e)),
        }
    }
    Err(last.unwrap_or_else(|| Error::Timeout(format!("connecting to `{address}` timed out"))))
}

macro_rules! pending_resource {
    ($trait:ident, $resource:ty, $host:ty => $output:ty, $name:literal, |$state:ident, $value:ident| $convert:expr) => {
        impl $trait for HostState {
            fn subscribe(
                &mut self,
                self_: Resource<$resource>,
            ) -> wasmtime::Result<Resource<Pollable>> {
                let pending = self.table.get(&entry::<Pending<$host>, _>(&self_))?;
                let pollable = Pollable::watching(&pending.probe);
                Ok(self.table.push(pollable)?)
            }
            fn get(
                &mut self,
                self_: Resource<$resource>,
            ) -> wasmtime::Result<Result<Option<$output>, Error>> {
                let taken = self
                    .table
                    .get_mut(&entry::<Pending<$host>, _>(&self_))?
                    .take();
                Ok(match taken {
                    Ok(Some($value)) => {
                        let $state = &mut *self;
                        Ok(Some($convert))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                })
            }
            fn drop(&mut self, rep: Resource<$resource>) -> wasmtime::Result<()> {
                delete::<Pending<$host>, _>(&mut self.table, rep)
            }
        }
    };
}

pending_resource!(
    HostPendingConnect,
    PendingConnect,
    StdTcpStream => Resource<TcpStream>,
    "pending-connect",
    |state, stream| {
        let stream = NetStream {
            stream: Arc::new(stream),
            reading: Arc::default(),
            writing: Arc::default(),
        };
        push::<_, TcpStream>(&mut state.table, stream)?
    }
);
pending_resource!(
    HostPendingRead,
    PendingRead,
    Vec<u8> => Vec<u8>,
    "pending-read",
    |_s, v| v
);
pending_resource!(
    HostPendingWrite,
    PendingWrite,
    u64 => u64,
    "pending-write",
    |_s, v| v
);
pending_resource!(
    HostPendingDatagram,
    PendingDatagram,
    Datagram => Datagram,
    "pending-datagram",
    |_s, v| v
);
pending_resource!(
    HostPendingResponse,
    PendingResponse,
    HttpResponse => HttpResponse,
    "pending-response",
    |_s, v| v
);

impl HostTcpStream for HostState {
    fn read(
        &mut self,
        self_: Resource<TcpStream>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        let s = self.table.get(&entry::<NetStream, _>(&self_))?;
        if max == 0 {
            return Ok(Err(Error::InvalidInput("`max` must be at least 1".into())));
        }
        let busy = match claim(&s.reading, "read") {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let stream = Arc::clone(&s.stream);
        let len = (max as usize).min(MAX_READ);
        let pending = Pending::spawn("read", move |_| {
            let _busy = busy;
            let mut buf = vec![0u8; len];
            let peer = stream.peer_addr().map(addr::resource).unwrap_or_default();
            stream
                .set_read_timeout(Some(IO_TIMEOUT))
                .map_err(|e| io_error("reading from", &peer, &e))?;
            let n = std::io::Read::read(&mut &*stream, &mut buf)
                .map_err(|e| io_error("reading from", &peer, &e))?;
            buf.truncate(n);
            Ok(buf)
        });
        Ok(match pending {
            Ok(p) => Ok(push(&mut self.table, p)?),
            Err(e) => Err(e),
        })
    }

    fn write(
        &mut self,
        self_: Resource<TcpStream>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        let s = self.table.get(&entry::<NetStream, _>(&self_))?;
        if data.len() > MAX_WRITE {
            return Ok(Err(Error::InvalidInput(format!(
                "a write of {} bytes exceeds the limit of {MAX_WRITE}",
                data.len()
            ))));
        }
        let busy = match claim(&s.writing, "write") {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let stream = Arc::clone(&s.stream);
        let pending = Pending::spawn("write", move |_| {
            let _busy = busy;
            let peer = stream.peer_addr().map(addr::resource).unwrap_or_default();
            stream
                .set_write_timeout(Some(IO_TIMEOUT))
                .map_err(|e| io_error("writing to", &peer, &e))?;
            std::io::Write::write_all(&mut &*stream, &data)
                .map_err(|e| io_error("writing to", &peer, &e))?;
            Ok(data.len() as u64)
        });
        Ok(match pending {
            Ok(p) => Ok(push(&mut self.table, p)?),
            Err(e) => Err(e),
        })
    }

    fn shutdown(&mut self, self_: Resource<TcpStream>) -> wasmtime::Result<Result<(), Error>> {
        let s = self.table.get(&entry::<NetStream, _>(&self_))?;
        Ok(s.stream
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| io_error("shutting down", "stream", &e)))
    }

    fn drop(&mut self, rep: Resource<TcpStream>) -> wasmtime::Result<()> {
        delete::<NetStream, _>(&mut self.table, rep)
    }
}

impl HostState {
    fn new_udp(&mut self, socket: StdUdpSocket) -> wasmtime::Result<Resource<UdpSocket>> {
        push(
            &mut self.table,
            NetUdp {
                socket: Arc::new(socket),
                receiving: Arc::default(),
                closed: Arc::default(),
            },
        )
    }
}

#[host_impl(interface = "airssys:ext/network", crate = "::airssys_contract")]
impl HostUdpSocket for HostState {
    #[host_fn(capability = "net:connect")]
    fn send_to(
        &mut self,
        self_: Resource<UdpSocket>,
        peer: String,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        if data.len() > MAX_DATAGRAM {
            return Ok(Err(Error::InvalidInput(format!(
                "a datagram of {} bytes exceeds the limit of {MAX_DATAGRAM}",
                data.len()
            ))));
        }
        let checker = Checker::new(self, "airssys:ext/network@1.0.0#[method]udp-socket.send-to");
        if let Err(e) = precheck(&checker, Action::Connect, &peer) {
            return Ok(Err(e));
        }
        let socket = Arc::clone(&self.table.get(&entry::<NetUdp, _>(&self_))?.socket);
        let pending = Pending::spawn("send", move |_| {
            let addrs = checked_addresses(&checker, Action::Connect, &peer)?;
            let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
            // An IPv6 socket reaches IPv4 peers through mapped addresses;
            // an IPv4 socket cannot reach IPv6 peers.
            let target = addrs
                .iter()
                .find_map(|sa| match (sa, v6) {
                    (SocketAddr::V4(a), true) => Some(SocketAddr::new(
                        std::net::IpAddr::V6(a.ip().to_ipv6_mapped()),
                        a.port(),
                    )),
                    (SocketAddr::V6(_), false) => None,
                    _ => Some(*sa),
                })
                .ok_or_else(|| {
                    Error::InvalidInput(format!("`{peer}` has no address of this socket's family"))
                })?;
            let n = socket
                .send_to(&data, target)
                .map_err(|e| io_error("sending to", &peer, &e))?;
            Ok(n as u64)
        });
        Ok(match pending {
            Ok(p) => Ok(push(&mut self.table, p)?),
            Err(e) => Err(e),
        })
    }

    fn receive(
        &mut self,
        self_: Resource<UdpSocket>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingDatagram>, Error>> {
        let s = self.table.get(&entry::<NetUdp, _>(&self_))?;
        if max == 0 {
            return Ok(Err(Error::InvalidInput("`max` must be at least 1".into())));
        }
        let busy = match claim(&s.receiving, "receive") {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let socket = Arc::clone(&s.socket);
        let closed = Arc::clone(&s.closed);
        let checker = Checker::new(self, "airssys:ext/network@1.0.0#[method]udp-socket.receive");
        let max = (max as usize).min(MAX_DATAGRAM);
        let pending = Pending::spawn("receive", move |cancel| {
            let _busy = busy;
            let deadline = Instant::now() + IO_TIMEOUT;
            let mut buf = vec![0u8; 65_536];
            while Instant::now() < deadline {
                if cancel.load(Ordering::Acquire) || closed.load(Ordering::Acquire) {
                    return Err(Error::Closed("the receive was abandoned".into()));
                }
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .map_err(|e| io_error("receiving on", "socket", &e))?;
                let (n, from) = match socket.recv_from(&mut buf) {
                    Ok(got) => got,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(io_error("receiving on", "socket", &e)),
                };
                let from = SocketAddr::new(addr::canonical(from.ip()), from.port());
                if checker.check(Action::Connect, from).is_err() {
                    // Dropped; the refusal is in the audit log.
                    continue;
                }
                return Ok(Datagram {
                    peer: addr::resource(from),
                    data: buf[..n.min(max)].to_vec(),
                });
            }
            Err(Error::Timeout(format!(
                "no datagram from a granted peer within {} s",
                IO_TIMEOUT.as_secs()
            )))
        });
        Ok(match pending {
            Ok(p) => Ok(push(&mut self.table, p)?),
            Err(e) => Err(e),
        })
    }

    fn local_address(
        &mut self,
        self_: Resource<UdpSocket>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let s = self.table.get(&entry::<NetUdp, _>(&self_))?;
        Ok(s.socket
            .local_addr()
            .map(addr::resource)
            .map_err(|e| io_error("reading the address of", "socket", &e)))
    }

    fn drop(&mut self, rep: Resource<UdpSocket>) -> wasmtime::Result<()> {
        delete::<NetUdp, _>(&mut self.table, rep)
    }
}

fn method_name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Head => "HEAD",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Options => "OPTIONS",
    }
}

/// Runs one HTTP request (over TLS when `tls`), following redirects that
/// stay within the grants; an https → http redirect is refused.
fn http_exchange(
    checker: &Checker,
    mut request: http::Outgoing,
    mut tls: bool,
    deadline: Instant,
) -> Result<HttpResponse, Error> {
    let mut hops = 0;
    loop {
        let target = request.authority.clone();
        // The address is checked (in `connect`) before any TLS byte.
        let stream = connect(checker, Action::Http, &target, deadline)?;
        let exchanged = if tls {
            let mut conn = tls::handshake(&checker.services.tls, &target, &stream, deadline)
                .map_err(|e| match e {
                    tls::HandshakeError::Timeout(m) => Error::Timeout(m),
                    tls::HandshakeError::Failed(m) => Error::Other(m),
                })?;
            let mut socket = &stream;
            let secured = rustls::Stream::new(&mut conn, &mut socket);
            http::exchange(secured, &stream, &request, deadline)
        } else {
            http::exchange(&stream, &stream, &request, deadline)
        };
        let response = exchanged.map_err(|e| match e {
            http::HttpError::Timeout(m) => Error::Timeout(m),
            http::HttpError::Protocol(m) => Error::Other(format!("from `{target}`: {m}")),
            http::HttpError::Io(e) => io_error("exchanging with", &target, &e),
        })?;
        let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
        let next = response
            .header("location")
            .filter(|_| redirect)
            .map(|l| http::location(l, &target, tls));
        if let Some(http::Location::Http {
            tls: false,
            authority,
            path,
        }) = &next
            && tls
        {
            return Err(Error::Other(format!(
                "redirect from https `{target}` to plain http `{authority}{}` refused: the host does not downgrade https",
                path.escape_debug()
            )));
        }
        let Some(http::Location::Http {
            tls: next_tls,
            authority,
            path,
        }) = next
        else {
            // Not a redirect, or one to another scheme: the 3xx is
            // returned as is.
            return Ok(HttpResponse {
                status: response.status,
                headers: response
                    .headers
                    .into_iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
                body: response.body,
            });
        };
        hops += 1;
        if hops > MAX_REDIRECTS {
            return Err(Error::Other(format!(
                "more than {MAX_REDIRECTS} redirects, the last to `{authority}{path}`"
            )));
        }
        let capability = format!("net:http:{authority}");
        let allowed = Request::new(Domain::Net, Action::Http, &authority)
            .map(|r| checker.grants().check(&r).is_allowed());
        match allowed {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::Denied(format!(
                    "redirect from `{target}` to `{authority}` refused: capability `{capability}` is not granted"
                )));
            }
            Err(e) => {
                return Err(Error::Denied(format!(
                    "redirect from `{target}` to `{authority}` refused: `{capability}` is not a valid request ({e})"
                )));
            }
        }
        if http::validate(&path, &[]).is_err() {
            return Err(Error::Other(format!(
                "redirect from `{target}` to an unusable path `{}`",
                path.escape_debug()
            )));
        }
        if authority != target {
            request.headers.retain(|(k, _)| {
                !["authorization", "cookie", "proxy-authorization"]
                    .iter()
                    .any(|s| k.eq_ignore_ascii_case(s))
            });
        }
        if response.status == 303
            || (matches!(response.status, 301 | 302) && request.method == "POST")
        {
            request.method = if request.method == "HEAD" {
                "HEAD"
            } else {
                "GET"
            };
            request.body.clear();
        }
        request.authority = authority;
        request.path = path;
        tls = next_tls;
    }
}

#[host_impl(interface = "airssys:ext/network", crate = "::airssys_contract")]
impl Host for HostState {
    #[host_fn(capability = "net:connect")]
    fn connect_tcp(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PendingConnect>, Error>> {
        let checker = Checker::new(self, "airssys:ext/network@1.0.0#connect-tcp");
        if let Err(e) = precheck(&checker, Action::Connect, &address) {
            return Ok(Err(e));
        }
        let pending = Pending::spawn("connect", move |_| {
            connect(
                &checker,
                Action::Connect,
                &address,
                Instant::now() + CONNECT_TIMEOUT,
            )
        });
        Ok(match pending {
            Ok(p) => Ok(push(&mut self.table, p)?),
            Err(e) => Err(e),
        })
    }

    #[host_fn(capability = "net:bind")]
    fn bind_udp(
        &mut self,
        local_address: String,
    ) -> wasmtime::Result<Result<Resource<UdpSocket>, Error>> {
        let Ok(sa) = local_address.parse::<SocketAddr>() else {
            return Ok(Err(Error::InvalidInput(format!(
                "`{local_address}` is not an `ip:port` address (names are not bound)"
            ))));
        };
        match StdUdpSocket::bind(sa) {
            Ok(socket) => Ok(Ok(self.new_udp(socket)?)),
            Err(e) => Ok(Err(io_error("binding", &local_address, &e))),
        }
    }

    fn open_udp(&mut self) -> wasmtime::Result<Result<Resource<UdpSocket>, Error>> {
        // Dual-stack where the system allows it, else IPv4 only.
        let socket = StdUdpSocket::bind("[::]:0").or_else(|_| StdUdpSocket::bind("0.0.0.0:0"));
        match socket {
            Ok(socket) => Ok(Ok(self.new_udp(socket)?)),
            Err(e) => Ok(Err(io_error("opening", "a UDP socket", &e))),
        }
    }

    #[host_fn(capability = "net:http")]
    fn send_http(
        &mut self,
        authority: String,
        request: HttpRequest,
    ) -> wasmtime::Result<Result<Resource<PendingResponse>, Error>> {
        let headers: Vec<(String, String)> = request
            .headers
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect();
        if let Err(e) = http::validate(&request.path_and_query, &headers) {
            return Ok(Err(Error::InvalidInput(e)));
        }
        if request.body.len() > http::MAX_BODY_BYTES {
            return Ok(Err(Error::InvalidInput(format!(
                "a request body of {} bytes exceeds the limit of {}",
                request.body.len(),
                http::MAX_BODY_BYTES
            ))));
        }
        let checker = Checker::new(self, "airssys:ext/network@1.0.0#send-http");
        if let Err(e) = precheck(&checker, Action::Http, &authority) {
            return Ok(Err(e));
        }
        let timeout = request
            .timeout_ms
            .map_or(HTTP_DEFAULT_TIMEOUT, Duration::from_millis)
            .min(HTTP_MAX_TIMEOUT);
        let tls = request.tls;
        let outgoing = http::Outgoing {
            method: method_name(request.method),
            authority,
            path: request.path_and_query,
            headers,
            body: request.body,
        };
        let pending = Pending::spawn("http", move |_| {
            http_exchange(&checker, outgoing, tls, Instant::now() + timeout)
        });
        Ok(match pending {
            Ok(p) => Ok(push(&mut self.table, p)?),
            Err(e) => Err(e),
        })
    }
}
