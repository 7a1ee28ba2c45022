//! `airssys:core/logging`: records go into `tracing` (target
//! `airssys::component`) with the component's name and its own target.
//!
//! `log` checks the request `log:write:<level>`, so a grant
//! `log:write:warn` admits `warn` and `error` records only.

use airssys_contract::capability::{Action, Domain};
use airssys_contract::guard::HostFnGuard;

use super::bindings::airssys::core::logging::{Error, Host, Level};
use super::state::HostState;

/// Longest message accepted, in bytes.
const MAX_MESSAGE: usize = 64 * 1024;

static LOG: HostFnGuard = HostFnGuard::new(
    "airssys:core/logging#log",
    "log:write",
    Domain::Log,
    Action::Write,
);

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn host_enabled(level: Level) -> bool {
    match level {
        Level::Trace => tracing::enabled!(target: "airssys::component", tracing::Level::TRACE),
        Level::Debug => tracing::enabled!(target: "airssys::component", tracing::Level::DEBUG),
        Level::Info => tracing::enabled!(target: "airssys::component", tracing::Level::INFO),
        Level::Warn => tracing::enabled!(target: "airssys::component", tracing::Level::WARN),
        Level::Error => tracing::enabled!(target: "airssys::component", tracing::Level::ERROR),
    }
}

impl Host for HostState {
    fn enabled(&mut self, level: Level) -> wasmtime::Result<bool> {
        Ok(host_enabled(level) && self.is_granted(Domain::Log, Action::Write, level_name(level)))
    }

    fn log(
        &mut self,
        level: Level,
        target: String,
        message: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        if let Err(denial) = LOG.authorize(self, &[level_name(level)]) {
            return Ok(Err(Error::Denied(denial.into_message())));
        }
        if message.len() > MAX_MESSAGE || target.len() > 256 {
            return Ok(Err(Error::InvalidInput(format!(
                "a log record may carry at most {MAX_MESSAGE} bytes of message and 256 of target"
            ))));
        }
        let component = self.name();
        let target = target.as_str();
        match level {
            Level::Trace => {
                tracing::trace!(target: "airssys::component", component, target, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "airssys::component", component, target, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "airssys::component", component, target, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "airssys::component", component, target, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "airssys::component", component, target, "{message}")
            }
        }
        Ok(Ok(()))
    }
}
