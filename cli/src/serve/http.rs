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

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
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

/// The ingress: the host behind it and the token it asks for.
pub(crate) struct Ingress {
    backend: Arc<dyn Backend>,
    token: Option<Token>,
}

impl Ingress {
    /// An ingress to `backend`; with `token`, every request needs it.
    pub(crate) fn new(backend: Arc<dyn Backend>, token: Option<Token>) -> Ingress {
        Ingress { backend, token }
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
            let payload = match read_body(request.into_body()).await {
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
            let payload = match read_body(request.into_body()).await {
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
        Route::Metrics => respond(StatusCode::OK, METRICS_TYPE, backend.metrics_text()),
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
/// body breaks off).
async fn read_body<B>(body: B) -> Result<Vec<u8>, Response<Full<Bytes>>>
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
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(refuse(400, &format!("cannot read the request body: {e}"))),
    }
}

/// Connections served at once; the next is accepted when one closes
/// (each holds a descriptor and a task).
pub(crate) const MAX_CONNECTIONS: usize = 1024;

/// Accepts connections on `listener` and serves them, at most
/// `max_connections` at once, until `stop` completes; then stops
/// accepting (the listener is dropped) and returns the connections still
/// open, to drain.
pub(crate) async fn accept_until(
    listener: tokio::net::TcpListener,
    ingress: Arc<Ingress>,
    max_connections: usize,
    stop: impl Future<Output = ()>,
) -> GracefulShutdown {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut stop = std::pin::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors and the like: wait, then go on.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Answers are written whole; no reason to wait for an ACK.
        let _ = stream.set_nodelay(true);
        let ingress = Arc::clone(&ingress);
        let service =
            hyper::service::service_fn(move |request| handle(Arc::clone(&ingress), request));
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-request is no error of ours.
            let _ = connection.await;
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
        let ingress = Arc::new(Ingress::new(backend, token.and_then(Token::new)));
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

        let (_, ingress) = ingress(Fake::default(), None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(accept_until(
            listener,
            ingress,
            1,
            std::future::pending::<()>(),
        ));
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
}
