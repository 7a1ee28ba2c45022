//! A minimal HTTP/1.1 client over a [`TcpStream`] the caller has already
//! connected to a checked address (plain, or wrapped in TLS by the
//! caller): one request per connection
//! (`Connection: close`), responses framed by `Content-Length`, chunked
//! transfer coding or end of stream, with bounded header and body sizes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

/// Largest response header block.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most response header fields.
pub(crate) const MAX_HEADERS: usize = 128;
/// Largest response body.
pub(crate) const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// The deadline passed.
    Timeout(String),
    /// The peer sent something that is not HTTP/1.x or broke a limit.
    Protocol(String),
    /// An I/O error.
    Io(std::io::Error),
}

impl From<std::io::Error> for HttpError {
    fn from(e: std::io::Error) -> HttpError {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                HttpError::Timeout(format!("the HTTP exchange timed out ({e})"))
            }
            _ => HttpError::Io(e),
        }
    }
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

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) status: u16,
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

/// Sends `request` on `stream` and reads the response, with every socket
/// operation bounded by `deadline`. `stream` is `socket` itself or a TLS
/// stream over it; the timeouts are set on `socket`.
pub(crate) fn exchange<S: Read + Write>(
    mut stream: S,
    socket: &TcpStream,
    request: &Outgoing,
    deadline: Instant,
) -> Result<Incoming, HttpError> {
    let remaining = |what: &str| {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| HttpError::Timeout(format!("the HTTP exchange timed out {what}")))
    };
    socket.set_write_timeout(Some(remaining("before sending")?))?;
    // A TLS stream may read while writing.
    socket.set_read_timeout(Some(remaining("before sending")?))?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        request.method, request.path, request.authority
    );
    for (k, v) in &request.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if !request.body.is_empty() || matches!(request.method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&request.body)?;
    stream.flush()?;

    let mut reader = BufReader::new(&mut stream);
    let mut budget = MAX_HEADER_BYTES;
    let mut line = |reader: &mut BufReader<&mut S>| -> Result<String, HttpError> {
        socket.set_read_timeout(Some(remaining("waiting for the response")?))?;
        let mut buf = Vec::new();
        let n = reader
            .by_ref()
            .take(budget as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n > budget {
            return Err(HttpError::Protocol(format!(
                "the response header block exceeds {MAX_HEADER_BYTES} bytes"
            )));
        }
        budget -= n;
        if !buf.ends_with(b"\n") {
            return Err(HttpError::Protocol(
                "the response ended inside its header".into(),
            ));
        }
        buf.pop();
        if buf.ends_with(b"\r") {
            buf.pop();
        }
        String::from_utf8(buf)
            .map_err(|_| HttpError::Protocol("a response header is not UTF-8".into()))
    };

    // Skip interim 1xx responses (bounded by the header budget).
    let (status, headers) = loop {
        let status_line = line(&mut reader)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return Err(HttpError::Protocol(format!(
                "not an HTTP/1.x status line: `{}`",
                status_line.escape_debug()
            )));
        }
        let status: u16 = code
            .parse()
            .map_err(|_| HttpError::Protocol(format!("bad status code `{code}`")))?;
        let mut headers = Vec::new();
        loop {
            let h = line(&mut reader)?;
            if h.is_empty() {
                break;
            }
            if headers.len() == MAX_HEADERS {
                return Err(HttpError::Protocol(format!(
                    "the response has more than {MAX_HEADERS} header fields"
                )));
            }
            let (k, v) = h.split_once(':').ok_or_else(|| {
                HttpError::Protocol(format!("malformed header line `{}`", h.escape_debug()))
            })?;
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break (status, headers);
    };
    let mut response = Incoming {
        status,
        headers,
        body: Vec::new(),
    };
    if request.method == "HEAD" || status == 204 || status == 304 || status == 101 {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let size_line = line(&mut reader)?;
            let size_text = size_line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size_text, 16).map_err(|_| {
                HttpError::Protocol(format!("bad chunk size `{}`", size_text.escape_debug()))
            })?;
            if size == 0 {
                // Trailers, up to the blank line.
                while !line(&mut reader)?.is_empty() {}
                break;
            }
            read_body(
                socket,
                &mut reader,
                &mut response.body,
                Some(size),
                &remaining,
            )?;
            let end = line(&mut reader)?;
            if !end.is_empty() {
                return Err(HttpError::Protocol(
                    "a chunk is not followed by CRLF".into(),
                ));
            }
        }
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| HttpError::Protocol(format!("bad Content-Length `{len}`")))?;
        read_body(
            socket,
            &mut reader,
            &mut response.body,
            Some(len),
            &remaining,
        )?;
    } else {
        read_body(socket, &mut reader, &mut response.body, None, &remaining)?;
    }
    Ok(response)
}

/// Appends `len` bytes (or everything up to end of stream) to `body`,
/// refusing to grow it past [`MAX_BODY_BYTES`].
fn read_body<R: Read>(
    socket: &TcpStream,
    reader: &mut BufReader<R>,
    body: &mut Vec<u8>,
    len: Option<usize>,
    remaining: &dyn Fn(&str) -> Result<std::time::Duration, HttpError>,
) -> Result<(), HttpError> {
    let too_big = || {
        HttpError::Protocol(format!(
            "the response body exceeds the host's limit of {MAX_BODY_BYTES} bytes"
        ))
    };
    if len.is_some_and(|n| body.len().saturating_add(n) > MAX_BODY_BYTES) {
        return Err(too_big());
    }
    let mut want = len;
    let mut buf = [0u8; 16 * 1024];
    loop {
        if want == Some(0) {
            return Ok(());
        }
        socket.set_read_timeout(Some(remaining("reading the body")?))?;
        let cap = want.map_or(buf.len(), |w| w.min(buf.len()));
        let n = reader.read(&mut buf[..cap])?;
        if n == 0 {
            return match want {
                Some(_) => Err(HttpError::Protocol(
                    "the response body was cut short".into(),
                )),
                None => Ok(()),
            };
        }
        if body.len() + n > MAX_BODY_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&buf[..n]);
        if let Some(w) = want.as_mut() {
            *w -= n;
        }
    }
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
