//! Routes, auth and error mapping of the ingress, and its accept loop.
//!
//! | route | answer |
//! |---|---|
//! | `POST /v1/components/{name}/request` | the body is the request's payload (source `http`); 200 with the reply |
//! | `POST /v1/topics/{topic}` | the body is published on `topic` from the host; 202 |
//! | `GET /v1/health` | 200 when every component is serving, else 503 |
//! | `GET /v1/components` | every component's state, JSON |
//! | `GET /metrics` | Prometheus text |
//! | `POST /v1/admin/reload` | reloads the policy file; always needs the token |
//!
//! A refusal is answered with the host error's status and a JSON body
//! `{"status": 403, "error": "Forbidden", "message": ".."}`. Unknown
//! paths are 404, a known path with another method 405, a body over
//! [`MAX_BODY`] 413. With a token configured every request without
//! `Authorization: Bearer <token>` is answered 401 before it is routed.
//!
//! The accept loop keeps clients within [`Bounds`]: connections in all
//! and per client address, and deadlines for a request's head, its body
//! (408) and taking its answer, so a client that stalls holds nothing for
//! long (docs/serve.md, "Clients that hold connections").

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::header::{ALLOW, AUTHORIZATION, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use subtle::ConstantTimeEq;

use airssys_runtime::broker::NatsConnectionState;

use super::{Backend, Failure};

/// The largest request body taken, in bytes: the broker's largest payload
/// (`BrokerConfig::max_payload_bytes`, 1 MiB).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// The source a component sees for requests that came over HTTP.
pub(crate) const SOURCE: &str = "http";

/// The `Content-Type` of `GET /metrics`.
const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The bearer token requests must carry. Its `Debug` hides it.
pub(crate) struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    /// A token of `text`, which must not be empty.
    pub(crate) fn new(text: &str) -> Option<Token> {
        let text = text.trim();
        (!text.is_empty()).then(|| Token(text.as_bytes().to_vec()))
    }

    /// Whether `header` is `Bearer <this token>`, compared in constant
    /// time (only the length can show).
    fn matches(&self, header: Option<&HeaderValue>) -> bool {
        let Some(value) = header.map(HeaderValue::as_bytes) else {
            return false;
        };
        let Some((scheme, given)) = value.split_first_chunk::<7>() else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer ") && bool::from(given.ct_eq(&self.0))
    }
}

/// The ingress: the host behind it, the token it asks for, and what
/// its clients may hold.
pub(crate) struct Ingress {
    backend: Arc<dyn Backend>,
    token: Option<Token>,
    bounds: Bounds,
    stats: Stats,
}

/// What the ingress's bounds did, for `GET /metrics`.
#[derive(Debug, Default)]
struct Stats {
    /// Connections served now.
    open: AtomicU64,
    /// Connections closed at accept: their client held its share.
    per_address: AtomicU64,
    /// Connections closed without a whole request head in time.
    header: AtomicU64,
    /// Requests answered 408: the body did not come in time.
    body: AtomicU64,
    /// Connections closed: the client took no answer in time.
    write: AtomicU64,
}

impl Stats {
    /// The counters in Prometheus text.
    fn text(&self) -> String {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut text = format!(
            "# HELP airssys_http_connections HTTP connections served now.\n\
             # TYPE airssys_http_connections gauge\n\
             airssys_http_connections {}\n\
             # HELP airssys_http_connections_cut_total HTTP connections or requests the ingress \
             cut at a bound: per_address (closed at accept, the client held its share), header \
             (no whole request head in time), body (408, the body did not come in time), write \
             (the client took no answer in time).\n\
             # TYPE airssys_http_connections_cut_total counter\n",
            get(&self.open)
        );
        for (reason, counter) in [
            ("per_address", &self.per_address),
            ("header", &self.header),
            ("body", &self.body),
            ("write", &self.write),
        ] {
            let _ = writeln!(
                text,
                "airssys_http_connections_cut_total{{reason=\"{reason}\"}} {}",
                get(counter)
            );
        }
        text
    }

    /// Counts a connection that ended with `error`, if a bound cut it.
    fn count_end(&self, error: &hyper::Error) {
        if error.is_timeout() {
            self.header.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            if cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
            {
                self.write.fetch_add(1, Ordering::Relaxed);
                return;
            }
            source = cause.source();
        }
    }
}

impl Ingress {
    /// An ingress to `backend` within `bounds`; with `token`, every
    /// request needs it.
    pub(crate) fn new(backend: Arc<dyn Backend>, token: Option<Token>, bounds: Bounds) -> Ingress {
        Ingress {
            backend,
            token,
            bounds,
            stats: Stats::default(),
        }
    }

