//! `airssys:ext/network`: TCP streams, UDP sockets and an HTTP client
//! (HTTP/1.1 and HTTP/2 through hyper), with every address checked.
//!
//! - The capability guard (from `#[airssys::host_fn]`) checks the request
//!   as written (`net:connect:{address}`, `net:bind:{local-address}`,
//!   `net:http:{authority}`); a name no grant allows is never resolved.
//! - The host then resolves names itself and checks every address it would
//!   use again as an IP request (`net:connect:10.0.0.5:443`, see
//!   [`addr::check`]); only addresses that pass are used, and the
//!   connection goes to that checked address (no second resolution). A name
//!   grant reaches the public addresses of its name; private addresses need
//!   a rule of the policy naming them, and special addresses (loopback,
//!   this host's own addresses, link-local, metadata, multicast, ...) always
//!   need a rule of the policy itself that names them by address, whatever
//!   the manifest says.
//! - Operations that wait are tasks on one small shared runtime (see
//!   [`task`]) and complete through a `pending-*` resource whose `get`
//!   never blocks; its `subscribe` gives a pollable that turns ready when
//!   the task has finished (and wakes waiting `poll` calls, see
//!   [`super::poll`]). Each holds one of the component's
//!   `limits.max_net_in_flight` slots while it runs and one of the
//!   instance's `limits.max_pending` slots, plus the bytes of its result
//!   (`limits.held_bytes`), until collected or dropped; each runs under one
//!   deadline, capped by `limits.net_timeout_ms`. Dropping the pending
//!   resource, or the instance, cancels the operation.
//! - UDP datagrams from senders no `net:connect` grant covers (by the same
//!   address rules) are dropped; HTTP redirects are followed up to
//!   [`MAX_REDIRECTS`] times, each hop checked again against `net:http`.

mod addr;
mod component;
mod http;
mod interfaces;
mod task;
mod tls;

pub(crate) use component::NetComponent;
pub(crate) use tls::TlsRoots;

use std::future::Future;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use airssys_contract::capability::{Action, Domain, Request};
use airssys_macros::host_impl;
use tokio::net::{TcpStream as TokioTcp, UdpSocket as TokioUdp};
use wasmtime::component::Resource;

use super::bindings::airssys::core::types::KeyValue;
use super::bindings::airssys::ext::network::{
    Datagram, Error, Host, HostPendingConnect, HostPendingDatagram, HostPendingRead,
    HostPendingResponse, HostPendingWrite, HostTcpStream, HostUdpSocket, HttpMethod, HttpRequest,
    HttpResponse, PendingConnect, PendingDatagram, PendingRead, PendingResponse, PendingWrite,
    Pollable, TcpStream, UdpSocket,
};
use super::state::{ComponentInfo, HostState, Services};
use crate::audit::{Decided, DecidingRule};
use crate::error::LimitExceeded;
use addr::Via;
use task::{Charge, Deadline, Pending};

/// How long a TCP connect may take (each address tried).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one TCP read or write, one datagram send or one UDP receive
/// may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest read per `tcp-stream.read`.
const MAX_READ: usize = 64 * 1024;
/// Largest write per `tcp-stream.write`.
const MAX_WRITE: usize = 1024 * 1024;
/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_507;
/// Default HTTP exchange time (the request's `timeout-ms` may ask for
/// another, up to `limits.net_timeout_ms`).
const HTTP_DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed per request.
pub(crate) const MAX_REDIRECTS: usize = 5;

/// A limit error as the interface's `other` error (it has no
/// `quota-exceeded` case); the text names the limit and its policy key.
fn limit_error(limit: &LimitExceeded) -> Error {
    Error::Other(limit.to_string())
}

/// A connected TCP stream (the `tcp-stream` resource).
#[derive(Debug)]
struct NetStream {
    stream: Arc<TokioTcp>,
    /// `ip:port` of the peer, for messages.
    peer: String,
    reading: Arc<AtomicBool>,
    writing: Arc<AtomicBool>,
}

impl Drop for NetStream {
    fn drop(&mut self) {
        // Ends any read or write still running on the socket; the socket
        // itself closes when the last of them lets go of it.
        let _ = socket2::SockRef::from(&*self.stream).shutdown(std::net::Shutdown::Both);
    }
}

