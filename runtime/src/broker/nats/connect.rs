//! How a [`NatsBroker`](super::NatsBroker) connects: authentication
//! (credentials file, NKey seed, user and password), TLS, reconnects with
//! backoff ([`NatsConnectOptions`]), and the connection's state as it
//! goes ([`NatsConnectionWatch`]), for `/v1/health` and `/metrics`.
//!
//! Secrets are read from files when the options are made (so a missing or
//! unreadable file is refused before anything connects, naming the file)
//! and kept in memory only; `Debug` never shows them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use crate::policy::NatsSettings;

/// Why connection options could not be made: a file named by a setting
/// is missing, unreadable or not what it should be.
#[derive(Debug, thiserror::Error)]
#[error("{}{what} `{}`: {reason}", key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default(), file.display())]
#[non_exhaustive]
pub struct NatsConfigError {
    /// The policy key or command-line flag that named the file, when
    /// known ([`NatsConfigError::for_key`]).
    pub key: Option<String>,
    /// What the file should be (`NATS credentials file`, ...).
    pub what: &'static str,
    /// The file.
    pub file: PathBuf,
    /// What is wrong with it, and how to fix it.
    pub reason: String,
}

impl NatsConfigError {
    /// The same error, naming the policy key or flag that gave the file.
    #[must_use]
    pub fn for_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Text read from a secret file; `Debug` shows nothing of it.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How the host proves who it is to the server.
#[derive(Debug, Clone)]
enum Authentication {
    /// A `.creds` file's contents (user JWT and NKey seed).
    Credentials(Secret),
    /// A user NKey seed.
    NKey(Secret),
    /// A user and password.
    UserPassword(String, Secret),
}

/// The options of a [`NatsBroker`](super::NatsBroker)'s connection, given
/// to [`NatsBrokerBuilder::connect_options`](super::NatsBrokerBuilder::connect_options).
///
/// Reconnects: when the connection is lost, the client tries again at
/// once, then waits [`reconnect_delay`](Self::reconnect_delay)'s first
/// delay, doubling after each failed attempt up to its maximum (defaults
/// 100 ms and 5 s), forever unless
/// [`max_reconnects`](Self::max_reconnects) says otherwise. Subscriptions
/// are renewed on the new connection; core NATS messages published while
/// it was down are lost (at-most-once).
#[derive(Debug, Clone)]
pub struct NatsConnectOptions {
    authentication: Option<Authentication>,
    tls_ca_file: Option<PathBuf>,
    tls_client: Option<(PathBuf, PathBuf)>,
    reconnect_delay: Duration,
    reconnect_max_delay: Duration,
    max_reconnects: Option<usize>,
    inbox_prefix: Option<String>,
    watch: Arc<NatsConnectionWatch>,
}

impl Default for NatsConnectOptions {
    fn default() -> Self {
        NatsConnectOptions {
            authentication: None,
            tls_ca_file: None,
            tls_client: None,
            reconnect_delay: Duration::from_millis(100),
            reconnect_max_delay: Duration::from_secs(5),
            max_reconnects: None,
            inbox_prefix: None,
            watch: Arc::new(NatsConnectionWatch::default()),
        }
    }
}

/// Reads `file` whole, refusing an empty one.
fn read(file: &Path, what: &'static str) -> Result<String, NatsConfigError> {
    let error = |reason: String| NatsConfigError {
        key: None,
        what,
        file: file.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        error(format!(
            "cannot read it: {e}; check the path and its permissions"
        ))
    })?;
    if text.trim().is_empty() {
        return Err(error("it is empty".to_owned()));
    }
    Ok(text)
}

