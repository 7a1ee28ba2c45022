//! The NATS options of `airssys run` and `airssys serve`: `--nats URL`
//! and the flags beside it, over the policy's `[nats]` table
//! (docs/distributed.md). A flag replaces the policy's key; any
//! authentication flag replaces the policy's authentication, any TLS flag
//! its TLS. Files are read before anything is built or connected, and
//! every refusal names the flag or key and the file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airssys_runtime::broker::{NatsBroker, NatsConnectOptions, NatsConnectionWatch, NatsDelivery};
use airssys_runtime::policy::{NatsSettings, redact_url};

use super::run::{Exit, fail};

/// The NATS flags (every one optional; `[nats]` in the policy may give
/// the same).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct NatsArgs {
    /// Carry messages and requests over the NATS server at URL
    /// (docs/nats.md, docs/distributed.md): these components reach, and
    /// are reached by, the components of every other host on it, each
    /// host checking its own components' grants. Replaces the policy's
    /// `[nats] url`.
    #[arg(long, value_name = "URL")]
    pub(crate) nats: Option<String>,
    /// The NATS subject prefix (default `airssys`; `[nats] prefix`).
    #[arg(long, value_name = "PREFIX")]
    nats_prefix: Option<String>,
    /// Authenticate with this NATS credentials file (`.creds`;
    /// `[nats] credentials_file`).
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// Authenticate with the user NKey seed in FILE (`[nats]
    /// nkey_seed_file`).
    #[arg(long, value_name = "FILE")]
    nats_nkey: Option<PathBuf>,
    /// Authenticate as USER, with the password of --nats-password-file
    /// (`[nats] user`).
    #[arg(long, value_name = "USER", requires = "nats_password_file")]
    nats_user: Option<String>,
    /// The password of --nats-user: the first line of FILE (`[nats]
    /// password_file`; never on the command line).
    #[arg(long, value_name = "FILE", requires = "nats_user")]
    nats_password_file: Option<PathBuf>,
    /// Require TLS, trusting the certificate authorities in FILE (PEM;
    /// `[nats] tls_ca_file`).
    #[arg(long, value_name = "FILE")]
    nats_tls_ca: Option<PathBuf>,
    /// Present this client certificate (PEM; `[nats] tls_cert_file`),
    /// with --nats-tls-key.
    #[arg(long, value_name = "FILE", requires = "nats_tls_key")]
    nats_tls_cert: Option<PathBuf>,
    /// The private key of --nats-tls-cert (PEM; `[nats] tls_key_file`).
    #[arg(long, value_name = "FILE", requires = "nats_tls_cert")]
    nats_tls_key: Option<PathBuf>,
    /// How messages travel over NATS (docs/nats.md, "Delivery
    /// semantics"): `jetstream` (the default: at least once, acknowledged
    /// once handled, the server must run with `-js`) or `core` (at most
    /// once).
    #[arg(long, value_name = "core|jetstream")]
    nats_delivery: Option<NatsDelivery>,
    /// The prefix of this host's reply subjects (default `_INBOX`;
    /// `[nats] inbox_prefix`): give each host its own, e.g.
    /// `_INBOX.host-a`, so that the server can keep the others from
    /// reading its answers and deliveries (docs/distributed.md).
    #[arg(long, value_name = "SUBJECT")]
    nats_inbox_prefix: Option<String>,
    /// After a lost connection, the wait before the second reconnect
    /// attempt (the first is at once), doubling after each failed one
    /// (default 100; `[nats] reconnect_delay_ms`).
    #[arg(long, value_name = "MS")]
    nats_reconnect_delay_ms: Option<u64>,
    /// The longest wait between reconnect attempts (default 5000; `[nats]
    /// reconnect_max_delay_ms`).
    #[arg(long, value_name = "MS")]
    nats_reconnect_max_delay_ms: Option<u64>,
    /// Reconnect attempts before giving up on the server (default: never
    /// gives up; `[nats] max_reconnects`).
    #[arg(long, value_name = "N")]
    nats_max_reconnects: Option<u64>,
    /// With JetStream delivery, the most messages of one publishing
    /// component in the shared message stream, counted across every host
    /// that runs it; a publish over it gets `quota-exceeded` (default: a
    /// quarter of the stream's `max_messages`; `[nats]
    /// stream_max_messages_per_component`; docs/nats.md).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    nats_stream_max_messages_per_component: Option<u64>,
}

