//! [`NatsConnectOptions`] against a real `nats-server` (Debian package
//! `nats-server`; a missing one fails the test, naming the package): TLS
//! with a private certificate authority and an NKey user, as an operator
//! configures them (docs/distributed.md).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use airssys_runtime::broker::{NatsBroker, NatsConnectOptions, NatsConnectionState, NatsDelivery};

#[path = "support/jetstream.rs"]
mod jetstream;

/// A `nats-server` of this test, killed on drop.
type Server = jetstream::JetStreamServer;

/// Starts `nats-server -c conf` on a free loopback port (the workspace's
/// one starter); returns it and the port.
fn nats_server(conf: &Path) -> (Server, u16) {
    let server = Server::start_core_with(&["-c", conf.to_str().unwrap()]);
    let port = server.port();
    (server, port)
}

/// A private CA, and a certificate it signed for 127.0.0.1 with its key:
/// (CA PEM, certificate PEM, key PEM).
fn pki() -> (String, String, String) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "airssys test CA");
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), server.pem(), key.serialize_pem())
}

/// A server requiring TLS (its certificate signed by a private CA) and an
/// NKey user: a host given the CA and the user's seed connects (state
/// `connected`), one with another user's seed is refused by the server,
/// one without the CA cannot verify the server; no error shows a seed.
#[test]
fn tls_with_a_private_ca_and_an_nkey_user_connect_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = pki();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca = write("ca.pem", &ca);
    let cert = write("server.pem", &cert);
    let key = write("server-key.pem", &key);
    let user = nkeys::KeyPair::new_user();
    let stranger = nkeys::KeyPair::new_user();
    let seed = write("host.nk", &format!("{}\n", user.seed().unwrap()));
    let wrong = write("other.nk", &format!("{}\n", stranger.seed().unwrap()));
    let conf = write(
        "server.conf",
        &format!(
            "tls {{\n  cert_file: {cert:?}\n  key_file: {key:?}\n}}\n\
             authorization {{\n  users = [ {{ nkey: {:?} }} ]\n}}\n",
            user.public_key()
        ),
    );
    let (_server, port) = nats_server(&conf);
    let url = format!("tls://127.0.0.1:{port}");
    let connect = |options: NatsConnectOptions| {
        // Core delivery: this server runs without JetStream; the test is
        // about the connection.
        NatsBroker::builder(url.as_str())
            .op_timeout(Duration::from_secs(5))
            .delivery(NatsDelivery::Core)
            .connect_options(options)
            .connect()
    };

    let options = NatsConnectOptions::new()
        .tls_ca_file(&ca)
        .unwrap()
        .nkey_seed_file(&seed)
        .unwrap();
    let watch = options.watch();
    let broker = connect(options).expect("the CA and the user's seed connect");
    assert!(broker.flush(), "the server answers");
    assert_eq!(watch.status().state, NatsConnectionState::Connected);
    assert_eq!(watch.status().reconnects, 0);
    drop(broker);

    let refused = connect(
        NatsConnectOptions::new()
            .tls_ca_file(&ca)
            .unwrap()
            .nkey_seed_file(&wrong)
            .unwrap(),
    )
    .expect_err("another user's seed is refused");
    let text = refused.to_string();
    assert!(
        text.contains("could not connect to the NATS server at `tls://127.0.0.1:"),
        "{text}"
    );
    assert!(
        !text.contains(&stranger.seed().unwrap()) && !text.contains(&user.seed().unwrap()),
        "{text}"
    );

    let unverified = connect(NatsConnectOptions::new().nkey_seed_file(&seed).unwrap());
    assert!(
        unverified.is_err(),
        "the server's certificate is not verified without its CA"
    );
}
