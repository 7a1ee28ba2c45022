//! The HTTP exchange over a stream the host has already connected to a
//! checked address (plain, or wrapped in TLS by the caller): hyper 1.x's
//! client connection API, HTTP/1.1 (`http1::handshake`) or HTTP/2 when
//! the server chose `h2` through ALPN (`http2::handshake`). One request per
//! connection (`Connection: close` on HTTP/1.1); framing, chunked coding,
//! interim 1xx responses and HTTP/2 flow control are hyper's. The host
//! keeps its own limits on top: header block and field count, body size,
//! and every byte of the response charged to the instance's held-result
//! budget as it arrives. The caller bounds the time.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::task::Charge;
use super::tls::Secured;
use crate::error::LimitExceeded;

/// Largest response header block.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most response header fields.
pub(crate) const MAX_HEADERS: usize = 128;
/// Largest response body.
pub(crate) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// The peer sent something that is not HTTP, broke a limit, or the
    /// connection failed; the text says which.
    Protocol(String),
    /// The response would pass the instance's held-result budget.
    Limit(LimitExceeded),
}

impl From<LimitExceeded> for HttpError {
    fn from(e: LimitExceeded) -> HttpError {
        HttpError::Limit(e)
    }
}

/// hyper's error with its causes, in one line.
fn failed(e: &hyper::Error) -> HttpError {
    let mut text = if e.is_parse() {
        format!(
            "the response is not valid HTTP or passes the host's header limits ({MAX_HEADER_BYTES} \
             bytes, {MAX_HEADERS} fields): {e}"
        )
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    HttpError::Protocol(text)
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) method: &'static str,
    pub(crate) authority: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A response, its body read completely.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) status: u16,
    /// Header fields in order, names lower-case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Incoming {
    /// The first header named `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Header names the host writes itself; a component may not set them.
const RESERVED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks the request parts a component supplies; the text names the
/// offending part.
pub(crate) fn validate(path: &str, headers: &[(String, String)]) -> Result<(), String> {
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f || b >= 0x80) {
        return Err(format!(
            "path-and-query `{}` must start with `/` and hold only visible ASCII (percent-encode the rest)",
            path.escape_debug()
        ));
    }
    if path.len() > 8 * 1024 {
        return Err("path-and-query is longer than 8 KiB".into());
    }
    if headers.len() > MAX_HEADERS {
        return Err(format!("more than {MAX_HEADERS} request headers"));
    }
    for (name, value) in headers {
        if !is_token(name) {
            return Err(format!(
                "header name `{}` is not a valid token",
                name.escape_debug()
            ));
        }
        if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err(format!(
                "header `{name}` is set by the host and may not be given"
            ));
        }
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(format!(
                "header `{name}` has a control character in its value"
            ));
        }
    }
    Ok(())
}

/// A connected stream, ready for the exchange.
pub(crate) enum Connection {
    /// Plain HTTP/1.1.
    Plain(TcpStream),
    /// TLS; HTTP/2 when the server chose it.
    Tls(Box<Secured>),
}

/// Aborts the connection's driver task when dropped (the exchange ended,
/// or its operation was cancelled), which closes the socket.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends `request` on `connection` and reads the response, charging its
/// bytes to `charge`.
pub(crate) async fn exchange(
    connection: Connection,
    request: &Outgoing,
    charge: &Charge,
) -> Result<Incoming, HttpError> {
    match connection {
        Connection::Plain(tcp) => http1(TokioIo::new(tcp), request, charge).await,
        Connection::Tls(secured) => {
            let Secured { stream, h2 } = *secured;
            if h2 {
                http2(TokioIo::new(stream), request, charge).await
            } else {
                http1(TokioIo::new(stream), request, charge).await
            }
        }
    }
}

async fn http1<IO>(io: IO, request: &Outgoing, charge: &Charge) -> Result<Incoming, HttpError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEADER_BYTES)
        .handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| failed(&e))?;
    let _driver = Driver(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender
        .send_request(build(request, false)?)
        .await
        .map_err(|e| failed(&e))?;
    collect(response, charge).await
}

async fn http2<IO>(io: IO, request: &Outgoing, charge: &Charge) -> Result<Incoming, HttpError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(|e| failed(&e))?;
    let _driver = Driver(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender
        .send_request(build(request, true)?)
        .await
        .map_err(|e| failed(&e))?;
    collect(response, charge).await
}

/// The hyper request: origin-form with `Host` and `Connection: close` for
/// HTTP/1.1, the absolute `https` URI (hyper writes `:authority`) for
/// HTTP/2.
fn build(request: &Outgoing, h2: bool) -> Result<http::Request<Full<Bytes>>, HttpError> {
    let invalid = |e: &dyn std::fmt::Display| HttpError::Protocol(format!("invalid request: {e}"));
    let uri = if h2 {
        format!("https://{}{}", request.authority, request.path)
    } else {
        request.path.clone()
    };
    let mut builder = http::Request::builder()
        .method(request.method)
        .uri(uri)
        .version(if h2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        });
    if !h2 {
        builder = builder
            .header(http::header::HOST, request.authority.as_str())
            .header(http::header::CONNECTION, "close");
    }
    for (name, value) in &request.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(&e))?;
        let value = http::HeaderValue::from_bytes(value.as_bytes()).map_err(|e| invalid(&e))?;
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() || matches!(request.method, "POST" | "PUT" | "PATCH") {
        builder = builder.header(http::header::CONTENT_LENGTH, request.body.len());
    }
    builder
        .body(Full::new(Bytes::from(request.body.clone())))
        .map_err(|e| invalid(&e))
}