    /// Whether requests need a token.
    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// A route, with what its path names.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Request(&'a str),
    Publish(&'a str),
    Health,
    Components,
    Metrics,
    Reload,
}

impl Route<'_> {
    /// The method the route takes.
    fn method(&self) -> Method {
        match self {
            Route::Request(_) | Route::Publish(_) | Route::Reload => Method::POST,
            Route::Health | Route::Components | Route::Metrics => Method::GET,
        }
    }
}

/// The route of `path`, if it is one.
fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    match segments.as_slice() {
        ["v1", "components", name, "request"] if !name.is_empty() => Some(Route::Request(name)),
        ["v1", "topics", topic] if !topic.is_empty() => Some(Route::Publish(topic)),
        ["v1", "health"] => Some(Route::Health),
        ["v1", "components"] => Some(Route::Components),
        ["metrics"] => Some(Route::Metrics),
        ["v1", "admin", "reload"] => Some(Route::Reload),
        _ => None,
    }
}

/// A response of `status` with `body` of `content_type`.
fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// A refusal: `{"status": .., "error": "<reason phrase>", "message": ..}`.
fn refuse(status: u16, message: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::json!({
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    });
    respond(status, "application/json", format!("{body}\n"))
}

/// Answers one request.
pub(crate) async fn handle<B>(
    ingress: Arc<Ingress>,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(token) = &ingress.token
        && !token.matches(request.headers().get(AUTHORIZATION))
    {
        let mut response = refuse(
            401,
            "this server needs `Authorization: Bearer <token>` (the token of its --token-file \
             or AIRSSYS_SERVE_TOKEN)",
        );
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        return Ok(response);
    }
    let path = request.uri().path().to_owned();
    let Some(route) = route(&path) else {
        return Ok(refuse(
            404,
            &format!(
                "no route `{}`; the routes are POST /v1/components/NAME/request, POST \
                 /v1/topics/TOPIC, GET /v1/health, GET /v1/components, GET /metrics, POST \
                 /v1/admin/reload",
                airssys_contract::text::printable(&path)
            ),
        ));
    };
    let wanted = route.method();
    if *request.method() != wanted {
        let mut response = refuse(
            405,
            &format!(
                "`{}` takes {wanted}, not {}",
                airssys_contract::text::printable(&path),
                request.method()
            ),
        );
        if let Ok(allow) = HeaderValue::from_str(wanted.as_str()) {
            response.headers_mut().insert(ALLOW, allow);
        }
        return Ok(response);
    }
    if route == Route::Reload && ingress.token.is_none() {
        return Ok(refuse(
            403,
            "admin calls need a token, and this server has none: start it with `--token-file \
             FILE` or the environment variable AIRSSYS_SERVE_TOKEN",
        ));
    }
    let backend = Arc::clone(&ingress.backend);
    let response = match route {
        Route::Request(name) => {
            let payload = match read_body(request.into_body(), &ingress).await {
                Ok(payload) => payload,
                Err(response) => return Ok(response),
            };
            let name = name.to_owned();
            match blocking(move || backend.request(&name, SOURCE, payload)).await {
                Ok(reply) => respond(StatusCode::OK, "application/octet-stream", reply),
                Err(failure) => refuse(failure.status, &failure.message),
            }
        }
        Route::Publish(topic) => {
            let payload = match read_body(request.into_body(), &ingress).await {
                Ok(payload) => payload,
                Err(response) => return Ok(response),
            };
            let topic = topic.to_owned();
            let published = topic.clone();
            match blocking(move || backend.publish(&topic, payload)).await {
                Ok(()) => respond(
                    StatusCode::ACCEPTED,
                    "application/json",
                    format!("{}\n", serde_json::json!({ "published": published })),
                ),
                Err(failure) => refuse(failure.status, &failure.message),
            }
        }
        Route::Health => health(backend.as_ref()),
        Route::Components => respond(StatusCode::OK, "application/json", backend.status_json()),
        Route::Metrics => {
            let mut text = backend.metrics_text();
            text.push_str(&ingress.stats.text());
            respond(StatusCode::OK, METRICS_TYPE, text)
        }
        Route::Reload => {
            let reloaded = blocking(move || backend.reload()).await;
            super::print_reload("POST /v1/admin/reload", &reloaded);
            match reloaded {
                Ok(reloaded) => respond(StatusCode::OK, "application/json", reloaded.json),
                Err(failure) => refuse(failure.status, &failure.message),
            }
        }
    };
    Ok(response)
}

