//! [`Server`]: runs loaded components as a long-lived service. See
//! docs/server.md.
//!
//! - Each component has a pool of instances (the policy's
//!   `[components.<name>] instances`, default 1), each owned by a worker
//!   thread of its own (`pool.rs`): a request goes to an idle instance of
//!   its component, else waits in that component's bounded queue, so one
//!   component's slow call never holds up another's.
//! - Mail is delivered as it arrives: the workers sleep on the
//!   component's mailbox notifier, which the broker notifies when it
//!   queues a message or request, and the server when it queues a
//!   request.
//! - A call that traps or hits a limit answers its caller with the error
//!   and the instance is replaced after a backoff; a component whose
//!   instances fail to start too often in a row is `Failed`.
//! - [`Server::reload`] recomputes every component's rights under a new
//!   policy without compiling again; [`Server::shutdown`] drains the
//!   calls in flight up to a deadline.
//! - [`Server::metrics_text`]: Prometheus text (`metrics.rs`).

mod metrics;
mod pool;
mod types;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use self::metrics::{Gauges, Metrics};
use self::pool::{Component, Control, Job, Pool, spawn_workers};
pub use self::types::{
    ComponentReload, ComponentSource, ComponentState, ComponentStatus, ReloadReport, ServeError,
    ServerConfig, ShutdownReport,
};
use crate::broker::{BrokerError, RESERVED_TOPIC_PREFIX, Subscriber};
use crate::error::LoadError;
use crate::policy::Policy;
use crate::runtime::{HandlerError, LoadedComponent, Runtime, RuntimeBuilder};
use crate::sync::{lock, wait_timeout};

/// The source of what [`Server::publish`] publishes.
pub const HOST_SOURCE: &str = "host";

/// How long shutdown waits, past its deadline, for idle instances to run
/// their `shutdown` export (each is bounded by its own time limit too).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A running set of components, served until [`Server::shutdown`].
/// Cheap to clone; every clone is the same server.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use airssys_runtime::{ComponentSource, Policy, Runtime, Server, ServerConfig};
///
/// let policy = Policy::from_toml_file("policy.toml".as_ref())?;
/// let server = Server::start(
///     Runtime::builder().policy(policy),
///     vec![ComponentSource::read("counter.wasm")?],
///     ServerConfig::default(),
/// )?;
/// let reply = server.request("counter", "cli", b"increment".to_vec())?;
/// let report = server.shutdown(Duration::from_secs(10));
/// # let _ = (reply, report);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    control: Arc<Control>,
    /// In load order.
    components: Vec<Arc<Component>>,
    /// Set by shutdown: new calls are refused.
    shutting_down: AtomicBool,
    /// One reload at a time.
    reload: Mutex<()>,
    /// The report of the first shutdown (returned again by later ones).
    shutdown: Mutex<Option<ShutdownReport>>,
}

impl Drop for Inner {
    /// The last `Server` dropped without a shutdown: the workers end after
    /// their current call (dropping an instance calls its `shutdown`).
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        for component in &self.components {
            component.wake.notify();
        }
    }
}