/// Checks that `file` holds a PEM block of `label` (`CERTIFICATE`,
/// `PRIVATE KEY`).
fn pem(file: &Path, what: &'static str, label: &str) -> Result<(), NatsConfigError> {
    let text = read(file, what)?;
    let found = text.lines().any(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .is_some_and(|l| l.ends_with(label))
    });
    if found {
        return Ok(());
    }
    Err(NatsConfigError {
        key: None,
        what,
        file: file.to_path_buf(),
        reason: format!("it holds no PEM `{label}` block (`-----BEGIN {label}-----`)"),
    })
}

impl NatsConnectOptions {
    /// Options without authentication, TLS as the URL asks
    /// (`tls://host:port` requires it), the default reconnects.
    pub fn new() -> Self {
        Self::default()
    }

    /// Authenticates with a NATS credentials file (`.creds`: the user's
    /// JWT and NKey seed, as `nsc` writes it), read now.
    ///
    /// # Errors
    ///
    /// [`NatsConfigError`] when the file cannot be read or is not a
    /// credentials file.
    pub fn credentials_file(mut self, file: &Path) -> Result<Self, NatsConfigError> {
        const WHAT: &str = "NATS credentials file";
        let text = read(file, WHAT)?;
        if let Err(e) = async_nats::ConnectOptions::with_credentials(&text) {
            return Err(NatsConfigError {
                key: None,
                what: WHAT,
                file: file.to_path_buf(),
                reason: format!(
                    "it is not a NATS credentials file ({e}); it must hold a `USER JWT` and a \
                     `USER NKEY SEED` block, as `nsc generate creds` writes them"
                ),
            });
        }
        self.authentication = Some(Authentication::Credentials(Secret(text)));
        Ok(self)
    }

    /// Authenticates with the user NKey seed (`SU…`, the first line of
    /// `file`), read now.
    ///
    /// # Errors
    ///
    /// [`NatsConfigError`] when the file cannot be read or its first line
    /// is not a user seed.
    pub fn nkey_seed_file(mut self, file: &Path) -> Result<Self, NatsConfigError> {
        const WHAT: &str = "NATS NKey seed file";
        let text = read(file, WHAT)?;
        let seed = text.lines().next().unwrap_or_default().trim().to_owned();
        let base32 = |c: char| c.is_ascii_uppercase() || ('2'..='7').contains(&c);
        if !(seed.starts_with("SU") && seed.len() == 58 && seed.chars().all(base32)) {
            return Err(NatsConfigError {
                key: None,
                what: WHAT,
                file: file.to_path_buf(),
                reason: "its first line is not a user NKey seed (58 characters starting with \
                         `SU`, as `nk -gen user` writes it)"
                    .to_owned(),
            });
        }
        self.authentication = Some(Authentication::NKey(Secret(seed)));
        Ok(self)
    }

    /// Authenticates as `user` with the password on the first line of
    /// `file`, read now.
    ///
    /// # Errors
    ///
    /// [`NatsConfigError`] when the file cannot be read or is empty.
    pub fn user_password_file(mut self, user: &str, file: &Path) -> Result<Self, NatsConfigError> {
        let text = read(file, "NATS password file")?;
        let password = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end()
            .to_owned();
        self.authentication = Some(Authentication::UserPassword(
            user.to_owned(),
            Secret(password),
        ));
        Ok(self)
    }

    /// Requires TLS and trusts the certificate authorities in `file`
    /// (PEM) for the server's certificate.
    ///
    /// # Errors
    ///
    /// [`NatsConfigError`] when the file cannot be read or holds no PEM
    /// certificate.
    pub fn tls_ca_file(mut self, file: &Path) -> Result<Self, NatsConfigError> {
        pem(file, "TLS CA file", "CERTIFICATE")?;
        self.tls_ca_file = Some(file.to_path_buf());
        Ok(self)
    }