/// A connection read from the flags and the policy, not yet made.
pub(crate) struct NatsPlan {
    url: String,
    /// What gave the URL: `--nats` or the policy's key.
    origin: &'static str,
    prefix: Option<String>,
    delivery: NatsDelivery,
    /// The flag's or the policy's share of the stream per component.
    stream_share: Option<u64>,
    options: NatsConnectOptions,
    /// Where the host's credentials came from (flag or key, and file),
    /// named when the server refuses them.
    credentials: Option<String>,
}

/// A broker connected as planned, and its connection's state.
pub(crate) struct NatsLink {
    pub(crate) broker: Arc<NatsBroker>,
    pub(crate) watch: Arc<NatsConnectionWatch>,
}

impl NatsArgs {
    /// Whether a flag other than `--nats` was given.
    fn any_option(&self) -> bool {
        self.nats_prefix.is_some()
            || self.nats_creds.is_some()
            || self.nats_nkey.is_some()
            || self.nats_user.is_some()
            || self.nats_tls_ca.is_some()
            || self.nats_tls_cert.is_some()
            || self.nats_delivery.is_some()
            || self.nats_inbox_prefix.is_some()
            || self.nats_reconnect_delay_ms.is_some()
            || self.nats_reconnect_max_delay_ms.is_some()
            || self.nats_max_reconnects.is_some()
            || self.nats_stream_max_messages_per_component.is_some()
    }

