//! The HTTP ingress of `airssys serve`: routes, the bearer token, the
//! mapping of host errors to HTTP statuses, served with hyper 1.
//!
//! The ingress knows the host only through [`Backend`] (the runtime's
//! `Server` implements it in [`backend`]), so routing and auth are tested
//! against a fake.

pub(crate) mod backend;
pub(crate) mod http;

use std::time::Duration;

/// A refused or failed call, as the ingress answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The HTTP status (`ServeError::http_status`).
    pub(crate) status: u16,
    /// The reason, in words (names the component, capability or limit).
    pub(crate) message: String,
}

/// A policy reload that took effect.
#[derive(Debug, Clone)]
pub(crate) struct Reloaded {
    /// The report, for people (printed on SIGHUP).
    pub(crate) text: String,
    /// The report as JSON (the answer to `POST /v1/admin/reload`).
    pub(crate) json: String,
}

/// What the ingress needs of the host. Every method may block (the
/// ingress calls the blocking ones on tokio's blocking threads).
pub(crate) trait Backend: Send + Sync + 'static {
    /// Sends `payload` to the `handler.handle-request` of `component`,
    /// from `source`; blocks until the reply.
    fn request(&self, component: &str, source: &str, payload: Vec<u8>) -> Result<Vec<u8>, Failure>;
    /// Publishes `payload` on `topic` from the host.
    fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), Failure>;
    /// Whether every component is loaded and serving.
    fn ready(&self) -> bool;
    /// Every component's state, as JSON.
    fn status_json(&self) -> String;
    /// The NATS connection's state, when the host is on NATS.
    fn nats(&self) -> Option<airssys_runtime::broker::NatsConnectionStatus> {
        None
    }
    /// One line per component that failed to start and is no longer
    /// retried: its name and last error.
    fn failures(&self) -> Vec<String>;
    /// The metrics, in Prometheus' text format.
    fn metrics_text(&self) -> String;
    /// Reads the policy file again and applies it; a bad file changes
    /// nothing and is refused with the reason.
    fn reload(&self) -> Result<Reloaded, Failure>;
    /// Stops intake, finishes or times out what is in flight within
    /// `deadline`, shuts every component down; returns the report.
    fn shutdown(&self, deadline: Duration) -> String;
}

/// Prints what a reload (`origin`: `SIGHUP`, the admin call) changed, or
/// why it changed nothing.
pub(crate) fn print_reload(origin: &str, result: &Result<Reloaded, Failure>) {
    use crate::output::{Kind, Stream, line};
    use airssys_contract::text::printable;
    match result {
        Ok(reloaded) => {
            line(
                Stream::Stdout,
                Kind::Host,
                format!("{origin}: policy reloaded"),
            );
            for text in reloaded.text.lines() {
                line(Stream::Stdout, Kind::Host, format!("  {}", printable(text)));
            }
        }
        Err(failure) => line(
            Stream::Stderr,
            Kind::Host,
            format!(
                "{origin}: policy reload refused: {}",
                printable(&failure.message)
            ),
        ),
    }
}