impl Server {
    /// Builds the runtime from `runtime` (the server adds its own
    /// `on_audit`/`on_delivery` hooks for metrics, keeping any the caller
    /// set), loads every component, starts its instance pool (size: the
    /// policy's `[components.NAME] instances`, default 1) and continuous
    /// message delivery. Returns once the worker threads are started;
    /// [`Server::ready`] says when every component has an instance up.
    ///
    /// # Errors
    ///
    /// [`ServeError::Build`] when the runtime cannot be built,
    /// [`ServeError::Load`] when a component cannot be loaded (its origin
    /// is logged), [`ServeError::Policy`] when two sources are the same
    /// component or a component's `instances` exceeds its
    /// `limits.max_instances`.
    pub fn start(
        runtime: RuntimeBuilder,
        components: Vec<ComponentSource>,
        config: ServerConfig,
    ) -> Result<Server, ServeError> {
        let metrics = Arc::new(Metrics::default());
        let (audit, delivery) = (Arc::clone(&metrics), Arc::clone(&metrics));
        let runtime = runtime
            .on_audit(move |record| audit.audit(record))
            .on_delivery(move |record| delivery.delivery(record))
            .build()?;
        let mut loaded: Vec<LoadedComponent> = Vec::with_capacity(components.len());
        for source in &components {
            let component = runtime.load(&source.bytes).inspect_err(|error| {
                tracing::error!(
                    target: "airssys::server",
                    origin = %source.origin.display(),
                    %error,
                    "cannot load component"
                );
            })?;
            if let Some(index) = loaded.iter().position(|l| l.name() == component.name()) {
                return Err(ServeError::Policy {
                    message: format!(
                        "component `{}` is given twice ({} and {}); serve each component once",
                        component.name(),
                        components[index].origin.display(),
                        source.origin.display()
                    ),
                    source: None,
                });
            }
            pool_size(
                runtime.policy(),
                &component,
                component.limits().max_instances,
            )?;
            loaded.push(component);
        }
        let control = Arc::new(Control {
            config,
            metrics,
            stop: AtomicBool::new(false),
            broker: Arc::clone(runtime.broker()),
            shutdown_errors: Mutex::default(),
        });
        let mut served = Vec::with_capacity(loaded.len());
        for component in loaded {
            let size = pool_size(runtime.policy(), &component, u32::MAX)?;
            let served_component = Arc::new(Component {
                name: component.name().to_owned(),
                wake: Arc::clone(component.mailbox_notifier()),
                pool: Mutex::new(Pool::new(component, size)),
                settled: Condvar::new(),
            });
            served.push(served_component);
        }
        for component in &served {
            let mut pool = lock(&component.pool);
            spawn_workers(component, &control, &mut pool);
        }
        tracing::info!(
            target: "airssys::server",
            components = served.len(),
            "server started"
        );
        Ok(Server {
            inner: Arc::new(Inner {
                runtime,
                control,
                components: served,
                shutting_down: AtomicBool::new(false),
                reload: Mutex::new(()),
                shutdown: Mutex::new(None),
            }),
        })
    }