/// A UDP socket (the `udp-socket` resource).
#[derive(Debug)]
struct NetUdp {
    socket: Arc<TokioUdp>,
    receiving: Arc<AtomicBool>,
    /// Dropped with the socket: a receive still running ends.
    closed: tokio::sync::watch::Sender<()>,
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

/// The host entry behind a guest handle.
fn entry<T: 'static, U: 'static>(handle: &Resource<U>) -> Resource<T> {
    Resource::new_borrow(handle.rep())
}

fn delete<T: 'static, U: 'static>(
    state: &mut HostState,
    handle: Resource<U>,
) -> wasmtime::Result<()> {
    state.table.delete(Resource::<T>::new_own(handle.rep()))?;
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

/// What a task needs to check addresses and write refusals to the
/// runtime's audit log.
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

    /// Writes the refusal of a concrete address to the audit log.
    fn refused(&self, action: Action, sa: SocketAddr, why: &str) {
        let resource = addr::resource(sa);
        self.services.audit.record(&Decided {
            component: &self.info.name,
            function: self.function,
            domain: Domain::Net,
            action,
            resource: &resource,
            rule: DecidingRule::Address(why),
            origin: None,
        });
    }

    /// Checks one concrete address, auditing a refusal.
    fn check(&self, action: Action, sa: SocketAddr, via: Via<'_>) -> Result<(), String> {
        addr::check(self.info.net.rules(&self.info.grants), action, sa, via)
            .inspect_err(|why| self.refused(action, sa, why))
    }

    /// Whether the effective grant allows the request as written (a
    /// redirect's authority).
    fn allows(&self, action: Action, address: &str) -> Result<bool, String> {
        Request::new(Domain::Net, action, address)
            .map(|r| self.info.grants.check(&r).is_allowed())
            .map_err(|e| e.to_string())
    }
}

/// The addresses of `address` that may be used for `action`: the literal
/// itself, or those of its resolved addresses that pass; `denied` (naming
/// the first refused address) when none does.
async fn checked_addresses(
    checker: &Checker,
    action: Action,
    address: &str,
) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(sa) = address.parse::<SocketAddr>() {
        let sa = SocketAddr::new(addr::canonical(sa.ip()), sa.port());
        checker
            .check(action, sa, Via::Literal)
            .map_err(Error::Denied)?;
        return Ok(vec![sa]);
    }
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let slot = checker
        .info
        .net
        .in_flight
        .lookup()
        .map_err(|l| limit_error(&l))?;
    let target = address.to_owned();
    let addrs = task::blocking_lookup(slot, move || addr::resolve(&target))
        .await?
        .map_err(Error::Unresolved)?;
    let mut ok = Vec::new();
    let mut denial = None;
    for sa in addrs {
        match checker.check(action, sa, Via::Name(host)) {
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
        Ok(sa) => checker
            .check(
                action,
                SocketAddr::new(addr::canonical(sa.ip()), sa.port()),
                Via::Literal,
            )
            .map_err(Error::Denied),
        Err(_) => Ok(()),
    }
}

/// Connects to the first reachable checked address of `address`.
async fn connect(
    checker: &Checker,
    action: Action,
    address: &str,
    deadline: &Deadline,
) -> Result<TokioTcp, Error> {
    let mut last = None;
    for sa in checked_addresses(checker, action, address).await? {
        let Some(left) = deadline.left() else {
            break;
        };
        let target = addr::resource(sa);
        match tokio::time::timeout(left.min(CONNECT_TIMEOUT), TokioTcp::connect(sa)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(io_error("connecting to", &target, &e)),
            Err(_) => {
                last = Some(Error::Timeout(format!(
                    "connecting to `{target}` timed out"
                )));
            }
        }
    }
    Err(last.unwrap_or_else(|| deadline.expired(&format!("connecting to `{address}`"))))
}

impl HostState {
    /// Starts a network operation: takes one of the component's in-flight
    /// slots and one of the instance's pending slots with `bytes` of its
    /// budget, adds the pending resource `U` to the table, then runs `work`
    /// under `deadline`. A limit reached answers `other` naming it.
    fn start_net<T, U, F>(
        &mut self,
        what: String,
        bytes: u64,
        deadline: Deadline,
        work: impl FnOnce(Charge) -> F,
    ) -> wasmtime::Result<Result<Resource<U>, Error>>
    where
        T: Send + 'static,
        U: 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let slot = match self.info.net.in_flight.acquire() {
            Ok(slot) => slot,
            Err(limit) => return Ok(Err(limit_error(&limit))),
        };
        let hold = match self.budget.reserve(bytes) {
            Ok(hold) => hold,
            Err(limit) => return Ok(Err(limit_error(&limit))),
        };
        let (pending, runner) = Pending::<T>::new(hold, slot, &self.wake);
        let handle = match self.push(pending)? {
            Ok(handle) => handle,
            Err(limit) => return Ok(Err(limit_error(&limit))),
        };
        let started = self
            .table
            .get_mut(&handle)?
            .start(runner, what, deadline, work);
        if let Err(e) = started {
            self.table.delete(handle)?;
            return Ok(Err(e));
        }
        Ok(Ok(Resource::new_own(handle.rep())))
    }

