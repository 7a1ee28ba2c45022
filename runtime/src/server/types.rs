//! The server's public data: its configuration, its errors and the
//! reports it hands out (status, reload, shutdown).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::broker::BrokerError;
use crate::error::{BuildError, LimitExceeded, LoadError, RuntimeError};

/// How a [`Server`](super::Server) runs its components.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use airssys_runtime::ServerConfig;
///
/// let config = ServerConfig::default()
///     .queue_bound(16)
///     .restart_backoff(Duration::from_millis(50));
/// assert_eq!(config.queue_bound, 16);
/// assert_eq!(config.init_failures_before_failed, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Requests that may wait per component beyond those in flight
    /// (default 64); one more is refused with [`ServeError::Busy`].
    pub queue_bound: usize,
    /// The delay before the first restart of an instance that trapped,
    /// hit a limit or failed to start; doubled per consecutive failure
    /// (default 100 ms).
    pub restart_backoff: Duration,
    /// The longest delay between restarts (default 5 s).
    pub max_restart_backoff: Duration,
    /// Consecutive failures to start an instance (`init` or
    /// instantiation) after which the component is
    /// [`ComponentState::Failed`] and no longer retried (default 3).
    pub init_failures_before_failed: u32,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            queue_bound: 64,
            restart_backoff: Duration::from_millis(100),
            max_restart_backoff: Duration::from_secs(5),
            init_failures_before_failed: 3,
        }
    }
}

impl ServerConfig {
    /// Sets [`ServerConfig::queue_bound`].
    #[must_use]
    pub fn queue_bound(mut self, bound: usize) -> ServerConfig {
        self.queue_bound = bound;
        self
    }

    /// Sets [`ServerConfig::restart_backoff`].
    #[must_use]
    pub fn restart_backoff(mut self, delay: Duration) -> ServerConfig {
        self.restart_backoff = delay;
        self
    }

    /// Sets [`ServerConfig::max_restart_backoff`].
    #[must_use]
    pub fn max_restart_backoff(mut self, delay: Duration) -> ServerConfig {
        self.max_restart_backoff = delay;
        self
    }

    /// Sets [`ServerConfig::init_failures_before_failed`] (at least 1).
    #[must_use]
    pub fn init_failures_before_failed(mut self, failures: u32) -> ServerConfig {
        self.init_failures_before_failed = failures.max(1);
        self
    }
}

/// One component for [`Server::start`](super::Server::start): its bytes,
/// and where they came from (for messages).
#[derive(Debug, Clone)]
pub struct ComponentSource {
    /// Where the component was read from; named in load errors.
    pub origin: PathBuf,
    /// The component's bytes.
    pub bytes: Vec<u8>,
}

impl ComponentSource {
    /// Reads the component at `path`.
    ///
    /// # Errors
    ///
    /// [`LoadError::Io`] when the file cannot be read.
    pub fn read(path: impl Into<PathBuf>) -> Result<ComponentSource, LoadError> {
        let origin = path.into();
        let bytes = std::fs::read(&origin).map_err(|source| LoadError::Io {
            path: origin.clone(),
            source,
        })?;
        Ok(ComponentSource { origin, bytes })
    }
}