    /// The connection the flags and the policy's `[nats]` ask for (none
    /// without a URL), its files read now.
    pub(crate) fn plan(&self, policy: Option<&NatsSettings>) -> Result<Option<NatsPlan>, Exit> {
        let url = self
            .nats
            .clone()
            .or_else(|| policy.and_then(|p| p.url.clone()));
        let Some(url) = url else {
            if self.any_option() {
                return Err(fail(
                    2,
                    "the --nats-* options need a NATS server: give --nats URL, or `url` in the \
                     policy's [nats] table",
                ));
            }
            return Ok(None);
        };
        let mut settings = policy.cloned().unwrap_or_default();
        let authenticates =
            self.nats_creds.is_some() || self.nats_nkey.is_some() || self.nats_user.is_some();
        if authenticates {
            settings.credentials_file = None;
            settings.nkey_seed_file = None;
            settings.user = None;
            settings.password_file = None;
        }
        if self.nats_tls_ca.is_some() || self.nats_tls_cert.is_some() {
            settings.tls_ca_file = None;
            settings.tls_cert_file = None;
            settings.tls_key_file = None;
        }
        self.reconnects(&mut settings)?;
        let bad = |e: airssys_runtime::broker::NatsConfigError| fail(2, e);
        let mut options = NatsConnectOptions::from_settings(&settings).map_err(bad)?;
        let key = |name: &str| match settings.line {
            Some(line) => format!("[nats] `{name}` (policy line {line})"),
            None => format!("[nats] `{name}`"),
        };
        let named =
            |origin: String, file: &std::path::Path| format!("{origin} `{}`", file.display());
        let credentials = if let Some(file) = &self.nats_creds {
            Some(named("--nats-creds".to_owned(), file))
        } else if let Some(file) = &self.nats_nkey {
            Some(named("--nats-nkey".to_owned(), file))
        } else if let Some(file) = &self.nats_password_file {
            Some(named(
                "--nats-user with --nats-password-file".to_owned(),
                file,
            ))
        } else if let Some(file) = &settings.credentials_file {
            Some(named(key("credentials_file"), file))
        } else if let Some(file) = &settings.nkey_seed_file {
            Some(named(key("nkey_seed_file"), file))
        } else {
            settings
                .password_file
                .as_ref()
                .map(|file| named(key("password_file"), file))
        };
        let flags = [
            self.nats_creds.is_some(),
            self.nats_nkey.is_some(),
            self.nats_user.is_some(),
        ];
        if flags.iter().filter(|f| **f).count() > 1 {
            return Err(fail(
                2,
                "give one of --nats-creds, --nats-nkey, --nats-user (one way to authenticate)",
            ));
        }
        if let Some(file) = &self.nats_creds {
            options = options
                .credentials_file(file)
                .map_err(|e| bad(e.for_key("--nats-creds")))?;
        }
        if let Some(file) = &self.nats_nkey {
            options = options
                .nkey_seed_file(file)
                .map_err(|e| bad(e.for_key("--nats-nkey")))?;
        }
        if let (Some(user), Some(file)) = (&self.nats_user, &self.nats_password_file) {
            options = options
                .user_password_file(user, file)
                .map_err(|e| bad(e.for_key("--nats-password-file")))?;
        }
        if let Some(file) = &self.nats_tls_ca {
            options = options
                .tls_ca_file(file)
                .map_err(|e| bad(e.for_key("--nats-tls-ca")))?;
        }
        if let (Some(cert), Some(key)) = (&self.nats_tls_cert, &self.nats_tls_key) {
            options = options.tls_client_files(cert, key).map_err(|e| {
                let flag = if e.file == *cert {
                    "--nats-tls-cert"
                } else {
                    "--nats-tls-key"
                };
                bad(e.for_key(flag))
            })?;
        }
        if let Some(prefix) = &self.nats_inbox_prefix {
            if !airssys_runtime::policy::is_concrete_subject(prefix) {
                return Err(fail(
                    2,
                    format_args!(
                        "--nats-inbox-prefix: `{prefix}` is not a NATS subject: use \
                         `.`-separated, non-empty segments without `*`, `>` or whitespace \
                         (e.g. `_INBOX.host-a`)"
                    ),
                ));
            }
            options = options.inbox_prefix(prefix.clone());
        }
        let subject_prefix = self.nats_prefix.clone().or(settings.prefix.clone());
        if let Some(prefix) = &self.nats_prefix
            && !airssys_runtime::policy::is_concrete_subject(prefix)
        {
            return Err(fail(
                2,
                format_args!(
                    "--nats-prefix: `{prefix}` is not a NATS subject: use `.`-separated, \
                     non-empty segments without `*`, `>` or whitespace (the default is `airssys`)"
                ),
            ));
        }
        {
            use airssys_runtime::policy::{
                DEFAULT_INBOX_PREFIX, DEFAULT_SUBJECT_PREFIX, inbox_prefix_conflict,
            };
            let (inbox, inbox_from) = match (&self.nats_inbox_prefix, &settings.inbox_prefix) {
                (Some(flag), _) => (flag.as_str(), "--nats-inbox-prefix".to_owned()),
                (None, Some(key_value)) => (key_value.as_str(), key("inbox_prefix")),
                (None, None) => (DEFAULT_INBOX_PREFIX, "the default inbox prefix".to_owned()),
            };
            let prefix_from = match (&self.nats_prefix, &settings.prefix) {
                (Some(_), _) => "--nats-prefix".to_owned(),
                (None, Some(_)) => key("prefix"),
                (None, None) => "the default subject prefix".to_owned(),
            };
            let prefix = subject_prefix.as_deref().unwrap_or(DEFAULT_SUBJECT_PREFIX);
            if let Some(conflict) = inbox_prefix_conflict(inbox, prefix) {
                // Under `$` the inbox prefix alone is wrong, whatever the
                // subject prefix is.
                let names = if inbox.starts_with('$') {
                    inbox_from
                } else {
                    format!("{inbox_from} and {prefix_from}")
                };
                return Err(fail(2, format_args!("{names}: {conflict}")));
            }
        }
        Ok(Some(NatsPlan {
            url,
            origin: if self.nats.is_some() {
                "--nats"
            } else {
                "[nats] url"
            },
            prefix: subject_prefix,
            delivery: self.nats_delivery.unwrap_or_default(),
            stream_share: self
                .nats_stream_max_messages_per_component
                .or(settings.stream_max_messages_per_component),
            options,
            credentials,
        }))
    }
}