/// `GET /v1/health`: 200 `ready` when every component serves and the NATS
/// connection (if any) is up, with a line `nats: <state> (reconnects: N)`
/// on NATS; else 503 naming what is not.
fn health(backend: &dyn Backend) -> Response<Full<Bytes>> {
    let nats = backend.nats();
    let nats_line = nats
        .as_ref()
        .map(|status| format!("nats: {} (reconnects: {})", status.state, status.reconnects));
    if !backend.ready() {
        return refuse(
            503,
            "not every component is serving; see GET /v1/components",
        );
    }
    match nats {
        Some(status) if status.state != NatsConnectionState::Connected => refuse(
            503,
            &format!(
                "the NATS connection is {} (reconnects so far: {}): messages and requests \
                 to and from other hosts do not pass until it is back",
                status.state, status.reconnects
            ),
        ),
        _ => {
            let mut body = "ready\n".to_owned();
            if let Some(line) = nats_line {
                body.push_str(&line);
                body.push('\n');
            }
            respond(StatusCode::OK, "text/plain", body)
        }
    }
}

/// Runs `call` on a blocking thread; a panic there is a 500.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(call).await.unwrap_or_else(|e| {
        Err(Failure {
            status: 500,
            message: format!("the host failed while answering: {e}"),
        })
    })
}

/// The whole body, at most [`MAX_BODY`] bytes (413 beyond, 400 when the
/// body breaks off), within the ingress's [`Bounds::body`] (408 beyond,
/// and the connection closed: the rest of the body is never read).
async fn read_body<B>(body: B, ingress: &Ingress) -> Result<Vec<u8>, Response<Full<Bytes>>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        refuse(
            413,
            &format!("the request body is larger than the ingress takes ({MAX_BODY} bytes)"),
        )
    };
    if body.size_hint().lower() > MAX_BODY as u64 {
        return Err(too_large());
    }
    let timeout = ingress.bounds.body;
    let Ok(collected) = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await
    else {
        ingress.stats.body.fetch_add(1, Ordering::Relaxed);
        let mut response = refuse(
            408,
            &format!(
                "the request body did not arrive within {} s; send it whole, at most {MAX_BODY} \
                 bytes, in that time",
                timeout.as_secs()
            ),
        );
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return Err(response);
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(refuse(400, &format!("cannot read the request body: {e}"))),
    }
}

/// Connections served at once by default (`--max-connections`); the next
/// is accepted when one closes (each holds a descriptor and a task).
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// The time a connection gets to send a whole request head: from its
/// accept, and from the end of the previous answer on a kept-alive
/// connection (hyper's `header_read_timeout`, which also runs while a
/// connection is idle between requests). Beyond, it is closed without an
/// answer.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The time a request gets to send its whole body once its head is in;
/// beyond, it is answered 408 and the connection closed.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The time a client gets to take an answer (each flush of hyper's write
/// buffer: the head and a whole body); beyond, the connection is closed.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many connections the ingress serves, from one client and in all,
/// and how long each step of a request may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Connections served at once.
    pub(crate) connections: usize,
    /// Connections one client address (an IPv6 /64) may hold at once.
    pub(crate) per_address: usize,
    /// See [`HEADER_TIMEOUT`].
    pub(crate) header: Duration,
    /// See [`BODY_TIMEOUT`].
    pub(crate) body: Duration,
    /// See [`WRITE_TIMEOUT`].
    pub(crate) write: Duration,
}

impl Bounds {
    /// `connections` at once, `per_address` of them from one address (by
    /// default an eighth, at least 1), and the default timeouts.
    pub(crate) fn new(connections: usize, per_address: Option<usize>) -> Bounds {
        let connections = connections.max(1);
        Bounds {
            connections,
            per_address: per_address.unwrap_or(connections / 8).max(1),
            header: HEADER_TIMEOUT,
            body: BODY_TIMEOUT,
            write: WRITE_TIMEOUT,
        }
    }
}

/// The client a connection counts against: its IPv4 address, or the /64
/// of its IPv6 address (one host usually holds a whole /64).
fn client_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Connections open per client.
#[derive(Default)]
struct Clients(Mutex<HashMap<IpAddr, usize>>);

/// One connection of a client, given back when dropped.
struct ClientSlot {
    clients: Arc<Clients>,
    client: IpAddr,
}

