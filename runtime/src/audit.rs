//! The audit trail: every capability decision of a guarded host call.
//!
//! Each decision is a `tracing` event with target `airssys::audit` and the
//! fields `component`, `function`, `capability` (`domain:action`),
//! `resource`, `verdict` and `rule`; allowed calls are logged at `TRACE`,
//! refusals at `WARN`. An optional sink also writes each decision as one
//! JSON object per line.
//!
//! What a component controls is bounded:
//!
//! - a resource longer than [`MAX_RESOURCE`] bytes is cut there, with
//!   `…(N bytes)` appended;
//! - records of refusals are rate limited per component
//!   (`limits.audit_denials_per_second`): beyond it the refusal still
//!   happens but is not recorded, and the drops are said once per window
//!   and at the end of each call into the component — a `warn` event
//!   with fields `component`, `dropped` and `limit`, and in the sink a
//!   line `{"time_ms":..,"component":..,"dropped":N,"limit":"limits.audit_denials_per_second"}`.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use airssys_contract::guard::{GuardEvent, Outcome};

use crate::error::BuildError;
use crate::host::rate::RateWindow;
use crate::policy::DEFAULT_AUDIT_DENIALS_PER_SECOND;

/// Longest resource written to an audit record, in bytes.
pub(crate) const MAX_RESOURCE: usize = 256;

/// Where audit records go besides `tracing`.
#[derive(Default)]
pub struct AuditLog {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
    /// Per component: its quota of refusal records and their window.
    denials: Mutex<HashMap<String, Arc<DenialQuota>>>,
}

/// The refusal records of one component.
#[derive(Debug)]
struct DenialQuota {
    per_second: u64,
    window: RateWindow<1>,
}

/// The policy key of the quota.
const DENIALS_KEY: &str = "limits.audit_denials_per_second";

/// A drop summary, as written to the JSON-lines sink.
#[derive(serde::Serialize)]
struct DroppedRecord<'a> {
    time_ms: u128,
    component: &'a str,
    dropped: u64,
    limit: &'a str,
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
            denials: Mutex::default(),
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

    /// Sets the quota of refusal records of `component`.
    pub(crate) fn limit_denials(&self, component: &str, per_second: u64) {
        let mut denials = self.denials.lock().unwrap_or_else(|p| p.into_inner());
        if denials
            .get(component)
            .is_none_or(|q| q.per_second != per_second)
        {
            let quota = Arc::new(DenialQuota {
                per_second,
                window: RateWindow::default(),
            });
            denials.insert(component.to_owned(), quota);
        }
    }

    /// Forgets the quota of `component` (it was unloaded).
    pub(crate) fn forget(&self, component: &str) {
        self.denials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(component);
    }

    fn denial_quota(&self, component: &str) -> Arc<DenialQuota> {
        let mut denials = self.denials.lock().unwrap_or_else(|p| p.into_inner());
        let quota = denials.entry(component.to_owned()).or_insert_with(|| {
            Arc::new(DenialQuota {
                per_second: DEFAULT_AUDIT_DENIALS_PER_SECOND,
                window: RateWindow::default(),
            })
        });
        Arc::clone(quota)
    }

    /// Whether a refusal of `component` may be recorded now.
    fn admit_denial(&self, component: &str) -> bool {
        let quota = self.denial_quota(component);
        let charge = quota.window.charge([quota.per_second], [1]);
        if let Some([dropped]) = charge.ended {
            self.say_dropped(component, dropped);
        }
        charge.admitted
    }

    /// Says how many refusal records of `component` were dropped since the
    /// last time (at the end of a call into the component).
    pub(crate) fn report_dropped(&self, component: &str) {
        let quota = {
            let denials = self.denials.lock().unwrap_or_else(|p| p.into_inner());
            denials.get(component).cloned()
        };
        if let Some([dropped]) = quota.and_then(|q| q.window.take_dropped()) {
            self.say_dropped(component, dropped);
        }
    }

    fn say_dropped(&self, component: &str, dropped: u64) {
        tracing::warn!(
            target: "airssys::audit",
            component,
            dropped,
            limit = DENIALS_KEY,
            "{dropped} audit records of refusals of component `{component}` dropped by \
             {DENIALS_KEY}"
        );
        let record = DroppedRecord {
            time_ms: now_ms(),
            component,
            dropped,
            limit: DENIALS_KEY,
        };
        self.write(&record);
    }

    fn write(&self, record: &impl serde::Serialize) {
        let Some(sink) = &self.sink else {
            return;
        };
        if let Ok(mut line) = serde_json::to_vec(record) {
            line.push(b'\n');
            let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
            // An audit sink that fails must not fail the call; say so once
            // per failure in the host's log.
            if let Err(error) = sink.write_all(&line) {
                tracing::error!(target: "airssys::audit", %error, "cannot write the audit log");
            }
        }
    }

    /// Whether a JSON-lines sink is attached.
    pub fn has_sink(&self) -> bool {
        self.sink.is_some()
    }

    /// Records one guard decision of `component`.
    pub(crate) fn record(&self, component: &str, event: &GuardEvent<'_>, rule: &str) {
        let allowed = matches!(event.outcome, Outcome::Allowed(_));
        if !allowed && !self.admit_denial(component) {
            return;
        }
        let capability = format!("{}:{}", event.domain, event.action);
        let capability = capability.as_str();
        let resource = truncated(event.resource);
        let resource = resource.as_ref();
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
        if self.sink.is_some() {
            self.write(&AuditRecord {
                time_ms: now_ms(),
                component,
                function: event.function,
                capability,
                resource,
                verdict: if allowed { "allow" } else { "deny" },
                rule,
            });
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// `resource`, cut at [`MAX_RESOURCE`] bytes (on a character boundary)
/// with the full length appended.
fn truncated(resource: &str) -> std::borrow::Cow<'_, str> {
    if resource.len() <= MAX_RESOURCE {
        return resource.into();
    }
    let mut end = MAX_RESOURCE;
    while !resource.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &resource[..end], resource.len()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_resources_are_cut_on_a_character_boundary() {
        assert_eq!(truncated("short"), "short");
        let long = format!("a{}", "é".repeat(300));
        let cut = truncated(&long);
        assert!(cut.ends_with(&format!("…({} bytes)", long.len())), "{cut}");
        assert!(cut.len() < MAX_RESOURCE + 20, "{}", cut.len());
    }
}
