//! The audit trail: every capability decision of a guarded host call.
//!
//! Each decision is a `tracing` event with target `airssys::audit` and the
//! fields `component`, `function`, `capability` (`domain:action`),
//! `resource`, `verdict` and `rule`; allowed calls are logged at `TRACE`,
//! refusals at `WARN`. An optional sink also writes each decision as one
//! JSON object per line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use airssys_contract::guard::{GuardEvent, Outcome};

use crate::error::BuildError;

/// Where audit records go besides `tracing`.
#[derive(Default)]
pub struct AuditLog {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

/// One decision, as written to the JSON-lines sink.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord<'a> {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u128,
    /// The calling component.
    pub component: &'a str,
    /// The host function, e.g. `airssys:core/storage#[method]bucket.get`.
    pub function: &'a str,
    /// `domain:action`.
    pub capability: &'a str,
    /// The request's resource (empty when it has none).
    pub resource: &'a str,
    /// `allow` or `deny`.
    pub verdict: &'a str,
    /// The deciding rule, in words.
    pub rule: &'a str,
}

impl AuditLog {
    /// Records only to `tracing`.
    pub fn tracing_only() -> AuditLog {
        AuditLog::default()
    }

    /// Also writes JSON lines to `writer`.
    pub fn to_writer(writer: impl Write + Send + 'static) -> AuditLog {
        AuditLog {
            sink: Some(Mutex::new(Box::new(writer))),
        }
    }

    /// Also appends JSON lines to the file at `path` (created if missing).
    ///
    /// # Errors
    ///
    /// [`BuildError::Audit`] when the file cannot be opened.
    pub fn to_file(path: &Path) -> Result<AuditLog, BuildError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| BuildError::Audit {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AuditLog::to_writer(file))
    }

    /// Whether a JSON-lines sink is attached.
    pub fn has_sink(&self) -> bool {
        self.sink.is_some()
    }

    /// Records one guard decision of `component`.
    pub(crate) fn record(&self, component: &str, event: &GuardEvent<'_>, rule: &str) {
        let allowed = matches!(event.outcome, Outcome::Allowed(_));
        let capability = format!("{}:{}", event.domain, event.action);
        let capability = capability.as_str();
        let resource = event.resource;
        if allowed {
            tracing::trace!(
                target: "airssys::audit",
                component, function = event.function, capability, resource,
                verdict = "allow", rule,
            );
        } else {
            tracing::warn!(
                target: "airssys::audit",
                component, function = event.function, capability, resource,
                verdict = "deny", rule,
            );
        }
        if let Some(sink) = &self.sink {
            let record = AuditRecord {
                time_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis()),
                component,
                function: event.function,
                capability,
                resource,
                verdict: if allowed { "allow" } else { "deny" },
                rule,
            };
            if let Ok(mut line) = serde_json::to_vec(&record) {
                line.push(b'\n');
                let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                // An audit sink that fails must not fail the call; say so once
                // per failure in the host's log.
                if let Err(error) = sink.write_all(&line) {
                    tracing::error!(target: "airssys::audit", %error, "cannot write the audit log");
                }
            }
        }
    }
}