impl Clients {
    /// A slot for one more connection of `client`, unless it holds `most`.
    fn take(self: &Arc<Self>, client: IpAddr, most: usize) -> Option<ClientSlot> {
        let mut open = crate::sync::lock(&self.0);
        let count = open.entry(client).or_insert(0);
        if *count >= most {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            clients: Arc::clone(self),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = crate::sync::lock(&self.clients.0);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// A connection whose writes must be taken by the client in time: from
/// the first write after a flush until the next flush completes, at most
/// the limit; beyond, writing fails (`TimedOut`) and hyper closes the
/// connection. Reads pass through.
struct WriteDeadline<T> {
    io: T,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
}

impl<T> WriteDeadline<T> {
    fn new(io: T, limit: Duration) -> WriteDeadline<T> {
        WriteDeadline {
            io,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// Starts the clock, unless it runs.
    fn arm(&mut self) {
        if !self.armed {
            self.armed = true;
            let at = tokio::time::Instant::now() + self.limit;
            self.deadline.as_mut().reset(at);
        }
    }

    /// A write that could not go on: an error once the time is up.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        if self.armed && self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client took no answer for {} s",
                    self.limit.as_secs_f64()
                ),
            )));
        }
        Poll::Pending
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.arm();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => this.pending(cx),
            done => done,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.arm();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.pending(cx),
            done => done,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.armed = false;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.pending(cx),
            failed => failed,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.pending(cx),
            done => done,
        }
    }
}