impl NatsArgs {
    /// The reconnect flags over the policy's keys; a first delay larger
    /// than the longest is refused, naming where each came from.
    fn reconnects(&self, settings: &mut NatsSettings) -> Result<(), Exit> {
        let policy_first = settings.reconnect_delay;
        let policy_max = settings.reconnect_max_delay;
        if let Some(ms) = self.nats_reconnect_delay_ms {
            settings.reconnect_delay = Some(Duration::from_millis(ms));
        }
        if let Some(ms) = self.nats_reconnect_max_delay_ms {
            settings.reconnect_max_delay = Some(Duration::from_millis(ms));
        }
        if self.nats_max_reconnects == Some(0) {
            return Err(fail(
                2,
                "--nats-max-reconnects 0: give at least 1 (the NATS client would take 0 as \
                 \"never give up\"); leave the flag out to never give up",
            ));
        }
        if let Some(n) = self.nats_max_reconnects {
            settings.max_reconnects = Some(usize::try_from(n).unwrap_or(usize::MAX));
        }
        let first = settings
            .reconnect_delay
            .unwrap_or(Duration::from_millis(100));
        let max = settings
            .reconnect_max_delay
            .unwrap_or(Duration::from_millis(5000));
        if first > max {
            let named = |flag: Option<u64>, key: &str, from_policy: bool, value: Duration| match (
                flag,
                from_policy,
            ) {
                (Some(ms), _) => format!("--{key} {ms}"),
                (None, true) => format!(
                    "[nats] `{}` = {}",
                    key.trim_start_matches("nats-").replace('-', "_"),
                    value.as_millis()
                ),
                (None, false) => format!("the default {} ms of --{key}", value.as_millis()),
            };
            return Err(fail(
                2,
                format_args!(
                    "{} is larger than {}: the first reconnect delay must not exceed the \
                     longest; lower the first or raise the longest",
                    named(
                        self.nats_reconnect_delay_ms,
                        "nats-reconnect-delay-ms",
                        policy_first.is_some(),
                        first
                    ),
                    named(
                        self.nats_reconnect_max_delay_ms,
                        "nats-reconnect-max-delay-ms",
                        policy_max.is_some(),
                        max
                    ),
                ),
            ));
        }
        Ok(())
    }
}

impl NatsPlan {
    /// The server, without credentials.
    pub(crate) fn shown_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The same connection with core delivery (no JetStream streams for
    /// messages: a tool that uses only storage).
    pub(crate) fn core_delivery(mut self) -> Self {
        self.delivery = NatsDelivery::Core;
        self
    }

    /// Connects.
    pub(crate) fn connect(self) -> Result<NatsLink, Exit> {
        let watch = self.options.watch();
        let mut builder = NatsBroker::builder(self.url.as_str())
            .connect_options(self.options)
            .delivery(self.delivery);
        if let Some(prefix) = self.prefix {
            builder = builder.prefix(prefix);
        }
        if let Some(share) = self.stream_share {
            builder = builder.stream_max_messages_per_component(share);
        }
        let credentials = self.credentials;
        let origin = self.origin;
        let broker = builder.connect().map_err(|e| {
            let text = e.to_string();
            let lower = text.to_lowercase();
            match &credentials {
                Some(credentials)
                    if lower.contains("authorization") || lower.contains("expired") =>
                {
                    fail(
                        2,
                        format_args!(
                            "{credentials}: the NATS server refused these credentials ({origin}: \
                             {text}); check that they are this host's, signed for this server's \
                             account and not expired (docs/distributed.md)"
                        ),
                    )
                }
                _ => fail(2, format_args!("{origin}: {text}")),
            }
        })?;
        Ok(NatsLink {
            broker: Arc::new(broker),
            watch,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        nats: NatsArgs,
    }

    fn share(flags: &[&str], policy: &str) -> Option<u64> {
        let policy = airssys_runtime::Policy::from_toml_str(policy).expect("a valid policy");
        let args = Flags::parse_from(std::iter::once("airssys").chain(flags.iter().copied()));
        match args.nats.plan(policy.nats()) {
            Ok(Some(plan)) => plan.stream_share,
            _ => panic!("no plan"),
        }
    }

    /// The share of the stream per component: the flag over the
    /// policy's key, none (the broker's default) without either.
    #[test]
    fn the_stream_share_comes_from_the_flag_over_the_key() {
        let keyed = "[nats]\nurl = \"nats://h:1\"\nstream_max_messages_per_component = 7\n";
        assert_eq!(share(&[], keyed), Some(7));
        assert_eq!(
            share(&["--nats-stream-max-messages-per-component", "9"], keyed),
            Some(9)
        );
        assert_eq!(share(&[], "[nats]\nurl = \"nats://h:1\"\n"), None);
        assert_eq!(
            share(
                &[
                    "--nats",
                    "nats://h:1",
                    "--nats-stream-max-messages-per-component",
                    "3"
                ],
                ""
            ),
            Some(3)
        );
    }
}
