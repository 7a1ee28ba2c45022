//! TLS for the HTTP client: rustls with the *ring* provider, trusting the
//! Mozilla roots shipped in `webpki-roots` plus the roots the embedder
//! added with
//! [`RuntimeBuilder::tls_root_certificates`](crate::RuntimeBuilder::tls_root_certificates).
//! Certificate verification is always on; there is no switch to turn it
//! off.

use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The roots one runtime trusts. The client configuration is built on
/// first use, so a runtime that never makes an https request pays
/// nothing.
#[derive(Default)]
pub(crate) struct TlsRoots {
    /// Roots added by the embedder, beside the `webpki-roots` ones.
    extra: Vec<CertificateDer<'static>>,
    config: OnceLock<Result<Arc<ClientConfig>, String>>,
}

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoots")
            .field("extra", &self.extra.len())
            .finish_non_exhaustive()
    }
}

impl TlsRoots {
    /// Parses PEM bundles of extra roots. Each bundle must hold at least
    /// one `CERTIFICATE` section, and each certificate must be usable as a
    /// trust anchor; the text names the bundle (counted from 1).
    pub(crate) fn from_pem(bundles: &[Vec<u8>]) -> Result<TlsRoots, String> {
        let mut extra = Vec::new();
        for (i, pem) in bundles.iter().enumerate() {
            let which = i + 1;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("TLS root bundle {which}: {e}"))?;
                RootCertStore::empty().add(cert.clone()).map_err(|e| {
                    format!("TLS root bundle {which}, certificate {}: {e}", found + 1)
                })?;
                extra.push(cert);
                found += 1;
            }
            if found == 0 {
                return Err(format!(
                    "TLS root bundle {which} holds no PEM `CERTIFICATE` section"
                ));
            }
        }
        Ok(TlsRoots {
            extra,
            config: OnceLock::new(),
        })
    }

    /// The client configuration: `webpki-roots` plus the extra roots.
    fn config(&self) -> Result<Arc<ClientConfig>, String> {
        self.config
            .get_or_init(|| {
                let mut roots = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                for cert in &self.extra {
                    roots
                        .add(cert.clone())
                        .map_err(|e| format!("an extra TLS root is not usable: {e}"))?;
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("cannot configure TLS: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Ok(Arc::new(config))
            })
            .clone()
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub(crate) enum HandshakeError {
    /// The deadline passed.
    Timeout(String),
    /// The name, the configuration, the certificate or the peer was
    /// refused; the text says which.
    Failed(String),
}

/// The host part of `authority` (`name:port`, `ip:port` or `[v6]:port`),
/// as the TLS server name: a DNS name for SNI and certificate checking,
/// or an IP address (checked against the certificate's IP names, no SNI).
fn server_name(authority: &str) -> Result<ServerName<'static>, String> {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("`{host}` is not a usable TLS server name: {e}"))
}

/// Runs the TLS handshake on `stream` (already connected to a checked
/// address) for the host of `authority`, bounded by `deadline`. The
/// certificate chain must lead to a trusted root and name that host.
pub(crate) fn handshake(
    roots: &TlsRoots,
    authority: &str,
    mut stream: &TcpStream,
    deadline: Instant,
) -> Result<ClientConnection, HandshakeError> {
    let name = server_name(authority).map_err(HandshakeError::Failed)?;
    let config = roots.config().map_err(HandshakeError::Failed)?;
    let mut conn = ClientConnection::new(config, name)
        .map_err(|e| HandshakeError::Failed(format!("cannot start TLS with `{authority}`: {e}")))?;
    while conn.is_handshaking() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                HandshakeError::Timeout(format!("the TLS handshake with `{authority}` timed out"))
            })?;
        let timeouts = stream
            .set_read_timeout(Some(left))
            .and_then(|()| stream.set_write_timeout(Some(left)));
        let step = timeouts.and_then(|()| conn.complete_io(&mut stream));
        match step {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(HandshakeError::Failed(format!(
                    "the TLS handshake with `{authority}` failed: the peer closed the connection"
                )));
            }
            Ok(_) => {}
            Err(e) => {
                use std::io::ErrorKind as K;
                return Err(match e.kind() {
                    K::WouldBlock | K::TimedOut => HandshakeError::Timeout(format!(
                        "the TLS handshake with `{authority}` timed out ({e})"
                    )),
                    _ => HandshakeError::Failed(format!(
                        "the TLS handshake with `{authority}` failed: {e}"
                    )),
                });
            }
        }
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("example.org:443"),
            Ok(ServerName::DnsName(n)) if n.as_ref() == "example.org"
        ));
        assert!(matches!(
            server_name("127.0.0.1:8443"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:443"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(server_name("bad_name!:443").is_err());
    }

    #[test]
    fn root_bundles_must_hold_certificates() {
        let e = TlsRoots::from_pem(&[b"not pem".to_vec()]).expect_err("not PEM");
        assert!(e.contains("bundle 1"), "{e}");
        assert!(TlsRoots::from_pem(&[]).is_ok());
        let config = TlsRoots::default().config();
        assert!(config.is_ok(), "the default roots configure");
    }
}
