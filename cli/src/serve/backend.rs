//! [`Backend`] for the runtime's [`Server`]: errors become their HTTP
//! status ([`ServeError::http_status`]), reloads read the policy file.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airssys_contract::authority::{PolicyRules, diff_policies};

use airssys_contract::text::printable;
use airssys_runtime::broker::{
    BrokerError, NatsConnectionState, NatsConnectionStatus, NatsConnectionWatch, Notifier,
    ReplyOutcome, ReplyPoll, ReplySlot,
};
use airssys_runtime::{ComponentState, Policy, ServeError, Server};

use super::{Backend, Failure, Reloaded};

/// The served components and the policy file they were started with.
pub(crate) struct ServerBackend {
    server: Server,
    policy: PathBuf,
    /// The rules of the policy in force, for the `airssys policy diff`
    /// report each reload prints.
    in_force: Mutex<PolicyRules>,
    /// The NATS connection's state, when the host is on NATS.
    nats: Option<Arc<NatsConnectionWatch>>,
}

impl ServerBackend {
    /// `server`, reloading from `policy`.
    pub(crate) fn new(server: Server, policy: PathBuf) -> ServerBackend {
        let in_force = Mutex::new(server.runtime().policy().authority());
        ServerBackend {
            server,
            policy,
            in_force,
            nats: None,
        }
    }

    /// Reports the state of the NATS connection `watch` watches in
    /// health and metrics.
    pub(crate) fn with_nats(mut self, watch: Option<Arc<NatsConnectionWatch>>) -> ServerBackend {
        self.nats = watch;
        self
    }
}

/// The longest a request forwarded to another host waits for its answer.
const FORWARDED_REQUEST_TIME: Duration = Duration::from_secs(30);

impl ServerBackend {
    /// Sends a request for `component`, which this host does not serve,
    /// over the broker (NATS) to a host that does, and waits for the
    /// answer at most [`FORWARDED_REQUEST_TIME`].
    fn request_elsewhere(
        &self,
        component: &str,
        source: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        let woken = Arc::new(Notifier::new());
        let slot = Arc::new(ReplySlot::new(FORWARDED_REQUEST_TIME, Arc::clone(&woken)));
        let refused = |status: u16, message: String| Failure { status, message };
        let seen = woken.generation();
        match self
            .server
            .runtime()
            .broker()
            .request(source, component, payload, Arc::clone(&slot))
        {
            Ok(()) => {}
            Err(BrokerError::NotFound(text)) => {
                return Err(refused(
                    404,
                    format!(
                        "no component `{}` runs on this host or on any other host of its NATS \
                         server ({})",
                        printable(component),
                        printable(&text)
                    ),
                ));
            }
            Err(BrokerError::QueueFull(text)) => return Err(refused(429, text)),
            // The NATS server's permissions refused this host the request.
            Err(BrokerError::Denied(text)) => {
                return Err(refused(403, printable(&text).into_owned()));
            }
            Err(other) => return Err(refused(400, other.to_string())),
        }
        let mut seen = seen;
        loop {
            match slot.poll() {
                ReplyPoll::Ready(ReplyOutcome::Reply(bytes)) => return Ok(bytes),
                ReplyPoll::Ready(ReplyOutcome::Remote(text) | ReplyOutcome::OverLimit(text)) => {
                    return Err(refused(
                        500,
                        format!(
                            "component `{}` on another host answered with an error: {}",
                            printable(component),
                            printable(&text)
                        ),
                    ));
                }
                ReplyPoll::TimedOut | ReplyPoll::Gone => {
                    return Err(refused(
                        504,
                        format!(
                            "component `{}` on another host did not answer within {} s",
                            printable(component),
                            FORWARDED_REQUEST_TIME.as_secs()
                        ),
                    ));
                }
                ReplyPoll::Pending => {
                    woken.wait(seen, slot.deadline());
                    seen = woken.generation();
                }
            }
        }
    }
}