    /// Calls `handler.handle-request` of `component` with `source` as the
    /// requester and blocks until it answers. Goes to an idle instance, or
    /// waits in the component's queue when every instance is busy (or
    /// one is being restarted).
    ///
    /// # Errors
    ///
    /// [`ServeError::NotFound`], [`ServeError::Busy`] beyond
    /// [`ServerConfig::queue_bound`], [`ServeError::Unavailable`] when the
    /// component is failed or stopped, [`ServeError::ShuttingDown`], the
    /// handler's own error ([`ServeError::Denied`],
    /// [`ServeError::InvalidInput`], [`ServeError::Handler`]), or a
    /// [`ServeError::Trap`] / [`ServeError::Limit`] that ended the call
    /// (the instance is then replaced).
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
        let (reply, answer) = sync_channel(1);
        {
            let mut pool = lock(&served.pool);
            if pool.is_down() {
                return Err(unavailable(component, &pool));
            }
            let bound = self.inner.control.config.queue_bound;
            let idle = pool.running.saturating_sub(pool.busy);
            if pool.queue.len() >= bound.saturating_add(idle) {
                return Err(ServeError::Busy {
                    component: component.to_owned(),
                    queued: pool.queue.len(),
                    bound,
                });
            }
            pool.queue.push_back(Job {
                source: source.to_owned(),
                payload,
                reply,
            });
        }
        served.wake.notify();
        answer.recv().unwrap_or_else(|_| {
            Err(ServeError::Unavailable {
                component: component.to_owned(),
                reason: "the request was dropped before an instance answered it".to_owned(),
            })
        })
    }

    /// Publishes `payload` on `topic` as the host (source `host`); every
    /// subscriber's instances get it as it arrives, without pumping.
    ///
    /// # Errors
    ///
    /// [`ServeError::InvalidTopic`] when `topic` is not one concrete
    /// topic (`.`-separated non-empty segments, no `*` or `>`) or is
    /// reserved for the host (`airssys.`), [`ServeError::Publish`] when
    /// the broker refuses it, [`ServeError::ShuttingDown`].
    pub fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), ServeError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(ServeError::ShuttingDown);
        }
        check_topic(topic)?;
        match self
            .inner
            .runtime
            .broker()
            .publish(HOST_SOURCE, topic, payload)
        {
            Ok(_) => Ok(()),
            Err(error) => Err(ServeError::Publish {
                topic: topic.to_owned(),
                retry: matches!(error, BrokerError::QueueFull(_)),
                message: error.to_string(),
                source: error,
            }),
        }
    }

    /// True once every component has an instance up (a failed or stopped
    /// component makes it false), until shutdown begins.
    pub fn ready(&self) -> bool {
        !self.inner.shutting_down.load(Ordering::SeqCst)
            && self
                .inner
                .components
                .iter()
                .all(|c| lock(&c.pool).state == ComponentState::Ready)
    }

    /// One entry per component, in load order.
    pub fn status(&self) -> Vec<ComponentStatus> {
        let metrics = &self.inner.control.metrics;
        self.inner
            .components
            .iter()
            .map(|c| {
                let pool = lock(&c.pool);
                ComponentStatus {
                    name: c.name.clone(),
                    state: pool.state,
                    instances: pool.running,
                    busy: pool.busy,
                    queue_depth: pool.queue.len(),
                    restarts: pool.restarts,
                    calls: 0,
                    denials: 0,
                    last_error: pool.last_error.clone(),
                }
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|mut status| {
                status.calls = metrics.calls_of(&status.name);
                status.denials = metrics.denials_of(&status.name);
                status
            })
            .collect()
    }

    /// The metrics in Prometheus text exposition format (version 0.0.4):
    /// `airssys_calls_total{component,kind,outcome}` (kind `request` for
    /// [`Server::request`], `message` and `component-request` for mail),
    /// `airssys_denials_total{component,capability}`,
    /// `airssys_call_duration_seconds{component,kind}` (histogram),
    /// `airssys_queue_depth{component}`,
    /// `airssys_restarts_total{component}`,
    /// `airssys_instances{component}`. Label values are escaped.
    pub fn metrics_text(&self) -> String {
        let pools: Vec<(String, usize, u64, usize)> = self
            .inner
            .components
            .iter()
            .map(|c| {
                let pool = lock(&c.pool);
                (
                    c.name.clone(),
                    pool.queue.len(),
                    pool.restarts,
                    pool.running,
                )
            })
            .collect();
        let gauges: Vec<Gauges<'_>> = pools
            .iter()
            .map(|(component, queue_depth, restarts, instances)| Gauges {
                component,
                queue_depth: *queue_depth,
                restarts: *restarts,
                instances: *instances,
            })
            .collect();
        self.inner.control.metrics.text(&gauges)
    }

    /// Reloads the policy: checks it against every component first (a
    /// policy some component cannot run under for another reason than a
    /// required capability changes nothing: the error names the component
    /// and why), then swaps each component's rights; each instance
    /// finishes its current call and is replaced by one under the new
    /// rights. A component whose required capabilities are no longer
    /// granted is stopped (state `Stopped`, the reason naming them); one
    /// that was stopped or failed and runs under the new policy is
    /// started again. The pool sizes follow the new `instances`. The
    /// audit trail (target `airssys::audit`) and `tracing` (target
    /// `airssys::server`) record the reload and, per component, the
    /// capabilities gained and lost.
    ///
    /// The runtime's own [`Runtime::policy`] stays the one it was built
    /// with; limits that size the engine's instance pool at build
    /// (`max_core_instances`, `max_memories`, `max_tables`) cannot be
    /// raised past what it was built for.
    ///
    /// # Errors
    ///
    /// [`ServeError::Policy`] naming the component and the reason;
    /// [`ServeError::ShuttingDown`].
    pub fn reload(&self, policy: Policy) -> Result<ReloadReport, ServeError> {
        let _one_at_a_time = lock(&self.inner.reload);
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(ServeError::ShuttingDown);
        }
        // Check everything first.
        let mut plans = Vec::with_capacity(self.inner.components.len());
        for component in &self.inner.components {
            let loaded = lock(&component.pool).loaded.clone();
            let plan = match loaded.rebind(&policy) {
                Ok(rebound) => {
                    let size = pool_size(&policy, &loaded, rebound.limits().max_instances)?;
                    Plan::Run(Box::new(rebound), size)
                }
                Err(LoadError::MissingCapabilities { missing, .. }) => {
                    let names: Vec<String> =
                        missing.iter().map(|m| m.capability.to_string()).collect();
                    Plan::Stop(format!(
                        "missing {} (required by its manifest, no longer granted by the policy)",
                        names.join(", ")
                    ))
                }
                Err(error) => {
                    return Err(ServeError::Policy {
                        message: format!("component `{}`: {error}", component.name),
                        source: Some(Box::new(error)),
                    });
                }
            };
            plans.push((component, loaded, plan));
        }
        // Then swap.
        let mut report = ReloadReport {
            components: Vec::with_capacity(plans.len()),
        };
        let audit = self.inner.runtime.audit_log();
        for (component, old, plan) in plans {
            let before = grant_names(old.grants().allows());
            let entry = match plan {
                Plan::Run(rebound, size) => {
                    let after = grant_names(rebound.grants().allows());
                    let loaded = rebound
                        .commit(&policy)
                        .map_err(|error| ServeError::Policy {
                            message: format!("component `{}`: {error}", component.name),
                            source: Some(Box::new(error)),
                        })?;
                    let mut pool = lock(&component.pool);
                    pool.loaded = loaded;
                    pool.epoch += 1;
                    pool.size = size;
                    if pool.is_down() {
                        pool.state = ComponentState::Starting;
                        pool.start_failures = 0;
                        pool.last_error = None;
                    }
                    spawn_workers(component, &self.inner.control, &mut pool);
                    ComponentReload {
                        name: component.name.clone(),
                        gained: after.difference(&before).cloned().collect(),
                        lost: before.difference(&after).cloned().collect(),
                        stopped: None,
                    }
                }
                Plan::Stop(reason) => {
                    let mut pool = lock(&component.pool);
                    pool.state = ComponentState::Stopped;
                    pool.epoch += 1;
                    pool.last_error = Some(format!("stopped by a policy reload: {reason}"));
                    let name = component.name.clone();
                    let why = pool.last_error.clone().unwrap_or_default();
                    pool.fail_queue(|| ServeError::Unavailable {
                        component: name.clone(),
                        reason: why.clone(),
                    });
                    drop(pool);
                    // No more mail for it: no subscriptions, no grant.
                    self.inner.runtime.broker().register(
                        &component.name,
                        Subscriber::new(Vec::new(), Default::default())
                            .notifier(Arc::clone(&component.wake)),
                    );
                    ComponentReload {
                        name: component.name.clone(),
                        gained: Vec::new(),
                        lost: before.iter().cloned().collect(),
                        stopped: Some(reason),
                    }
                }
            };
            component.wake.notify();
            tracing::info!(
                target: "airssys::server",
                component = entry.name.as_str(),
                gained = %entry.gained.join(", "),
                lost = %entry.lost.join(", "),
                stopped = entry.stopped.as_deref().unwrap_or(""),
                "policy reloaded"
            );
            audit.policy_reloaded(
                &entry.name,
                &entry.gained,
                &entry.lost,
                entry.stopped.as_deref(),
            );
            report.components.push(entry);
        }
        Ok(report)
    }

    /// Stops intake (new calls get [`ServeError::ShuttingDown`]), waits
    /// for the calls in flight and queued up to `deadline` (those still
    /// queued then are answered `ShuttingDown`; those still running are
    /// abandoned: they end within their time limit and their callers get
    /// their answer), then has every idle instance run its `shutdown`
    /// export, and flushes storage and the audit log. Idempotent: a later
    /// call returns the first report.
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let mut first = lock(&self.inner.shutdown);
        if let Some(report) = &*first {
            return report.clone();
        }
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        let until = Instant::now() + deadline;
        let mut in_flight = 0;
        let mut abandoned = 0;
        for component in &self.inner.components {
            let mut pool = lock(&component.pool);
            in_flight += pool.busy + pool.queue.len();
            loop {
                if pool.busy == 0 && pool.queue.is_empty() {
                    break;
                }
                let Some(left) = until.checked_duration_since(Instant::now()) else {
                    break;
                };
                if left.is_zero() {
                    break;
                }
                pool = wait_timeout(
                    &component.settled,
                    pool,
                    left.min(Duration::from_millis(50)),
                );
            }
            abandoned += pool.busy + pool.queue.len();
            pool.fail_queue(|| ServeError::ShuttingDown);
        }
        let control = &self.inner.control;
        control.stop.store(true, Ordering::SeqCst);
        for component in &self.inner.components {
            component.wake.notify();
        }
        // Idle workers now run their instance's `shutdown`; wait for them
        // (not for those still in a call).
        let grace = until + SHUTDOWN_GRACE;
        for component in &self.inner.components {
            let mut pool = lock(&component.pool);
            while pool.slots.iter().filter(|alive| **alive).count() > pool.busy
                && Instant::now() < grace
            {
                pool = wait_timeout(&component.settled, pool, Duration::from_millis(50));
            }
        }
        let mut shutdown_errors = std::mem::take(&mut *lock(&control.shutdown_errors));
        shutdown_errors.extend(self.inner.runtime.flush());
        let report = ShutdownReport {
            completed: in_flight.saturating_sub(abandoned),
            abandoned,
            shutdown_errors,
        };
        tracing::info!(
            target: "airssys::server",
            completed = report.completed,
            abandoned = report.abandoned,
            errors = report.shutdown_errors.len(),
            "server shut down"
        );
        *first = Some(report.clone());
        report
    }

    /// The runtime the server built.
    pub fn runtime(&self) -> &Runtime {
        &self.inner.runtime
    }

    fn find(&self, component: &str) -> Result<&Arc<Component>, ServeError> {
        self.inner
            .components
            .iter()
            .find(|c| c.name == component)
            .ok_or_else(|| ServeError::NotFound {
                component: component.to_owned(),
            })
    }
}

