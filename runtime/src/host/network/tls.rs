//! TLS for the HTTP client: rustls with the *ring* provider (through
//! tokio-rustls), trusting the Mozilla roots shipped in `webpki-roots` plus
//! the roots the embedder added with
//! [`RuntimeBuilder::tls_root_certificates`](crate::RuntimeBuilder::tls_root_certificates).
//! Certificate verification is always on; there is no switch to turn it
//! off. The client offers HTTP/2 and HTTP/1.1 through ALPN (`h2`,
//! `http/1.1`); the server's choice decides the protocol of the exchange.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

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
                // *ring* on purpose (no C toolchain needed, unlike
                // aws-lc-rs); rustls 0.23.48 deprecates this constructor
                // only because *ring* has no post-quantum key exchange.
                // Installing a process-wide default instead would panic
                // when an embedder's graph enables both providers.
                #[allow(deprecated)]
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("cannot configure TLS: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let mut config = config;
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                Ok(Arc::new(config))
            })
            .clone()
    }
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

/// A TLS stream and whether the server chose HTTP/2.
pub(crate) struct Secured {
    /// The stream.
    pub(crate) stream: TlsStream<TcpStream>,
    /// The server chose `h2` through ALPN.
    pub(crate) h2: bool,
}

/// Runs the TLS handshake on `stream` (already connected to a checked
/// address) for the host of `authority`. The certificate chain must lead
/// to a trusted root and name that host. The caller bounds the time.
///
/// # Errors
///
/// The name, the configuration, the certificate or the peer was refused;
/// the text says which.
pub(crate) async fn handshake(
    roots: &TlsRoots,
    authority: &str,
    stream: TcpStream,
) -> Result<Secured, String> {
    let name = server_name(authority)?;
    let config = roots.config()?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!(
                    "the TLS handshake with `{authority}` failed: the peer closed the connection"
                )
            } else {
                format!("the TLS handshake with `{authority}` failed: {e}")
            }
        })?;
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    Ok(Secured { stream, h2 })
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