    /// Presents the client certificate `cert` with its private key `key`
    /// (both PEM) to the server.
    ///
    /// # Errors
    ///
    /// [`NatsConfigError`] when a file cannot be read or holds no PEM
    /// certificate (`cert`) or private key (`key`).
    pub fn tls_client_files(mut self, cert: &Path, key: &Path) -> Result<Self, NatsConfigError> {
        pem(cert, "TLS client certificate file", "CERTIFICATE")?;
        pem(key, "TLS client key file", "PRIVATE KEY")?;
        self.tls_client = Some((cert.to_path_buf(), key.to_path_buf()));
        Ok(self)
    }

    /// The reconnect backoff: the wait before the second attempt (the
    /// first is at once), doubling with each failed one up to `max`.
    #[must_use]
    pub fn reconnect_delay(mut self, first: Duration, max: Duration) -> Self {
        self.reconnect_max_delay = max.max(Duration::from_millis(1));
        self.reconnect_delay = first.min(self.reconnect_max_delay);
        self
    }

    /// Reconnect attempts before giving up on the server (`None`, the
    /// default: never). `Some(0)` is taken as `Some(1)`: the client
    /// cannot give up before its first attempt (and async-nats would read
    /// 0 as "never give up").
    #[must_use]
    pub fn max_reconnects(mut self, attempts: Option<usize>) -> Self {
        self.max_reconnects = attempts.map(|n| n.max(1));
        self
    }

    /// The prefix of this host's reply subjects (default `_INBOX`): its
    /// request answers, JetStream API answers and JetStream deliveries
    /// come on `<prefix>.<unique>`. Give each host its own (e.g.
    /// `_INBOX.host-a`) and let its NATS user subscribe only to
    /// `<prefix>.>`: then no other host can read them
    /// (docs/distributed.md, "NATS permissions per host"). The broker
    /// refuses a prefix that is not a concrete subject when it connects
    /// ([`NatsError::InvalidInboxPrefix`](super::NatsError::InvalidInboxPrefix)).
    #[must_use]
    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = Some(prefix.into());
        self
    }

    /// The inbox prefix set with [`inbox_prefix`](Self::inbox_prefix).
    pub fn inbox_prefix_set(&self) -> Option<&str> {
        self.inbox_prefix.as_deref()
    }

    /// The options of a policy's `[nats]` table (its URL and prefix are
    /// the builder's: [`NatsBroker::builder`](super::NatsBroker::builder),
    /// [`prefix`](super::NatsBrokerBuilder::prefix)).
    ///
    /// # Errors
    ///
    /// [`NatsConfigError`] naming the `[nats]` key of a file that cannot
    /// be used.
    pub fn from_settings(settings: &NatsSettings) -> Result<Self, NatsConfigError> {
        let key = |name: &str| match settings.line {
            Some(line) => format!("[nats] `{name}` (policy line {line})"),
            None => format!("[nats] `{name}`"),
        };
        let mut options = NatsConnectOptions::new();
        if let Some(file) = &settings.credentials_file {
            options = options
                .credentials_file(file)
                .map_err(|e| e.for_key(key("credentials_file")))?;
        }
        if let Some(file) = &settings.nkey_seed_file {
            options = options
                .nkey_seed_file(file)
                .map_err(|e| e.for_key(key("nkey_seed_file")))?;
        }
        if let (Some(user), Some(file)) = (&settings.user, &settings.password_file) {
            options = options
                .user_password_file(user, file)
                .map_err(|e| e.for_key(key("password_file")))?;
        }
        if let Some(file) = &settings.tls_ca_file {
            options = options
                .tls_ca_file(file)
                .map_err(|e| e.for_key(key("tls_ca_file")))?;
        }
        if let (Some(cert), Some(tls_key)) = (&settings.tls_cert_file, &settings.tls_key_file) {
            options = options.tls_client_files(cert, tls_key).map_err(|e| {
                let which = if e.file == *cert {
                    "tls_cert_file"
                } else {
                    "tls_key_file"
                };
                e.for_key(key(which))
            })?;
        }
        let first = settings.reconnect_delay.unwrap_or(options.reconnect_delay);
        let max = settings
            .reconnect_max_delay
            .unwrap_or(options.reconnect_max_delay);
        options = options
            .reconnect_delay(first, max.max(first))
            .max_reconnects(settings.max_reconnects);
        if let Some(prefix) = &settings.inbox_prefix {
            options = options.inbox_prefix(prefix.clone());
        }
        Ok(options)
    }

    /// The state of the connection these options make, updated as it
    /// goes (shared: keep it to read it while the broker runs).
    pub fn watch(&self) -> Arc<NatsConnectionWatch> {
        Arc::clone(&self.watch)
    }

    /// The client's options; `url` (credentials removed) names the server
    /// in the notes the connection's events print.
    pub(super) fn client_options(
        &self,
        url: &str,
        timeout: Duration,
    ) -> async_nats::ConnectOptions {
        self.client_options_refusing(url, timeout, None)
    }

    /// [`client_options`](Self::client_options), reporting each error
    /// the server sends to `refusals` too (so an operation waiting on a
    /// subject the server's permissions refuse fails at once).
    pub(super) fn client_options_refusing(
        &self,
        url: &str,
        timeout: Duration,
        refusals: Option<Arc<super::refused::Refusals>>,
    ) -> async_nats::ConnectOptions {
        use async_nats::{Event, ServerError};
        let mut options = async_nats::ConnectOptions::new()
            .name("airssys")
            .connection_timeout(timeout)
            .max_reconnects(self.max_reconnects);
        match &self.authentication {
            None => {}
            // Checked when read.
            Some(Authentication::Credentials(Secret(text))) => {
                options = match options.clone().credentials(text) {
                    Ok(with) => with,
                    Err(_) => options,
                };
            }
            Some(Authentication::NKey(Secret(seed))) => options = options.nkey(seed.clone()),
            Some(Authentication::UserPassword(user, Secret(password))) => {
                options = options.user_and_password(user.clone(), password.clone());
            }
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix.clone());
        }
        if let Some(ca) = &self.tls_ca_file {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &self.tls_client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let (first, max) = (self.reconnect_delay, self.reconnect_max_delay);
        options = options.reconnect_delay_callback(move |attempts| backoff(attempts, first, max));
        let watch = Arc::clone(&self.watch);
        let url = url.to_owned();
        options.event_callback(move |event| {
            // The server's own words (`ServerError`'s `Display` adds
            // `nats: `).
            if let (Some(refusals), Event::ServerError(ServerError::Other(text))) =
                (&refusals, &event)
            {
                refusals.server_error(text);
            }
            watch.record(&url, &event);
            async {}
        })
    }
}

