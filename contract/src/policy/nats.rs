//! The policy's `[nats]` table: how this host connects to its NATS server
//! (`docs/distributed.md`). Only names of files hold secrets here (a
//! credentials file, an NKey seed, a password file, a TLS key): the
//! policy itself is printed, diffed and reviewed, so it never carries
//! one. The runtime's NATS broker reads the files when it connects.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The `[nats]` table, as written (paths made absolute against the policy
/// file's directory when read from a file). Read when the host starts:
/// a reload does not reconnect.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsSettings {
    /// `url`: the server (`nats://host:port`; several, comma-separated,
    /// for a cluster). It may carry `user:password@`, which is never
    /// shown ([`redact_url`]).
    pub url: Option<String>,
    /// `prefix`: the subject prefix (default `airssys`).
    pub prefix: Option<String>,
    /// `credentials_file`: a NATS `.creds` file (user JWT and NKey seed).
    pub credentials_file: Option<PathBuf>,
    /// `nkey_seed_file`: a file holding a user NKey seed (`SU...`).
    pub nkey_seed_file: Option<PathBuf>,
    /// `user`: the user name; the password comes from `password_file`.
    pub user: Option<String>,
    /// `password_file`: a file whose first line is the password of `user`.
    pub password_file: Option<PathBuf>,
    /// `tls_ca_file`: PEM certificates of the authorities the server's
    /// certificate must chain to (and TLS is then required).
    pub tls_ca_file: Option<PathBuf>,
    /// `tls_cert_file`: this host's client certificate (PEM), with
    /// `tls_key_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// `tls_key_file`: the private key (PEM) of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// `reconnect_delay_ms`: the wait before the second reconnect attempt;
    /// it doubles with each failed attempt up to `reconnect_max_delay_ms`.
    pub reconnect_delay: Option<Duration>,
    /// `reconnect_max_delay_ms`: the longest wait between attempts.
    pub reconnect_max_delay: Option<Duration>,
    /// `max_reconnects`: attempts before the host gives up on the server
    /// (absent: it never gives up).
    pub max_reconnects: Option<usize>,
    /// `inbox_prefix`: the prefix of this host's reply subjects (default
    /// `_INBOX`); give each host its own so that the server can keep the
    /// others from reading them (docs/distributed.md).
    pub inbox_prefix: Option<String>,
    /// `stream_max_messages_per_component`: with JetStream delivery, the
    /// most messages of one publishing component in the shared message
    /// stream, counted across every host that runs it (default: a quarter
    /// of the stream's `max_messages`; docs/nats.md).
    pub stream_max_messages_per_component: Option<u64>,
    /// The 1-based line of the `[nats]` header, when read from a file.
    pub line: Option<u32>,
}

impl fmt::Debug for NatsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSettings")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("prefix", &self.prefix)
            .field("credentials_file", &self.credentials_file)
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("user", &self.user)
            .field("password_file", &self.password_file)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("max_reconnects", &self.max_reconnects)
            .field("inbox_prefix", &self.inbox_prefix)
            .field(
                "stream_max_messages_per_component",
                &self.stream_max_messages_per_component,
            )
            .field("line", &self.line)
            .finish()
    }
}

/// `url` without the credentials it may carry: `user:password@` or a
/// token before `@` becomes `***@`, in each comma-separated server.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***@{}", &one[..scheme], &one[at + 1..])
            }
            (None, Some(at)) => format!("***@{}", &one[at + 1..]),
            _ => one.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `text` is a concrete NATS subject: `.`-separated, non-empty
/// segments without the wildcards `*` and `>` or whitespace (what a
/// subject prefix and an inbox prefix must be).
pub fn is_concrete_subject(text: &str) -> bool {
    text.split('.')
        .all(|t| !t.is_empty() && t != "*" && t != ">" && !t.contains(char::is_whitespace))
}

/// The subject prefix of a host that sets none (`[nats] prefix`).
pub const DEFAULT_SUBJECT_PREFIX: &str = "airssys";

/// The inbox prefix of a host that sets none (`[nats] inbox_prefix`).
pub const DEFAULT_INBOX_PREFIX: &str = "_INBOX";

/// Why `inbox` cannot be the inbox prefix of a host whose subject prefix
/// is `prefix` (both concrete subjects), or `None`: an inbox in the
/// server's own `$` subjects (`$JS`, `$KV`, `$SYS`, ...), or one equal to,
/// inside or around the subject prefix, where components' topics,
/// requests and the JetStream streams live, so that a component (or
/// another host) subscribed there could read this host's answers, or
/// the host's inbox would receive components' messages.
pub fn inbox_prefix_conflict(inbox: &str, prefix: &str) -> Option<String> {
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    if inbox.starts_with('$') {
        Some(format!(
            "the inbox prefix `{inbox}` is in the NATS server's own subjects (`$JS`, `$KV`, \
             `$SYS`, ...), where answers would reach the JetStream API or the system account; \
             use one of its own, e.g. `_INBOX.host-a`"
        ))
    } else if within(inbox, prefix) {
        Some(format!(
            "the inbox prefix `{inbox}` is the subject prefix `{prefix}` or inside it, where \
             components' topics and requests travel: a component subscribed there, or the \
             JetStream stream, could read this host's answers; use a prefix outside it, e.g. \
             `_INBOX.host-a`"
        ))
    } else if within(prefix, inbox) {
        Some(format!(
            "the subject prefix `{prefix}` is inside the inbox prefix `{inbox}`: components' \
             messages would travel in this host's inbox; use prefixes apart, e.g. `airssys` and \
             `_INBOX.host-a`"
        ))
    } else {
        None
    }
}