/// Accepts connections on `listener` and serves them within the
/// ingress's bounds until `stop` completes; then stops accepting (the
/// listener is dropped) and returns the connections still open, to drain.
/// A connection from a client that already holds its share
/// ([`Bounds::per_address`]) is closed at once.
pub(crate) async fn accept_until(
    listener: tokio::net::TcpListener,
    ingress: Arc<Ingress>,
    stop: impl Future<Output = ()>,
) -> GracefulShutdown {
    let bounds = ingress.bounds;
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(bounds.connections));
    let clients = Arc::new(Clients::default());
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors and the like: wait, then go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // One client cannot take every slot: beyond its share, closed
        // at once (the permit goes back with it).
        let Some(slot) = clients.take(client_of(peer.ip()), bounds.per_address) else {
            ingress.stats.per_address.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        // Answers are written whole; no reason to wait for an ACK.
        let _ = stream.set_nodelay(true);
        let served = Arc::clone(&ingress);
        let service =
            hyper::service::service_fn(move |request| handle(Arc::clone(&served), request));
        let io = WriteDeadline::new(TokioIo::new(stream), bounds.write);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(bounds.header)
            .serve_connection(io, service);
        let connection = graceful.watch(connection);
        let ingress = Arc::clone(&ingress);
        ingress.stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // A client that goes away mid-request is no error of ours;
            // one cut at a bound is counted.
            if let Err(e) = connection.await {
                ingress.stats.count_end(&e);
            }
            ingress.stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            drop(permit);
        });
    }
    graceful
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::serve::Reloaded;

    /// The reply of `large`: more than the socket buffers of both ends hold.
    const LARGE: usize = 64 * 1024 * 1024;

    /// A host answering from a table: `echo` replies with the payload,
    /// `guarded` is denied, `trap` traps; anything else is not found.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<(String, String, Vec<u8>)>>,
        published: Mutex<Vec<(String, Vec<u8>)>>,
        not_ready: bool,
        nats: Option<airssys_runtime::broker::NatsConnectionStatus>,
    }

    impl Backend for Fake {
        fn request(
            &self,
            component: &str,
            source: &str,
            payload: Vec<u8>,
        ) -> Result<Vec<u8>, Failure> {
            self.calls.lock().unwrap().push((
                component.to_owned(),
                source.to_owned(),
                payload.clone(),
            ));
            let failure = |status: u16, message: &str| {
                Err(Failure {
                    status,
                    message: message.to_owned(),
                })
            };
            match component {
                "echo" => Ok(payload),
                "large" => Ok(vec![b'x'; LARGE]),
                "guarded" => failure(403, "`guarded` was denied kv:write:x"),
                "trap" => failure(500, "`trap` trapped"),
                "busy" => failure(429, "`busy` is busy: 64 requests queued (bound 64)"),
                _ => failure(404, &format!("no component `{component}`")),
            }
        }

        fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), Failure> {
            if topic.contains('*') {
                return Err(Failure {
                    status: 400,
                    message: "a wildcard".to_owned(),
                });
            }
            self.published
                .lock()
                .unwrap()
                .push((topic.to_owned(), payload));
            Ok(())
        }

        fn ready(&self) -> bool {
            !self.not_ready
        }

        fn nats(&self) -> Option<airssys_runtime::broker::NatsConnectionStatus> {
            self.nats.clone()
        }

        fn status_json(&self) -> String {
            "[{\"name\":\"echo\"}]".to_owned()
        }

        fn metrics_text(&self) -> String {
            "airssys_calls_total 1\n".to_owned()
        }

        fn failures(&self) -> Vec<String> {
            Vec::new()
        }

        fn reload(&self) -> Result<Reloaded, Failure> {
            Ok(Reloaded {
                text: "reloaded".to_owned(),
                json: "{\"reloaded\":true}".to_owned(),
            })
        }

        fn shutdown(&self, _deadline: Duration) -> String {
            String::new()
        }
    }

    struct Answer {
        status: u16,
        body: String,
        content_type: String,
    }

    async fn call(
        ingress: &Arc<Ingress>,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .unwrap();
        let response = handle(Arc::clone(ingress), request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            content_type,
        }
    }

    fn ingress(fake: Fake, token: Option<&str>) -> (Arc<Fake>, Arc<Ingress>) {
        let fake = Arc::new(fake);
        let backend: Arc<dyn Backend> = fake.clone();
        let bounds = Bounds::new(MAX_CONNECTIONS, None);
        let ingress = Arc::new(Ingress::new(backend, token.and_then(Token::new), bounds));
        (fake, ingress)
    }

    #[test]
    fn routes_are_parsed_and_others_are_not() {
        assert_eq!(
            route("/v1/components/echo/request"),
            Some(Route::Request("echo"))
        );
        assert_eq!(route("/v1/topics/a.b"), Some(Route::Publish("a.b")));
        assert_eq!(route("/v1/health"), Some(Route::Health));
        assert_eq!(route("/v1/components"), Some(Route::Components));
        assert_eq!(route("/metrics"), Some(Route::Metrics));
        assert_eq!(route("/v1/admin/reload"), Some(Route::Reload));
        for path in [
            "/",
            "/v1",
            "/v1/components//request",
            "/v1/components/echo",
            "/v1/components/echo/request/more",
            "/v1/topics/",
            "/v1/health/",
            "/metrics/x",
            "v1/health",
        ] {
            assert_eq!(route(path), None, "{path}");
        }
    }

    #[tokio::test]
    async fn a_request_reaches_the_component_with_source_http_and_its_reply_is_the_body() {
        let (fake, ingress) = ingress(Fake::default(), None);
        let answer = call(
            &ingress,
            Method::POST,
            "/v1/components/echo/request",
            None,
            b"hi",
        )
        .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "hi");
        assert_eq!(
            fake.calls.lock().unwrap().as_slice(),
            [("echo".to_owned(), "http".to_owned(), b"hi".to_vec())]
        );
    }

    #[tokio::test]
    async fn host_errors_keep_their_status_and_reason() {
        let (_, ingress) = ingress(Fake::default(), None);
        for (name, status, words) in [
            ("guarded", 403, "kv:write:x"),
            ("trap", 500, "trapped"),
            ("busy", 429, "bound 64"),
            ("nobody", 404, "no component `nobody`"),
        ] {
            let path = format!("/v1/components/{name}/request");
            let answer = call(&ingress, Method::POST, &path, None, b"").await;
            assert_eq!(answer.status, status, "{name}: {}", answer.body);
            assert_eq!(answer.content_type, "application/json");
            let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            assert_eq!(json["status"], status);
            assert!(
                json["message"].as_str().unwrap().contains(words),
                "{name}: {}",
                answer.body
            );
        }
    }

    #[tokio::test]
    async fn unknown_paths_are_404_and_wrong_methods_405() {
        let (fake, ingress) = ingress(Fake::default(), None);
        let answer = call(&ingress, Method::GET, "/v2/nothing", None, b"").await;
        assert_eq!(answer.status, 404);
        assert!(answer.body.contains("/v1/health"), "{}", answer.body);
        for (method, path) in [
            (Method::GET, "/v1/components/echo/request"),
            (Method::PUT, "/v1/topics/a"),
            (Method::POST, "/v1/health"),
            (Method::DELETE, "/v1/components"),
            (Method::POST, "/metrics"),
            (Method::GET, "/v1/admin/reload"),
        ] {
            let answer = call(&ingress, method.clone(), path, None, b"").await;
            assert_eq!(answer.status, 405, "{method} {path}");
        }
        assert!(fake.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn publish_health_components_and_metrics() {
        let (fake, ingress) = ingress(Fake::default(), None);
        let answer = call(&ingress, Method::POST, "/v1/topics/orders.new", None, b"42").await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        assert_eq!(
            fake.published.lock().unwrap().as_slice(),
            [("orders.new".to_owned(), b"42".to_vec())]
        );
        let answer = call(&ingress, Method::POST, "/v1/topics/orders.*", None, b"42").await;
        assert_eq!(answer.status, 400);
        assert_eq!(
            call(&ingress, Method::GET, "/v1/health", None, b"")
                .await
                .status,
            200
        );
        let answer = call(&ingress, Method::GET, "/v1/components", None, b"").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "[{\"name\":\"echo\"}]")
        );
        let answer = call(&ingress, Method::GET, "/metrics", None, b"").await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.content_type,
            "text/plain; version=0.0.4; charset=utf-8"
        );

        let (_, ingress) = super::tests::ingress(
            Fake {
                not_ready: true,
                ..Fake::default()
            },
            None,
        );
        assert_eq!(
            call(&ingress, Method::GET, "/v1/health", None, b"")
                .await
                .status,
            503
        );
    }

    #[tokio::test]
    async fn health_reports_the_nats_connection_and_is_503_while_it_is_down() {
        use airssys_runtime::broker::{NatsConnectionState, NatsConnectionStatus};
        let status = |state, reconnects| NatsConnectionStatus {
            state,
            reconnects,
            disconnects: reconnects,
            server_errors: 0,
            last_server_error: None,
        };
        let (_, ingress) = ingress(
            Fake {
                nats: Some(status(NatsConnectionState::Connected, 2)),
                ..Fake::default()
            },
            None,
        );
        let answer = call(&ingress, Method::GET, "/v1/health", None, b"").await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ready\nnats: connected (reconnects: 2)\n")
        );
        for state in [
            NatsConnectionState::Reconnecting,
            NatsConnectionState::Connecting,
            NatsConnectionState::Closed,
        ] {
            let (_, down) = super::tests::ingress(
                Fake {
                    nats: Some(status(state, 3)),
                    ..Fake::default()
                },
                None,
            );
            let answer = call(&down, Method::GET, "/v1/health", None, b"").await;
            assert_eq!(answer.status, 503, "{state}");
            assert!(
                answer.body.contains(&format!(
                    "the NATS connection is {state} (reconnects so far: 3)"
                )),
                "{}",
                answer.body
            );
        }
    }

    #[tokio::test]
    async fn with_a_token_every_request_needs_it_and_none_reaches_a_component_without() {
        let (fake, ingress) = ingress(Fake::default(), Some("s3cret\n"));
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("Basic s3cret"),
            Some("s3cret"),
            Some("Bearer"),
        ] {
            for (method, path) in [
                (Method::POST, "/v1/components/echo/request"),
                (Method::GET, "/v1/health"),
                (Method::GET, "/nowhere"),
                (Method::POST, "/v1/admin/reload"),
            ] {
                let answer = call(&ingress, method, path, auth, b"x").await;
                assert_eq!(answer.status, 401, "{auth:?} {path}");
            }
        }
        assert!(fake.calls.lock().unwrap().is_empty());
        for auth in ["Bearer s3cret", "bearer s3cret"] {
            let answer = call(
                &ingress,
                Method::POST,
                "/v1/components/echo/request",
                Some(auth),
                b"x",
            )
            .await;
            assert_eq!(answer.status, 200, "{auth}");
        }
        let answer = call(
            &ingress,
            Method::POST,
            "/v1/admin/reload",
            Some("Bearer s3cret"),
            b"",
        )
        .await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "{\"reloaded\":true}")
        );
    }

    #[tokio::test]
    async fn admin_calls_are_refused_when_no_token_is_configured() {
        let (_, ingress) = ingress(Fake::default(), None);
        let answer = call(&ingress, Method::POST, "/v1/admin/reload", None, b"").await;
        assert_eq!(answer.status, 403);
        assert!(answer.body.contains("--token-file"), "{}", answer.body);
        assert!(
            answer.body.contains("AIRSSYS_SERVE_TOKEN"),
            "{}",
            answer.body
        );
    }

    #[tokio::test]
    async fn bodies_over_the_bound_are_413_and_never_reach_a_component() {
        let (fake, ingress) = ingress(Fake::default(), None);
        let big = vec![b'x'; MAX_BODY + 1];
        let answer = call(
            &ingress,
            Method::POST,
            "/v1/components/echo/request",
            None,
            &big,
        )
        .await;
        assert_eq!(answer.status, 413, "{}", answer.body);
        let answer = call(&ingress, Method::POST, "/v1/topics/a", None, &big).await;
        assert_eq!(answer.status, 413, "{}", answer.body);
        assert!(fake.calls.lock().unwrap().is_empty());
        assert!(fake.published.lock().unwrap().is_empty());
        let exact = vec![b'x'; MAX_BODY];
        let answer = call(
            &ingress,
            Method::POST,
            "/v1/components/echo/request",
            None,
            &exact,
        )
        .await;
        assert_eq!(answer.status, 200);
    }

    #[tokio::test]
    async fn connections_beyond_the_bound_wait_until_one_closes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (address, _) = listen(Fake::default(), |bounds| bounds.connections = 1).await;
        let first = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut second = tokio::net::TcpStream::connect(address).await.unwrap();
        second
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let waited =
            tokio::time::timeout(Duration::from_millis(300), second.read_to_end(&mut answer)).await;
        assert!(waited.is_err(), "served beyond the bound: {answer:?}");
        drop(first);
        tokio::time::timeout(Duration::from_secs(10), second.read_to_end(&mut answer))
            .await
            .expect("served once the first connection closed")
            .unwrap();
        assert!(
            String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"),
            "{answer:?}"
        );
    }

    /// Serves `fake` on a loopback port within the default bounds as
    /// `change` leaves them; the address.
    async fn listen(
        fake: impl Into<Arc<Fake>>,
        change: impl FnOnce(&mut Bounds),
    ) -> (std::net::SocketAddr, Arc<Ingress>) {
        let mut bounds = Bounds::new(MAX_CONNECTIONS, None);
        change(&mut bounds);
        let backend: Arc<dyn Backend> = fake.into();
        let ingress = Arc::new(Ingress::new(backend, None, bounds));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(accept_until(
            listener,
            Arc::clone(&ingress),
            std::future::pending::<()>(),
        ));
        (address, ingress)
    }

    /// Waits (at most 5 s) until `counter` is `expected`.
    async fn counted(counter: &AtomicU64, expected: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while counter.load(Ordering::Relaxed) != expected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "counted {}, not {expected}",
                counter.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A connection from the loopback address `from` to `to`, taking at
    /// most `receive_buffer` bytes before its reader reads (if given).
    async fn connect_from(
        from: [u8; 4],
        to: std::net::SocketAddr,
        receive_buffer: Option<u32>,
    ) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(bytes) = receive_buffer {
            socket.set_recv_buffer_size(bytes).unwrap();
        }
        socket.bind((from, 0).into()).unwrap();
        socket.connect(to).await.unwrap()
    }

    /// What `GET /v1/health` on a new connection from `from` is answered
    /// (empty when the connection is closed unanswered); fails when no
    /// answer comes within 5 s.
    async fn health_from(from: [u8; 4], to: std::net::SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let asked = async {
            let mut stream = connect_from(from, to, None).await;
            let _ = stream
                .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            String::from_utf8_lossy(&answer).into_owned()
        };
        tokio::time::timeout(Duration::from_secs(5), asked)
            .await
            .expect("GET /v1/health was not answered within 5 s")
    }

    /// Whether the server closes `stream` within 5 s, reading what comes.
    async fn closed_within_5_s(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
        use tokio::io::AsyncReadExt;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), async {
            // A reset is a close too.
            let _ = stream.read_to_end(&mut answer).await;
        })
        .await;
        assert!(
            read.is_ok(),
            "the connection was still open after 5 s: {:?}",
            String::from_utf8_lossy(&answer)
        );
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn silent_slow_and_idle_connections_are_closed_at_the_header_deadline() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (address, ingress) = listen(Fake::default(), |bounds| {
            bounds.header = Duration::from_secs(1);
        })
        .await;
        // Sends nothing.
        let mut silent = connect_from([127, 0, 0, 1], address, None).await;
        assert_eq!(closed_within_5_s(&mut silent).await, "");
        // Sends its head a line at a time, never ending it (slowloris).
        let (mut reader, mut writer) = connect_from([127, 0, 0, 1], address, None)
            .await
            .into_split();
        let trickle = tokio::spawn(async move {
            let _ = writer.write_all(b"GET /v1/health HTTP/1.1\r\n").await;
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if writer.write_all(b"X-Slow: y\r\n").await.is_err() {
                    break;
                }
            }
        });
        assert_eq!(closed_within_5_s(&mut reader).await, "");
        trickle.abort();
        // Kept alive after one answer, then idle.
        let mut idle = connect_from([127, 0, 0, 1], address, None).await;
        idle.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = vec![0; 4096];
        let n = idle.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200 OK"), "{first:?}");
        closed_within_5_s(&mut idle).await;
        counted(&ingress.stats.header, 3).await;
    }

    #[tokio::test]
    async fn a_body_sent_a_byte_at_a_time_is_answered_408_at_the_body_deadline() {
        use tokio::io::AsyncWriteExt;
        let (address, ingress) = listen(Fake::default(), |bounds| {
            bounds.connections = 1;
            bounds.body = Duration::from_secs(1);
        })
        .await;
        let (mut reader, mut writer) = connect_from([127, 0, 0, 1], address, None)
            .await
            .into_split();
        let trickle = tokio::spawn(async move {
            let head = b"POST /v1/components/echo/request HTTP/1.1\r\nHost: x\r\n\
                         Content-Length: 1000\r\n\r\n";
            let _ = writer.write_all(head).await;
            for _ in 0..1000 {
                if writer.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let answer = closed_within_5_s(&mut reader).await;
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout"),
            "{answer}"
        );
        assert!(answer.contains("did not arrive within 1 s"), "{answer}");
        trickle.abort();
        counted(&ingress.stats.body, 1).await;
        // Its slot is free again.
        let answer = health_from([127, 0, 0, 1], address).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    }

    #[tokio::test]
    async fn a_client_that_never_reads_its_answer_is_cut_at_the_write_deadline() {
        use tokio::io::AsyncWriteExt;
        let fake = Arc::new(Fake::default());
        let (address, ingress) = listen(Arc::clone(&fake), |bounds| {
            *bounds = Bounds::new(1, None);
            bounds.write = Duration::from_secs(1);
        })
        .await;

        let mut stalled = connect_from([127, 0, 0, 1], address, Some(4096)).await;
        stalled
            .write_all(
                b"POST /v1/components/large/request HTTP/1.1\r\nHost: x\r\n\
                  Content-Length: 0\r\n\r\n",
            )
            .await
            .unwrap();
        // The component's call is over before its answer is written: a
        // client that does not read holds its connection, not the
        // component.
        let called = async {
            while fake.calls.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), called)
            .await
            .expect("the component was called");
        // The only slot: free again once the stalled answer is cut.
        let answer = health_from([127, 0, 0, 2], address).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        counted(&ingress.stats.write, 1).await;
        drop(stalled);
    }

    #[tokio::test]
    async fn one_client_address_cannot_take_every_connection() {
        let (address, ingress) = listen(Fake::default(), |bounds| {
            bounds.connections = 4;
            bounds.per_address = 2;
            bounds.header = Duration::from_secs(60);
        })
        .await;
        // 127.0.0.1 opens every slot's worth of connections and sends
        // nothing: two are served (and wait), the rest closed at once.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(connect_from([127, 0, 0, 1], address, None).await);
        }
        // Another client is served at once.
        let answer = health_from([127, 0, 0, 2], address).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let mut closed = 0;
        for stream in &mut held {
            let mut byte = [0; 1];
            let read = tokio::time::timeout(
                Duration::from_millis(500),
                tokio::io::AsyncReadExt::read(stream, &mut byte),
            )
            .await;
            if matches!(read, Ok(Ok(0) | Err(_))) {
                closed += 1;
            }
        }
        assert_eq!(closed, 2, "connections of 127.0.0.1 closed at once");
        assert_eq!(health_from([127, 0, 0, 1], address).await, "");
        counted(&ingress.stats.per_address, 3).await;
        let metrics = call(&ingress, Method::GET, "/metrics", None, b"")
            .await
            .body;
        for line in [
            "airssys_http_connections 2\n",
            "airssys_http_connections_cut_total{reason=\"per_address\"} 3\n",
            "airssys_http_connections_cut_total{reason=\"write\"} 0\n",
        ] {
            assert!(metrics.contains(line), "{line} in:\n{metrics}");
        }
    }

    #[test]
    fn a_client_is_its_ipv4_address_or_its_ipv6_64() {
        let client = |text: &str| client_of(text.parse().unwrap()).to_string();
        assert_eq!(client("192.0.2.7"), "192.0.2.7");
        assert_eq!(client("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(client("2001:db8:1:2::1"), client("2001:db8:1:2:ffff::9"));
        assert_ne!(client("2001:db8:1:2::1"), client("2001:db8:1:3::1"));
        let bounds = Bounds::new(1024, None);
        assert_eq!((bounds.connections, bounds.per_address), (1024, 128));
        assert_eq!(Bounds::new(8, None).per_address, 1);
        assert_eq!(Bounds::new(16, None).per_address, 2);
        assert_eq!(Bounds::new(8, Some(8)).per_address, 8);
    }
}