/// The wait before reconnect attempt `attempts` (1-based): none for the
/// first, then `first` doubling up to `max`.
fn backoff(attempts: usize, first: Duration, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let doublings = u32::try_from(attempts - 2).unwrap_or(u32::MAX).min(30);
    first.saturating_mul(1 << doublings).min(max)
}

/// Where a NATS connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsConnectionState {
    /// Not connected yet.
    Connecting,
    /// Connected.
    Connected,
    /// The connection was lost; the client is reconnecting.
    Reconnecting,
    /// Closed, or the client gave up reconnecting (`max_reconnects`).
    Closed,
}

impl NatsConnectionState {
    /// `connecting`, `connected`, `reconnecting` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            NatsConnectionState::Connecting => "connecting",
            NatsConnectionState::Connected => "connected",
            NatsConnectionState::Reconnecting => "reconnecting",
            NatsConnectionState::Closed => "closed",
        }
    }
}

impl fmt::Display for NatsConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reading of a [`NatsConnectionWatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConnectionStatus {
    /// Where the connection is.
    pub state: NatsConnectionState,
    /// Connections made after the first.
    pub reconnects: u64,
    /// Times the connection was lost.
    pub disconnects: u64,
    /// Errors the server reported (permission violations among them).
    pub server_errors: u64,
    /// The last of them, as the server wrote it.
    pub last_server_error: Option<String>,
}

/// The state of a NATS connection, from the client's events
/// ([`NatsConnectOptions::watch`]). Each event also prints a note (target
/// `airssys::messaging`): a lost connection, a reconnect, an error the
/// server reported (a permission violation names the subject this host's
/// NATS user may not use).
#[derive(Debug, Default)]
pub struct NatsConnectionWatch {
    state: AtomicU8,
    connects: AtomicU64,
    disconnects: AtomicU64,
    server_errors: AtomicU64,
    last_server_error: std::sync::Mutex<Option<String>>,
    /// Server errors printed, and when last.
    noted: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// How long the same server error is not printed again (a consumer the
/// server refuses is tried again every second).
const NOTE_AGAIN: Duration = Duration::from_secs(60);

const CONNECTED: u8 = 1;
const RECONNECTING: u8 = 2;
const CLOSED: u8 = 3;

impl NatsConnectionWatch {
    /// The connection's state now.
    pub fn status(&self) -> NatsConnectionStatus {
        NatsConnectionStatus {
            state: match self.state.load(Ordering::SeqCst) {
                CONNECTED => NatsConnectionState::Connected,
                RECONNECTING => NatsConnectionState::Reconnecting,
                CLOSED => NatsConnectionState::Closed,
                _ => NatsConnectionState::Connecting,
            },
            reconnects: self.connects.load(Ordering::SeqCst).saturating_sub(1),
            disconnects: self.disconnects.load(Ordering::SeqCst),
            server_errors: self.server_errors.load(Ordering::SeqCst),
            last_server_error: crate::sync::lock(&self.last_server_error).clone(),
        }
    }

    /// Whether to print the server error `text` now: the first time, then
    /// at most once per [`NOTE_AGAIN`]; every one is counted.
    fn note_now(&self, text: &str, now: std::time::Instant) -> bool {
        let mut noted = crate::sync::lock(&self.noted);
        if noted.len() >= 256 {
            noted.clear();
        }
        match noted.get(text) {
            Some(at) if now.saturating_duration_since(*at) < NOTE_AGAIN => false,
            _ => {
                noted.insert(text.to_owned(), now);
                true
            }
        }
    }

    fn record(&self, url: &str, event: &async_nats::Event) {
        use async_nats::{ClientError, Event};
        match event {
            Event::Connected => {
                self.state.store(CONNECTED, Ordering::SeqCst);
                let connects = self.connects.fetch_add(1, Ordering::SeqCst) + 1;
                if connects > 1 {
                    tracing::warn!(
                        target: "airssys::messaging",
                        "reconnected to the NATS server {url} (reconnect {}); subscriptions \
                         renewed",
                        connects - 1
                    );
                }
            }
            Event::Disconnected => {
                self.state.store(RECONNECTING, Ordering::SeqCst);
                self.disconnects.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(
                    target: "airssys::messaging",
                    "lost the connection to the NATS server {url}; reconnecting with backoff \
                     (messages sent meanwhile over core NATS are lost)"
                );
            }
            // async-nats sends `Closed` only when this host closed the
            // connection itself (its broker dropped, at shutdown): nothing
            // for the operator to do. Giving up is `MaxReconnects`.
            Event::Closed => {
                self.state.store(CLOSED, Ordering::SeqCst);
                tracing::debug!(
                    target: "airssys::messaging",
                    "this host closed its connection to the NATS server {url}"
                );
            }
            Event::ClientError(ClientError::MaxReconnects) => {
                self.state.store(CLOSED, Ordering::SeqCst);
                tracing::warn!(
                    target: "airssys::messaging",
                    "the connection to the NATS server {url} is closed ({event}); restart the \
                     host, or raise `[nats] max_reconnects`"
                );
            }
            Event::ServerError(error) => {
                self.server_errors.fetch_add(1, Ordering::SeqCst);
                // The server's own words (`Display` adds `nats: `).
                let text = match error {
                    async_nats::ServerError::Other(text) => text.clone(),
                    other => other.to_string(),
                };
                *crate::sync::lock(&self.last_server_error) = Some(text.clone());
                let hint = if text.to_ascii_lowercase().contains("permissions violation") {
                    "; this host's NATS user may not use that subject: nothing was sent or \
                     received on it. Grant the user the subject in the server's `permissions`, \
                     or check `[nats] prefix` (docs/distributed.md)"
                } else {
                    ""
                };
                if self.note_now(&text, std::time::Instant::now()) {
                    tracing::warn!(
                        target: "airssys::messaging",
                        "the NATS server {url} refused an operation of this host: {text}{hint}"
                    );
                }
            }
            Event::SlowConsumer(_) => tracing::warn!(
                target: "airssys::messaging",
                "this host reads too slowly from the NATS server {url} ({event}): the server \
                 dropped messages for it"
            ),
            other => tracing::debug!(
                target: "airssys::messaging",
                "NATS connection to {url}: {other}"
            ),
        }
    }
}

impl fmt::Debug for super::NatsBrokerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBrokerBuilder")
            .field("url", &crate::policy::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("config", &self.config)
            .field("op_timeout", &self.op_timeout)
            .field("outgoing_capacity", &self.outgoing_capacity)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl super::NatsBrokerBuilder {
    /// Authentication, TLS and reconnects of the connection (default
    /// [`NatsConnectOptions::new`]).
    #[must_use]
    pub fn connect_options(mut self, options: NatsConnectOptions) -> Self {
        self.connection = options;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 0 attempts would be "never give up" to async-nats: taken as 1.
    /// Extreme delays neither panic nor overflow.
    #[test]
    fn reconnect_settings_at_their_extremes() {
        let options = NatsConnectOptions::new().max_reconnects(Some(0));
        assert_eq!(options.max_reconnects, Some(1));
        let options = NatsConnectOptions::new().max_reconnects(Some(usize::MAX));
        assert_eq!(options.max_reconnects, Some(usize::MAX));
        let huge = Duration::from_millis(u64::MAX);
        for (first, max) in [
            (Duration::ZERO, Duration::ZERO),
            (huge, huge),
            (Duration::MAX, Duration::MAX),
        ] {
            let options = NatsConnectOptions::new().reconnect_delay(first, max);
            for attempts in [0, 1, 2, 3, 40, usize::MAX] {
                let wait = backoff(
                    attempts,
                    options.reconnect_delay,
                    options.reconnect_max_delay,
                );
                assert!(wait <= options.reconnect_max_delay.max(Duration::from_millis(1)));
            }
            let _ = options.client_options("nats://h:1", Duration::from_secs(1));
        }
    }

    /// A refusal the host meets every second (a consumer it tries again)
    /// is printed once a minute, each counted.
    #[test]
    fn the_same_server_error_is_printed_at_most_once_a_minute() {
        let watch = NatsConnectionWatch::default();
        let start = std::time::Instant::now();
        let refused = "Permissions Violation for Publish to \"x\"";
        assert!(watch.note_now(refused, start));
        assert!(!watch.note_now(refused, start + Duration::from_secs(1)));
        assert!(watch.note_now("another", start + Duration::from_secs(1)));
        assert!(!watch.note_now(refused, start + Duration::from_secs(59)));
        assert!(watch.note_now(refused, start + NOTE_AGAIN));
        for n in 0..1000 {
            watch.note_now(&n.to_string(), start);
        }
        assert!(crate::sync::lock(&watch.noted).len() <= 256);
    }

    /// What `record` prints at `warn` (what `airssys serve` shows) for
    /// `event`, and the state it leaves.
    fn warned(event: &async_nats::Event) -> (String, NatsConnectionState) {
        #[derive(Clone, Default)]
        struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                crate::sync::lock(&self.0).extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .finish();
        let watch = NatsConnectionWatch::default();
        tracing::subscriber::with_default(subscriber, || watch.record("nats://h:1", event));
        let printed = String::from_utf8_lossy(&crate::sync::lock(&buffer.0)).into_owned();
        (printed, watch.status().state)
    }

    /// A host that closes its own connection (at shutdown) is not told to
    /// restart or to raise `max_reconnects`; one that gave up is.
    #[test]
    fn only_giving_up_on_the_server_is_a_warning() {
        let (printed, state) = warned(&async_nats::Event::Closed);
        assert_eq!(printed, "");
        assert_eq!(state, NatsConnectionState::Closed);
        let (printed, state) = warned(&async_nats::Event::ClientError(
            async_nats::ClientError::MaxReconnects,
        ));
        assert!(
            printed.contains("restart the host, or raise `[nats] max_reconnects`"),
            "{printed}"
        );
        assert_eq!(state, NatsConnectionState::Closed);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let (first, max) = (Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<u128> = (1..=7)
            .map(|n| backoff(n, first, max).as_millis())
            .collect();
        assert_eq!(waits, [0, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(usize::MAX, first, max), max);
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_and_secrets_are_not_shown() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let missing = dir.path().join("missing.creds");
        let err = NatsConnectOptions::new()
            .credentials_file(&missing)
            .expect_err("missing")
            .for_key("--nats-creds");
        let text = err.to_string();
        assert!(
            text.starts_with("--nats-creds: NATS credentials file `")
                && text.contains("missing.creds")
                && text.contains("cannot read it"),
            "{text}"
        );
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not a creds file\n").expect("write");
        let text = NatsConnectOptions::new()
            .credentials_file(&garbage)
            .expect_err("garbage")
            .to_string();
        assert!(text.contains("is not a NATS credentials file"), "{text}");
        let text = NatsConnectOptions::new()
            .nkey_seed_file(&garbage)
            .expect_err("garbage")
            .to_string();
        assert!(text.contains("not a user NKey seed"), "{text}");
        let text = NatsConnectOptions::new()
            .tls_ca_file(&garbage)
            .expect_err("garbage")
            .to_string();
        assert!(
            text.contains("TLS CA file") && text.contains("no PEM"),
            "{text}"
        );

        let seed = dir.path().join("seed");
        let secret = format!("SU{}", "A".repeat(56));
        std::fs::write(&seed, format!("{secret}\n")).expect("write");
        let password = dir.path().join("password");
        std::fs::write(&password, "pa55word\n").expect("write");
        for options in [
            NatsConnectOptions::new()
                .nkey_seed_file(&seed)
                .expect("a seed"),
            NatsConnectOptions::new()
                .user_password_file("host-a", &password)
                .expect("a password"),
        ] {
            let shown = format!("{options:?}");
            assert!(
                !shown.contains(&secret) && !shown.contains("pa55word"),
                "{shown}"
            );
        }
    }

    #[test]
    fn the_builder_does_not_show_credentials() {
        let builder = super::super::NatsBroker::builder("nats://host-a:s3cret@h:4222");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("nats://***@h:4222"),
            "{shown}"
        );
    }

    #[test]
    fn policy_keys_name_the_file_they_gave() {
        // The `[nats]` table starts on line 7 of this policy.
        let policy = crate::Policy::from_toml_str(
            "\n\n\n\n\n\n[nats]\ntls_cert_file = \"/nonexistent/cert.pem\"\ntls_key_file = \"/nonexistent/key.pem\"\n",
        )
        .expect("a valid policy");
        let settings = policy.nats().expect("a [nats] table").clone();
        let text = NatsConnectOptions::from_settings(&settings)
            .expect_err("missing")
            .to_string();
        assert!(
            text.starts_with("[nats] `tls_cert_file` (policy line 7): TLS client certificate file `/nonexistent/cert.pem`"),
            "{text}"
        );
    }
}