/// The `[nats]` table in TOML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NatsFile {
    url: Option<String>,
    prefix: Option<String>,
    credentials_file: Option<PathBuf>,
    nkey_seed_file: Option<PathBuf>,
    user: Option<String>,
    password_file: Option<PathBuf>,
    tls_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    reconnect_delay_ms: Option<u64>,
    reconnect_max_delay_ms: Option<u64>,
    max_reconnects: Option<u64>,
    inbox_prefix: Option<String>,
    stream_max_messages_per_component: Option<u64>,
}

impl NatsFile {
    /// The settings, files resolved against `dir` (the policy file's
    /// directory); `Err` names the keys that do not go together.
    pub(super) fn into_settings(
        self,
        dir: Option<&Path>,
        line: u32,
    ) -> Result<NatsSettings, String> {
        let file = |p: Option<PathBuf>| match (p, dir) {
            (Some(p), Some(dir)) if p.is_relative() => Some(dir.join(p)),
            (p, _) => p,
        };
        let authentications = [
            self.credentials_file.is_some(),
            self.nkey_seed_file.is_some(),
            self.user.is_some() || self.password_file.is_some(),
        ];
        if authentications.iter().filter(|set| **set).count() > 1 {
            return Err("[nats]: give one way to authenticate: `credentials_file`, \
                 `nkey_seed_file`, or `user` with `password_file`"
                .to_owned());
        }
        if self.user.is_some() != self.password_file.is_some() {
            return Err(
                "[nats]: `user` and `password_file` go together (the password is read from \
                 the file, never written in the policy)"
                    .to_owned(),
            );
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(
                "[nats]: `tls_cert_file` and `tls_key_file` go together (the client \
                 certificate and its private key)"
                    .to_owned(),
            );
        }
        if let (Some(first), Some(max)) = (self.reconnect_delay_ms, self.reconnect_max_delay_ms)
            && first > max
        {
            return Err(format!(
                "[nats]: `reconnect_delay_ms = {first}` is larger than `reconnect_max_delay_ms \
                 = {max}`"
            ));
        }
        if self.max_reconnects == Some(0) {
            return Err(
                "[nats]: `max_reconnects = 0`: give at least 1 (the NATS client would take \
                 0 as \"never give up\"); leave the key out to never give up"
                    .to_owned(),
            );
        }
        if let Some(prefix) = &self.prefix
            && !is_concrete_subject(prefix)
        {
            return Err(format!(
                "[nats]: `prefix = {prefix:?}` is not a NATS subject: use `.`-separated, \
                 non-empty segments without `*`, `>` or whitespace (the default is `airssys`)"
            ));
        }
        if let Some(inbox) = &self.inbox_prefix
            && !is_concrete_subject(inbox)
        {
            return Err(format!(
                "[nats]: `inbox_prefix = \"{inbox}\"` is not a NATS subject: use `.`-separated, \
                 non-empty segments without `*`, `>` or whitespace (e.g. `_INBOX.host-a`)"
            ));
        }
        let prefix = self.prefix.as_deref().unwrap_or(DEFAULT_SUBJECT_PREFIX);
        let inbox = self.inbox_prefix.as_deref().unwrap_or(DEFAULT_INBOX_PREFIX);
        if let Some(conflict) = inbox_prefix_conflict(inbox, prefix) {
            // Under `$` the inbox prefix alone is wrong, whatever `prefix` is.
            let keys = if inbox.starts_with('$') {
                "`inbox_prefix`"
            } else {
                "`inbox_prefix` and `prefix`"
            };
            return Err(format!("[nats]: {keys}: {conflict}"));
        }
        if self.stream_max_messages_per_component == Some(0) {
            return Err(
                "[nats]: `stream_max_messages_per_component = 0` would refuse every message: \
                 give at least 1 (the most messages of one component in the stream)"
                    .to_owned(),
            );
        }
        Ok(NatsSettings {
            url: self.url,
            prefix: self.prefix,
            credentials_file: file(self.credentials_file),
            nkey_seed_file: file(self.nkey_seed_file),
            user: self.user,
            password_file: file(self.password_file),
            tls_ca_file: file(self.tls_ca_file),
            tls_cert_file: file(self.tls_cert_file),
            tls_key_file: file(self.tls_key_file),
            reconnect_delay: self.reconnect_delay_ms.map(Duration::from_millis),
            reconnect_max_delay: self.reconnect_max_delay_ms.map(Duration::from_millis),
            max_reconnects: self
                .max_reconnects
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            inbox_prefix: self.inbox_prefix,
            stream_max_messages_per_component: self.stream_max_messages_per_component,
            line: Some(line),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_read_with_files_beside_the_policy() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("policy.toml");
        std::fs::write(
            &file,
            "[nats]\nurl = \"nats://n:4222\"\nprefix = \"shop\"\ncredentials_file = \
             \"host.creds\"\ntls_ca_file = \"/etc/ca.pem\"\nreconnect_delay_ms = 20\n\
             reconnect_max_delay_ms = 400\nmax_reconnects = 3\ninbox_prefix = \"_INBOX.host-a\"\n\
             stream_max_messages_per_component = 5000\n",
        )
        .expect("write");
        let policy = crate::policy::Policy::from_toml_file(&file).expect("a valid policy");
        let nats = policy.nats().expect("a [nats] table");
        assert_eq!(nats.url.as_deref(), Some("nats://n:4222"));
        assert_eq!(nats.prefix.as_deref(), Some("shop"));
        assert_eq!(
            nats.credentials_file.as_deref(),
            Some(dir.path().join("host.creds").as_path())
        );
        assert_eq!(nats.tls_ca_file.as_deref(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(nats.reconnect_delay, Some(Duration::from_millis(20)));
        assert_eq!(nats.reconnect_max_delay, Some(Duration::from_millis(400)));
        assert_eq!(nats.max_reconnects, Some(3));
        assert_eq!(nats.inbox_prefix.as_deref(), Some("_INBOX.host-a"));
        assert_eq!(nats.stream_max_messages_per_component, Some(5000));
        assert_eq!(nats.line, Some(1));
        assert!(
            crate::policy::Policy::from_toml_str("")
                .expect("empty")
                .nats()
                .is_none()
        );
    }

    #[test]
    fn keys_that_do_not_go_together_are_refused_with_their_line() {
        for (table, says) in [
            (
                "credentials_file = \"a\"\nnkey_seed_file = \"b\"",
                "one way to authenticate",
            ),
            ("user = \"a\"", "`user` and `password_file` go together"),
            (
                "tls_cert_file = \"a\"",
                "`tls_cert_file` and `tls_key_file`",
            ),
            (
                "reconnect_delay_ms = 5\nreconnect_max_delay_ms = 1",
                "is larger than",
            ),
            (
                "inbox_prefix = \"_INBOX.>\"",
                "`inbox_prefix = \"_INBOX.>\"` is not",
            ),
            ("inbox_prefix = \"a..b\"", "is not a NATS subject"),
            (
                "max_reconnects = 0",
                "`max_reconnects = 0`: give at least 1",
            ),
            ("inbox_prefix = \"\"", "is not a NATS subject"),
            ("inbox_prefix = \".a\"", "is not a NATS subject"),
            ("inbox_prefix = \"a.\"", "is not a NATS subject"),
            ("inbox_prefix = \"_INBOX.a b\"", "is not a NATS subject"),
            ("inbox_prefix = \"_INBOX.*\"", "is not a NATS subject"),
            (
                "prefix = \"a..b\"",
                "`prefix = \"a..b\"` is not a NATS subject",
            ),
            ("prefix = \"shop.>\"", "is not a NATS subject"),
            (
                "inbox_prefix = \"$JS.API\"",
                "[nats]: `inbox_prefix`: the inbox prefix `$JS.API` is in the NATS server's own \
                 subjects",
            ),
            ("inbox_prefix = \"$KV\"", "server's own subjects"),
            ("inbox_prefix = \"airssys\"", "inside it"),
            ("inbox_prefix = \"airssys.topic.x\"", "inside it"),
            (
                "prefix = \"shop\"\ninbox_prefix = \"shop.replies\"",
                "is the subject prefix `shop` or inside it",
            ),
            (
                "prefix = \"_INBOX.shop\"",
                "is inside the inbox prefix `_INBOX`",
            ),
            (
                "prefix = \"_INBOX\"\ninbox_prefix = \"_INBOX.host-a\"",
                "inside it",
            ),
            (
                "stream_max_messages_per_component = 0",
                "`stream_max_messages_per_component = 0` would refuse every message",
            ),
        ] {
            let err = crate::policy::Policy::from_toml_str(&format!("# hosts\n[nats]\n{table}\n"))
                .expect_err(table);
            let text = err.to_string();
            assert!(text.contains(says) && text.contains("line 2"), "{text}");
        }
        // A password is never written in the policy.
        let err =
            crate::policy::Policy::from_toml_str("[nats]\npassword = \"x\"\n").expect_err("key");
        assert!(
            err.to_string().contains("unknown field `password`"),
            "{err}"
        );
    }

    #[test]
    fn credentials_are_not_shown() {
        assert_eq!(
            redact_url("nats://user:secret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact_url("tok@host:4222,nats://h2:4222"),
            "***@host:4222,nats://h2:4222"
        );
        assert_eq!(redact_url("nats://h:1"), "nats://h:1");
        let settings = NatsSettings {
            url: Some("nats://me:s3cret@h:1".to_owned()),
            ..NatsSettings::default()
        };
        assert!(!format!("{settings:?}").contains("s3cret"));
    }
}