fn too_big() -> HttpError {
    HttpError::Protocol(format!(
        "the response body exceeds the host's limit of {MAX_BODY_BYTES} bytes"
    ))
}

/// Reads the head and the whole body of `response` within the host's
/// limits, charging every byte as it arrives.
async fn collect(
    response: http::Response<hyper::body::Incoming>,
    charge: &Charge,
) -> Result<Incoming, HttpError> {
    let status = response.status().as_u16();
    if response.headers().len() > MAX_HEADERS {
        return Err(HttpError::Protocol(format!(
            "the response has more than {MAX_HEADERS} header fields"
        )));
    }
    let mut headers = Vec::with_capacity(response.headers().len());
    let mut head_bytes = 0;
    for (name, value) in response.headers() {
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| {
            HttpError::Protocol(format!("the response header `{name}` is not UTF-8"))
        })?;
        head_bytes += name.as_str().len() + value.len() + 4;
        headers.push((name.as_str().to_owned(), value.to_owned()));
    }
    if head_bytes > MAX_HEADER_BYTES {
        return Err(HttpError::Protocol(format!(
            "the response header block exceeds the host's limit of {MAX_HEADER_BYTES} bytes"
        )));
    }
    charge.grow(head_bytes as u64)?;
    let mut body = response.into_body();
    if hyper::body::Body::size_hint(&body).lower() > MAX_BODY_BYTES as u64 {
        return Err(too_big());
    }
    let mut data = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failed(&e))?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_big());
            }
            charge.grow(chunk.len() as u64)?;
            data.extend_from_slice(&chunk);
        }
    }
    Ok(Incoming {
        status,
        headers,
        body: data,
    })
}

/// Where a redirect points.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `http://authority/path` or `https://authority/path` (`tls`), the
    /// port filled in (80 or 443), or a path on the same authority and
    /// scheme.
    Http {
        tls: bool,
        authority: String,
        path: String,
    },
    /// Anything else.
    Unsupported(String),
}

/// Reads a `Location` value relative to `authority`, reached with TLS
/// when `tls`.
pub(crate) fn location(value: &str, authority: &str, tls: bool) -> Location {
    if value.starts_with('/') && !value.starts_with("//") {
        return Location::Http {
            tls,
            authority: authority.to_owned(),
            path: value.to_owned(),
        };
    }
    let lower = value.to_ascii_lowercase();
    let (tls, scheme) = if lower.starts_with("https://") {
        (true, "https://")
    } else if lower.starts_with("http://") {
        (false, "http://")
    } else {
        return Location::Unsupported(value.to_owned());
    };
    let Some(rest) = value.get(scheme.len()..) else {
        return Location::Unsupported(value.to_owned());
    };
    let (auth, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    if auth.is_empty() || auth.contains('@') {
        return Location::Unsupported(value.to_owned());
    }
    let has_port = if auth.starts_with('[') {
        auth.contains("]:")
    } else {
        auth.contains(':')
    };
    let authority = if has_port {
        auth.to_ascii_lowercase()
    } else {
        format!(
            "{}:{}",
            auth.to_ascii_lowercase(),
            if tls { 443 } else { 80 }
        )
    };
    Location::Http {
        tls,
        authority,
        path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let at = |tls: bool, a: &str, p: &str| Location::Http {
            tls,
            authority: a.into(),
            path: p.into(),
        };
        assert_eq!(location("/next", "h:8", false), at(false, "h:8", "/next"));
        assert_eq!(location("/next", "h:8", true), at(true, "h:8", "/next"));
        assert_eq!(
            location("http://Other/x?y", "h:8", true),
            at(false, "other:80", "/x?y")
        );
        assert_eq!(location("http://o:9", "h:8", false), at(false, "o:9", "/"));
        assert_eq!(
            location("http://[::1]:9/a#f", "h:8", false),
            at(false, "[::1]:9", "/a")
        );
        assert_eq!(
            location("HTTPS://O/p", "h:8", false),
            at(true, "o:443", "/p")
        );
        assert_eq!(
            location("https://o:8443?q", "h:8", false),
            at(true, "o:8443", "/?q")
        );
        assert!(matches!(
            location("//o/", "h:8", false),
            Location::Unsupported(_)
        ));
        assert!(matches!(
            location("http://u@o/", "h:8", false),
            Location::Unsupported(_)
        ));
        assert!(matches!(
            location("https://u@o/", "h:8", false),
            Location::Unsupported(_)
        ));
        assert!(matches!(
            location("ftp://o/", "h:8", false),
            Location::Unsupported(_)
        ));
    }

    #[test]
    fn request_validation() {
        assert!(validate("/a?b=c", &[("X-A".into(), "1".into())]).is_ok());
        assert!(validate("a", &[]).is_err());
        assert!(validate("/a b", &[]).is_err());
        assert!(validate("/a\r\nX: y", &[]).is_err());
        assert!(validate("/", &[("Host".into(), "evil".into())]).is_err());
        assert!(validate("/", &[("X".into(), "a\r\nB: c".into())]).is_err());
        assert!(validate("/", &[("Bad Name".into(), "v".into())]).is_err());
    }
}