    /// The deadline of an operation that the host bounds by `wanted`
    /// (`wanted_by` says so), capped by `limits.net_timeout_ms`.
    fn net_deadline(&self, wanted: Duration, wanted_by: &str) -> Deadline {
        Deadline::new(wanted, wanted_by, self.info.limits.net_timeout)
    }
}

macro_rules! pending_resource {
    ($trait:ident, $resource:ty, $host:ty => $output:ty, |$state:ident, $value:ident| $convert:expr) => {
        impl $trait for HostState {
            fn subscribe(
                &mut self,
                self_: Resource<$resource>,
            ) -> wasmtime::Result<Resource<Pollable>> {
                let pollable = self
                    .table
                    .get(&entry::<Pending<$host>, _>(&self_))?
                    .pollable();
                // `subscribe` has no error case: a full handle table traps
                // with the limit's error.
                self.push(pollable)?.map_err(wasmtime::Error::new)
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
                        let converted: wasmtime::Result<Result<$output, Error>> = $convert;
                        converted?.map(Some)
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                })
            }
            fn drop(&mut self, rep: Resource<$resource>) -> wasmtime::Result<()> {
                delete::<Pending<$host>, _>(self, rep)
            }
        }
    };
}

pending_resource!(
    HostPendingConnect,
    PendingConnect,
    TokioTcp => Resource<TcpStream>,
    |state, stream| {
        let peer = stream.peer_addr().map(addr::resource).unwrap_or_default();
        let stream = NetStream {
            stream: Arc::new(stream),
            peer,
            reading: Arc::default(),
            writing: Arc::default(),
        };
        state.push(stream).map(|pushed| {
            pushed
                .map(|h| Resource::new_own(h.rep()))
                .map_err(|limit| limit_error(&limit))
        })
    }
);
pending_resource!(
    HostPendingRead,
    PendingRead,
    Vec<u8> => Vec<u8>,
    |_s, v| wasmtime::Result::Ok(Ok(v))
);
pending_resource!(
    HostPendingWrite,
    PendingWrite,
    u64 => u64,
    |_s, v| wasmtime::Result::Ok(Ok(v))
);
pending_resource!(
    HostPendingDatagram,
    PendingDatagram,
    Datagram => Datagram,
    |_s, v| wasmtime::Result::Ok(Ok(v))
);
pending_resource!(
    HostPendingResponse,
    PendingResponse,
    HttpResponse => HttpResponse,
    |_s, v| wasmtime::Result::Ok(Ok(v))
);