/// Why a [`Server`](super::Server) call failed. Each variant maps to an
/// HTTP status ([`ServeError::http_status`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No component of that name is served (404).
    #[error("no component `{component}` is served")]
    NotFound {
        /// The name asked for.
        component: String,
    },
    /// Every instance is busy and the component's queue is full (429).
    #[error(
        "component `{component}` is busy: {queued} requests already wait (queue bound {bound}); \
         retry later, or raise the queue bound or `[components.{component}] instances`"
    )]
    Busy {
        /// The component.
        component: String,
        /// Requests waiting when this one came.
        queued: usize,
        /// The queue bound ([`ServerConfig::queue_bound`]).
        bound: usize,
    },
    /// The handler returned `error::denied` (403); the text is the
    /// component's, which names the capability when a host call was
    /// refused.
    #[error("component `{component}` denied the request: {message}")]
    Denied {
        /// The component.
        component: String,
        /// The component's text.
        message: String,
    },
    /// The handler returned `error::invalid-input` (400).
    #[error("component `{component}` refused the input: {message}")]
    InvalidInput {
        /// The component.
        component: String,
        /// The component's text.
        message: String,
    },
    /// The handler returned `error::other` (500).
    #[error("component `{component}` failed: {message}")]
    Handler {
        /// The component.
        component: String,
        /// The component's text.
        message: String,
    },
    /// A limit ended the call; the instance is replaced (503).
    #[error("component `{component}` hit a limit: {message}")]
    Limit {
        /// The component.
        component: String,
        /// The limit, named with its policy key.
        message: String,
        /// The limit, as data.
        #[source]
        limit: LimitExceeded,
    },
    /// The call trapped; the instance is replaced (500).
    #[error("component `{component}` trapped: {message}")]
    Trap {
        /// The component.
        component: String,
        /// The trap's description.
        message: String,
        /// wasmtime's error (its [`wasmtime::Trap`] code and backtrace are
        /// found with `downcast_ref`); `None` when the instance had
        /// trapped before and was not called.
        #[source]
        source: Option<wasmtime::Error>,
    },
    /// The component has no instance to answer: failed, stopped, or
    /// restarting with none left (503).
    #[error("component `{component}` is unavailable: {reason}")]
    Unavailable {
        /// The component.
        component: String,
        /// Why (its state and last error).
        reason: String,
    },
    /// The server is shutting down and takes no new calls (503).
    #[error("the server is shutting down and takes no new calls")]
    ShuttingDown,
    /// The topic is not a valid topic (400).
    #[error("invalid topic `{topic}`: {message}")]
    InvalidTopic {
        /// The topic given.
        topic: String,
        /// What is wrong with it.
        message: String,
    },
    /// The broker refused what [`Server::publish`](super::Server::publish)
    /// published (503 when `retry`, 400 otherwise).
    #[error("cannot publish on `{topic}`: {message}")]
    Publish {
        /// The topic.
        topic: String,
        /// The broker's reason, naming the bound it hit.
        message: String,
        /// Whether it may succeed later (a full mailbox), rather than
        /// never (a payload over the broker's size bound).
        retry: bool,
        /// The broker's error.
        #[source]
        source: BrokerError,
    },
    /// A component could not be loaded at start.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The runtime could not be built at start.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A policy was refused (at reload); nothing changed.
    #[error("policy refused, nothing changed: {message}")]
    Policy {
        /// Why, naming the component and the rule.
        message: String,
        /// The load error that refused the policy for a component, when
        /// that is why.
        #[source]
        source: Option<Box<LoadError>>,
    },
    /// Another runtime failure (start-up, publishing).
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl ServeError {
    /// The HTTP status this error maps to: 404 not found, 429 busy, 403
    /// denied, 400 invalid input or topic, 503 limit, unavailable or
    /// shutting down, 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            ServeError::NotFound { .. } => 404,
            ServeError::Busy { .. } => 429,
            ServeError::Denied { .. } => 403,
            ServeError::InvalidInput { .. } | ServeError::InvalidTopic { .. } => 400,
            ServeError::Limit { .. }
            | ServeError::Unavailable { .. }
            | ServeError::ShuttingDown
            | ServeError::Publish { retry: true, .. } => 503,
            ServeError::Publish { retry: false, .. } => 400,
            ServeError::Handler { .. }
            | ServeError::Trap { .. }
            | ServeError::Load(_)
            | ServeError::Build(_)
            | ServeError::Policy { .. }
            | ServeError::Runtime(_) => 500,
        }
    }
}

/// Where a served component stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentState {
    /// Its instances are being started.
    Starting,
    /// At least one instance answers.
    Ready,
    /// No instance answers; one is being restarted after a failure.
    Restarting,
    /// Its instances failed to start too often in a row; not retried.
    Failed,
    /// Stopped (a reload took a required capability away, or shutdown).
    Stopped,
}

impl fmt::Display for ComponentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ComponentState::Starting => "starting",
            ComponentState::Ready => "ready",
            ComponentState::Restarting => "restarting",
            ComponentState::Failed => "failed",
            ComponentState::Stopped => "stopped",
        })
    }
}

/// One served component's state and counters
/// ([`Server::status`](super::Server::status)).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentStatus {
    /// The component's name.
    pub name: String,
    /// Where it stands.
    pub state: ComponentState,
    /// Instances running (idle or busy).
    pub instances: usize,
    /// Instances in a call.
    pub busy: usize,
    /// Requests waiting for an instance.
    pub queue_depth: usize,
    /// Instances replaced after a trap, a limit or a failed start.
    pub restarts: u64,
    /// Requests answered (whatever the outcome) and mailbox entries
    /// delivered.
    pub calls: u64,
    /// Capability decisions that refused one of its host calls.
    pub denials: u64,
    /// The last failure (trap, limit, failed start, stop reason).
    pub last_error: Option<String>,
}

/// What a [`Server::reload`](super::Server::reload) changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// One entry per component, in load order.
    pub components: Vec<ComponentReload>,
}

/// What a reload changed for one component.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentReload {
    /// The component's name.
    pub name: String,
    /// Capabilities of its effective grant it did not have before.
    pub gained: Vec<String>,
    /// Capabilities of its effective grant it no longer has.
    pub lost: Vec<String>,
    /// Why it was stopped (its required capabilities no longer granted),
    /// when it was.
    pub stopped: Option<String>,
}

impl fmt::Display for ComponentReload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.name)?;
        if let Some(reason) = &self.stopped {
            return write!(f, "stopped: {reason}");
        }
        if self.gained.is_empty() && self.lost.is_empty() {
            return f.write_str("unchanged");
        }
        let changes: Vec<String> = self
            .gained
            .iter()
            .map(|c| format!("+{c}"))
            .chain(self.lost.iter().map(|c| format!("-{c}")))
            .collect();
        f.write_str(&changes.join(", "))
    }
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for component in &self.components {
            writeln!(f, "{component}")?;
        }
        Ok(())
    }
}

/// What a [`Server::shutdown`](super::Server::shutdown) did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShutdownReport {
    /// Calls in flight or queued at shutdown that finished.
    pub completed: usize,
    /// Calls still running or waiting at the deadline (their callers got
    /// [`ServeError::ShuttingDown`] or are left to finish alone).
    pub abandoned: usize,
    /// Errors of the components' `shutdown` exports and of the storage
    /// and audit flushes.
    pub shutdown_errors: Vec<String>,
}
