//! [`Backend`] for the runtime's [`Server`]: errors become their HTTP
//! status ([`ServeError::http_status`]), reloads read the policy file.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use airssys_contract::authority::{PolicyRules, diff_policies};

use airssys_contract::text::printable;
use airssys_runtime::{ComponentState, Policy, ServeError, Server};

use super::{Backend, Failure, Reloaded};

/// The served components and the policy file they were started with.
pub(crate) struct ServerBackend {
    server: Server,
    policy: PathBuf,
    /// The rules of the policy in force, for the `airssys policy diff`
    /// report each reload prints.
    in_force: Mutex<PolicyRules>,
}

impl ServerBackend {
    /// `server`, reloading from `policy`.
    pub(crate) fn new(server: Server, policy: PathBuf) -> ServerBackend {
        let in_force = Mutex::new(server.runtime().policy().authority());
        ServerBackend {
            server,
            policy,
            in_force,
        }
    }
}

fn failure(error: &ServeError) -> Failure {
    Failure {
        status: error.http_status(),
        message: error.to_string(),
    }
}

impl Backend for ServerBackend {
    fn request(&self, component: &str, source: &str, payload: Vec<u8>) -> Result<Vec<u8>, Failure> {
        self.server
            .request(component, source, payload)
            .map_err(|e| failure(&e))
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

    fn metrics_text(&self) -> String {
        self.server.metrics_text()
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
                let mut in_force = self.in_force.lock().unwrap_or_else(|p| p.into_inner());
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