impl HostTcpStream for HostState {
    fn read(
        &mut self,
        self_: Resource<TcpStream>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingRead>, Error>> {
        if max == 0 {
            return Ok(Err(Error::InvalidInput("`max` must be at least 1".into())));
        }
        let s = self.table.get(&entry::<NetStream, _>(&self_))?;
        let busy = match claim(&s.reading, "read") {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let stream = Arc::clone(&s.stream);
        let what = format!("the read from `{}`", s.peer);
        let peer = s.peer.clone();
        let len = (max as usize).min(MAX_READ);
        let deadline = self.net_deadline(IO_TIMEOUT, "the host's 60 s limit per read");
        self.start_net::<Vec<u8>, _, _>(what, len as u64, deadline, move |charge| async move {
            let _busy = busy;
            let mut buf = vec![0u8; len];
            loop {
                stream
                    .readable()
                    .await
                    .map_err(|e| io_error("reading from", &peer, &e))?;
                match stream.try_read(&mut buf) {
                    Ok(n) => {
                        buf.truncate(n);
                        charge.shrink_to(n as u64);
                        return Ok(buf);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(io_error("reading from", &peer, &e)),
                }
            }
        })
    }

    fn write(
        &mut self,
        self_: Resource<TcpStream>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Result<Resource<PendingWrite>, Error>> {
        if data.len() > MAX_WRITE {
            return Ok(Err(Error::InvalidInput(format!(
                "a write of {} bytes exceeds the limit of {MAX_WRITE}",
                data.len()
            ))));
        }
        let s = self.table.get(&entry::<NetStream, _>(&self_))?;
        let busy = match claim(&s.writing, "write") {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let stream = Arc::clone(&s.stream);
        let what = format!("the write to `{}`", s.peer);
        let peer = s.peer.clone();
        let deadline = self.net_deadline(IO_TIMEOUT, "the host's 60 s limit per write");
        // The data is held until written.
        self.start_net::<u64, _, _>(
            what,
            data.len() as u64,
            deadline,
            move |charge| async move {
                let _busy = busy;
                let mut rest = &data[..];
                while !rest.is_empty() {
                    stream
                        .writable()
                        .await
                        .map_err(|e| io_error("writing to", &peer, &e))?;
                    match stream.try_write(rest) {
                        Ok(n) => rest = &rest[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(io_error("writing to", &peer, &e)),
                    }
                }
                charge.shrink_to(0);
                Ok(data.len() as u64)
            },
        )
    }

    fn shutdown(&mut self, self_: Resource<TcpStream>) -> wasmtime::Result<Result<(), Error>> {
        let s = self.table.get(&entry::<NetStream, _>(&self_))?;
        Ok(socket2::SockRef::from(&*s.stream)
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| io_error("shutting down", &s.peer, &e)))
    }

    fn drop(&mut self, rep: Resource<TcpStream>) -> wasmtime::Result<()> {
        delete::<NetStream, _>(self, rep)
    }
}

impl HostState {
    fn new_udp(
        &mut self,
        socket: std::io::Result<StdUdpSocket>,
        what: &str,
    ) -> wasmtime::Result<Result<Resource<UdpSocket>, Error>> {
        let socket = socket
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| io_error("binding", what, &e))
            .and_then(|s| {
                let _runtime = task::handle()?.enter();
                TokioUdp::from_std(s).map_err(|e| io_error("binding", what, &e))
            });
        let socket = match socket {
            Ok(socket) => socket,
            Err(e) => return Ok(Err(e)),
        };
        let (closed, _) = tokio::sync::watch::channel(());
        let udp = NetUdp {
            socket: Arc::new(socket),
            receiving: Arc::default(),
            closed,
        };
        Ok(self
            .push(udp)?
            .map(|h| Resource::new_own(h.rep()))
            .map_err(|limit| limit_error(&limit)))
    }
}

/// `addrs`' first address reachable from a socket of family `v6`: an IPv6
/// socket reaches IPv4 peers through mapped addresses, an IPv4 socket no
/// IPv6 peer.
fn reachable(addrs: &[SocketAddr], v6: bool) -> Option<SocketAddr> {
    addrs.iter().find_map(|sa| match (sa, v6) {
        (SocketAddr::V4(a), true) => Some(SocketAddr::new(
            std::net::IpAddr::V6(a.ip().to_ipv6_mapped()),
            a.port(),
        )),
        (SocketAddr::V6(_), false) => None,
        _ => Some(*sa),
    })
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
        let what = format!("the datagram to `{peer}`");
        let deadline = self.net_deadline(IO_TIMEOUT, "the host's 60 s limit per datagram");
        self.start_net::<u64, _, _>(
            what,
            data.len() as u64,
            deadline,
            move |charge| async move {
                let addrs = checked_addresses(&checker, Action::Connect, &peer).await?;
                let v6 = socket.local_addr().is_ok_and(|a| a.is_ipv6());
                let target = reachable(&addrs, v6).ok_or_else(|| {
                    Error::InvalidInput(format!("`{peer}` has no address of this socket's family"))
                })?;
                let n = socket
                    .send_to(&data, target)
                    .await
                    .map_err(|e| io_error("sending to", &peer, &e))?;
                charge.shrink_to(0);
                Ok(n as u64)
            },
        )
    }

    fn receive(
        &mut self,
        self_: Resource<UdpSocket>,
        max: u32,
    ) -> wasmtime::Result<Result<Resource<PendingDatagram>, Error>> {
        if max == 0 {
            return Ok(Err(Error::InvalidInput("`max` must be at least 1".into())));
        }
        let s = self.table.get(&entry::<NetUdp, _>(&self_))?;
        let busy = match claim(&s.receiving, "receive") {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let socket = Arc::clone(&s.socket);
        let mut closed = s.closed.subscribe();
        let checker = Checker::new(self, "airssys:ext/network@1.0.0#[method]udp-socket.receive");
        let max = (max as usize).min(MAX_DATAGRAM);
        let deadline = self.net_deadline(IO_TIMEOUT, "the host's 60 s limit per receive");
        let what = "the receive".to_owned();
        self.start_net::<Datagram, _, _>(what, max as u64, deadline, move |charge| async move {
            let _busy = busy;
            let mut buf = vec![0u8; max];
            let receive = async {
                loop {
                    let (n, from) = socket
                        .recv_from(&mut buf)
                        .await
                        .map_err(|e| io_error("receiving on", "socket", &e))?;
                    let from = SocketAddr::new(addr::canonical(from.ip()), from.port());
                    if checker.check(Action::Connect, from, Via::Literal).is_err() {
                        // Dropped; the refusal is in the audit log.
                        continue;
                    }
                    charge.shrink_to(n as u64);
                    return Ok(Datagram {
                        peer: addr::resource(from),
                        data: buf[..n].to_vec(),
                    });
                }
            };
            tokio::select! {
                received = receive => received,
                _ = closed.changed() => Err(Error::Closed("the socket was dropped".into())),
            }
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
        delete::<NetUdp, _>(self, rep)
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
/// stay within the grants; an https → http redirect is refused. The
/// request body (`sent` bytes) stays charged until the exchange ends; each
/// hop's response is charged as it arrives.
async fn http_exchange(
    checker: Checker,
    mut request: http::Outgoing,
    mut tls: bool,
    deadline: Deadline,
    charge: Charge,
) -> Result<HttpResponse, Error> {
    let sent = request.body.len() as u64;
    let mut hops = 0;
    loop {
        // A redirect's response is not kept.
        charge.shrink_to(sent);
        let target = request.authority.clone();
        // The address is checked (in `connect`) before any TLS byte.
        let stream = connect(&checker, Action::Http, &target, &deadline).await?;
        let connection = if tls {
            http::Connection::Tls(Box::new(
                tls::handshake(&checker.services.tls, &target, stream)
                    .await
                    .map_err(Error::Other)?,
            ))
        } else {
            http::Connection::Plain(stream)
        };
        let response = http::exchange(connection, &request, &charge)
            .await
            .map_err(|e| match e {
                http::HttpError::Protocol(m) => Error::Other(format!("from `{target}`: {m}")),
                http::HttpError::Limit(limit) => limit_error(&limit),
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
            // returned as is. Only the response stays charged.
            let held: usize = response.body.len()
                + response
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>();
            charge.shrink_to(held as u64);
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
        match checker.allows(Action::Http, &authority) {
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
        let what = format!("connecting to `{address}`");
        let deadline = self.net_deadline(CONNECT_TIMEOUT, "the host's 10 s connect timeout");
        self.start_net::<TokioTcp, _, _>(what, 0, deadline.clone(), move |_| async move {
            connect(&checker, Action::Connect, &address, &deadline).await
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
        self.new_udp(StdUdpSocket::bind(sa), &local_address)
    }

    fn open_udp(&mut self) -> wasmtime::Result<Result<Resource<UdpSocket>, Error>> {
        // Dual-stack where the system allows it, else IPv4 only.
        let socket = StdUdpSocket::bind("[::]:0").or_else(|_| StdUdpSocket::bind("0.0.0.0:0"));
        self.new_udp(socket, "a UDP socket")
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
        let deadline = match request.timeout_ms {
            Some(ms) => self.net_deadline(Duration::from_millis(ms), "the request's `timeout-ms`"),
            None => self.net_deadline(HTTP_DEFAULT_TIMEOUT, "the host's default of 30 s"),
        };
        let what = format!("the HTTP request to `{authority}`");
        let outgoing = http::Outgoing {
            method: method_name(request.method),
            authority,
            path: request.path_and_query,
            headers,
            body: request.body,
        };
        let sent = outgoing.body.len() as u64;
        let tls = request.tls;
        self.start_net::<HttpResponse, _, _>(what, sent, deadline.clone(), move |charge| {
            http_exchange(checker, outgoing, tls, deadline, charge)
        })
    }
}