/// The NATS connection's metrics, in Prometheus' text format.
fn nats_metrics(status: &NatsConnectionStatus) -> String {
    let connected = u8::from(status.state == NatsConnectionState::Connected);
    format!(
        "# HELP airssys_nats_connected Whether this host is connected to its NATS server.\n\
         # TYPE airssys_nats_connected gauge\n\
         airssys_nats_connected {connected}\n\
         # HELP airssys_nats_reconnects_total Connections to the NATS server made after the first.\n\
         # TYPE airssys_nats_reconnects_total counter\n\
         airssys_nats_reconnects_total {}\n\
         # HELP airssys_nats_disconnects_total Times the connection to the NATS server was lost.\n\
         # TYPE airssys_nats_disconnects_total counter\n\
         airssys_nats_disconnects_total {}\n\
         # HELP airssys_nats_server_errors_total Errors the NATS server reported, permission violations among them.\n\
         # TYPE airssys_nats_server_errors_total counter\n\
         airssys_nats_server_errors_total {}\n",
        status.reconnects, status.disconnects, status.server_errors
    )
}

fn failure(error: &ServeError) -> Failure {
    Failure {
        status: error.http_status(),
        message: error.to_string(),
    }
}

impl Backend for ServerBackend {
    fn request(&self, component: &str, source: &str, payload: Vec<u8>) -> Result<Vec<u8>, Failure> {
        if self.nats.is_none() {
            return self
                .server
                .request(component, source, payload)
                .map_err(|e| failure(&e));
        }
        // On NATS, a component this host does not serve may run on
        // another host: the request goes there.
        match self.server.request(component, source, payload.clone()) {
            Err(ServeError::NotFound { .. }) => self.request_elsewhere(component, source, payload),
            answered => answered.map_err(|e| failure(&e)),
        }
    }

    fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), Failure> {
        self.server.publish(topic, payload).map_err(|e| failure(&e))
    }

    fn ready(&self) -> bool {
        self.server.ready()
    }

    fn status_json(&self) -> String {
        let status = serde_json::to_string_pretty(&self.server.status())
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        format!("{status}\n")
    }

    fn failures(&self) -> Vec<String> {
        self.server
            .status()
            .into_iter()
            .filter(|c| c.state == ComponentState::Failed)
            .map(|c| {
                format!(
                    "`{}` failed to start and is not retried: {}",
                    printable(&c.name),
                    printable(c.last_error.as_deref().unwrap_or("no error recorded"))
                )
            })
            .collect()
    }

    fn nats(&self) -> Option<NatsConnectionStatus> {
        self.nats.as_ref().map(|watch| watch.status())
    }

    fn metrics_text(&self) -> String {
        let mut text = self.server.metrics_text();
        if let Some(status) = self.nats() {
            text.push_str(&nats_metrics(&status));
        }
        text.push_str(&crate::output::metrics_text());
        text.push_str(&crate::output::audit_file_metrics_text());
        text
    }

    fn reload(&self) -> Result<Reloaded, Failure> {
        // A bad file, or a policy the server refuses, changes nothing: 400.
        let policy = Policy::from_toml_file(&self.policy).map_err(|e| Failure {
            status: 400,
            message: format!("policy refused, nothing changed: {e}; the old policy keeps serving"),
        })?;
        let rules = policy.authority();
        match self.server.reload(policy) {
            Ok(report) => {
                // What the operator changed, as `airssys policy diff OLD NEW`
                // prints it, beside what each component gained and lost.
                let mut in_force = crate::sync::lock(&self.in_force);
                let diff = diff_policies(&in_force, &rules);
                *in_force = rules;
                /// The report's fields, then the policy diff.
                #[derive(serde::Serialize)]
                struct WithDiff<'a> {
                    #[serde(flatten)]
                    report: &'a airssys_runtime::ReloadReport,
                    policy_diff: &'a airssys_contract::authority::PolicyDiff,
                }
                let json = WithDiff {
                    report: &report,
                    policy_diff: &diff,
                };
                Ok(Reloaded {
                    text: format!("{report}policy diff:\n{diff}"),
                    json: format!(
                        "{}\n",
                        serde_json::to_string_pretty(&json).unwrap_or_default()
                    ),
                })
            }
            Err(e @ ServeError::Policy { .. }) => Err(Failure {
                status: 400,
                message: format!("{e}; the old policy keeps serving"),
            }),
            Err(e) => Err(failure(&e)),
        }
    }

    fn shutdown(&self, deadline: Duration) -> String {
        let report = self.server.shutdown(deadline);
        let mut text = format!(
            "{} call(s) completed, {} abandoned at the deadline",
            report.completed, report.abandoned
        );
        for error in &report.shutdown_errors {
            text.push_str(&format!("\n  error: {error}"));
        }
        text
    }
}