/// What a reload does to one component.
enum Plan {
    Run(Box<crate::runtime::Rebound>, usize),
    Stop(String),
}

/// The pool size `policy` gives `component`, checked against its
/// `limits.max_instances`.
fn pool_size(
    policy: &Policy,
    component: &LoadedComponent,
    max_instances: u32,
) -> Result<usize, ServeError> {
    let name = component.name();
    let size = policy.instances_for(name);
    if size > max_instances {
        return Err(ServeError::Policy {
            message: format!(
                "component `{name}`: `instances = {size}` exceeds its `limits.max_instances = \
                 {max_instances}`; lower `instances` or raise `limits.max_instances` in \
                 [components.{name}]"
            ),
            source: None,
        });
    }
    Ok(usize::try_from(size).unwrap_or(1))
}

/// The capabilities of a grant, as text.
fn grant_names(allows: &[airssys_contract::capability::Capability]) -> BTreeSet<String> {
    allows.iter().map(ToString::to_string).collect()
}

/// Why `component` takes no calls.
fn unavailable(component: &str, pool: &Pool) -> ServeError {
    ServeError::Unavailable {
        component: component.to_owned(),
        reason: match &pool.last_error {
            Some(error) => format!("{}: {error}", pool.state),
            None => pool.state.to_string(),
        },
    }
}

/// Refuses wildcard and reserved topics, as a component's `publish` does.
fn check_topic(topic: &str) -> Result<(), ServeError> {
    let invalid = |message: String| ServeError::InvalidTopic {
        topic: topic.to_owned(),
        message,
    };
    if topic
        .split('.')
        .any(|s| s.is_empty() || s == "*" || s == ">")
    {
        return Err(invalid(
            "not a concrete topic: use `.`-separated, non-empty segments without `*` or `>`"
                .to_owned(),
        ));
    }
    if topic.starts_with(RESERVED_TOPIC_PREFIX) {
        return Err(invalid(format!(
            "reserved for the host's own topics (`{RESERVED_TOPIC_PREFIX}*`)"
        )));
    }
    Ok(())
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

/// docs/server.md's Rust blocks, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/server.md")]
struct ServerGuide;

/// A [`Server`] is shared between threads (an HTTP ingress, a signal
/// handler).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Server>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_topics_and_patterns_are_refused() {
        for bad in ["", "a..b", "orders.*", "orders.>", "airssys.dead-letter.x"] {
            let err = check_topic(bad).expect_err(bad);
            assert_eq!(err.http_status(), 400, "{bad}");
        }
        assert!(check_topic("orders.created").is_ok());
    }
}
