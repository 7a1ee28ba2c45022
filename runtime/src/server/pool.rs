//! One served component: its instance pool's bookkeeping, its request
//! queue, and the worker threads that own its instances.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::metrics::{self, KIND_REQUEST, Metrics};
use super::types::{ComponentState, ServeError, ServerConfig};
use crate::broker::{Broker, Notifier};
use crate::error::RuntimeError;
use crate::runtime::{HandlerError, Instance, LoadedComponent};
use crate::sync::lock;

/// Entries one delivery pass takes from the mailbox before the worker
/// looks at its request queue again.
const DELIVERY_BATCH: usize = 16;

/// How long an idle worker sleeps before it looks again even without a
/// notification (a safety net; every change notifies).
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// A request waiting for an instance, and where its answer goes.
pub(super) struct Job {
    pub(super) source: String,
    pub(super) payload: Vec<u8>,
    pub(super) reply: SyncSender<Result<Vec<u8>, ServeError>>,
}

/// What the server's threads share beyond one component.
pub(super) struct Control {
    pub(super) config: ServerConfig,
    pub(super) metrics: Arc<Metrics>,
    /// Set by shutdown (or when the last `Server` is dropped): workers
    /// end once their current call returned.
    pub(super) stop: AtomicBool,
    /// The runtime's broker (to see whether a mailbox holds anything).
    pub(super) broker: Arc<dyn Broker>,
    /// Errors of the instances' `shutdown` exports at shutdown.
    pub(super) shutdown_errors: Mutex<Vec<String>>,
}

/// One served component.
pub(super) struct Component {
    pub(super) name: String,
    /// The component's mailbox notifier: the broker notifies it when
    /// mail arrives, the server when a request is queued or the pool
    /// changes. Every worker of the component waits on it.
    pub(super) wake: Arc<Notifier>,
    pub(super) pool: Mutex<Pool>,
    /// Signalled when a worker ends or a call finishes (for shutdown).
    pub(super) settled: Condvar,
}

/// The mutable state of one component's pool.
pub(super) struct Pool {
    /// The component under the rights in force.
    pub(super) loaded: LoadedComponent,
    /// Bumped when `loaded` is replaced (a reload): each worker replaces
    /// its instance after its current call.
    pub(super) epoch: u64,
    /// Instances wanted (the policy's `instances`).
    pub(super) size: usize,
    /// Worker threads alive, by slot.
    pub(super) slots: Vec<bool>,
    pub(super) queue: VecDeque<Job>,
    pub(super) state: ComponentState,
    /// Instances up (idle or in a call).
    pub(super) running: usize,
    /// Instances in a call.
    pub(super) busy: usize,
    pub(super) restarts: u64,
    /// Failed starts in a row (any worker); at
    /// `init_failures_before_failed` the component is `Failed`.
    pub(super) start_failures: u32,
    pub(super) last_error: Option<String>,
    /// Calls answered since shutdown began (for its report).
    pub(super) completed: usize,
}

impl Pool {
    pub(super) fn new(loaded: LoadedComponent, size: usize) -> Pool {
        Pool {
            loaded,
            epoch: 0,
            size,
            slots: Vec::new(),
            queue: VecDeque::new(),
            state: ComponentState::Starting,
            running: 0,
            busy: 0,
            restarts: 0,
            start_failures: 0,
            last_error: None,
            completed: 0,
        }
    }

    /// Whether the component takes calls at all.
    pub(super) fn is_down(&self) -> bool {
        matches!(self.state, ComponentState::Failed | ComponentState::Stopped)
    }

    /// Answers every queued request with `error()`.
    pub(super) fn fail_queue(&mut self, error: impl Fn() -> ServeError) {
        for job in self.queue.drain(..) {
            let _ = job.reply.send(Err(error()));
        }
    }

    /// The state after a change of `running`, unless failed or stopped.
    fn settle_state(&mut self) {
        if self.is_down() {
            return;
        }
        self.state = if self.running > 0 {
            ComponentState::Ready
        } else if self.restarts > 0 || self.start_failures > 0 {
            ComponentState::Restarting
        } else {
            ComponentState::Starting
        };
    }
}

/// Why a worker stopped serving its instance.
enum Ended {
    /// The server stops, or the component was stopped or shrunk.
    Stop,
    /// A reload replaced the component's rights.
    Reload,
    /// The instance trapped or hit a limit.
    Failed(String),
}

/// Starts the worker threads `pool.size` asks for that are not running.
pub(super) fn spawn_workers(component: &Arc<Component>, control: &Arc<Control>, pool: &mut Pool) {
    if pool.slots.len() < pool.size {
        pool.slots.resize(pool.size, false);
    }
    for slot in 0..pool.size {
        if pool.slots[slot] {
            continue;
        }
        let (component2, control2) = (Arc::clone(component), Arc::clone(control));
        let spawned = std::thread::Builder::new()
            .name(format!("airssys-{}-{slot}", component.name))
            .spawn(move || worker(&component2, &control2, slot));
        match spawned {
            Ok(_) => pool.slots[slot] = true,
            Err(error) => {
                tracing::error!(
                    target: "airssys::server",
                    component = component.name.as_str(),
                    %error,
                    "cannot start a worker thread"
                );
                pool.last_error = Some(format!("cannot start a worker thread: {error}"));
            }
        }
    }
}

/// One worker: owns one instance at a time, serves requests and mail,
/// replaces the instance when it fails or the rights change.
fn worker(component: &Arc<Component>, control: &Arc<Control>, slot: usize) {
    let _slot = SlotGuard { component, slot };
    let name = component.name.as_str();
    // Failures in a row of this slot (a start or a call), for the backoff.
    let mut failures: u32 = 0;
    loop {
        let (loaded, epoch) = {
            let pool = lock(&component.pool);
            if control.stop.load(Ordering::SeqCst) || pool.is_down() || slot >= pool.size {
                break;
            }
            (pool.loaded.clone(), pool.epoch)
        };
        let instance = match loaded.instantiate() {
            Ok(instance) => instance,
            Err(error) => {
                failures = failures.saturating_add(1);
                if !start_failed(component, control, &error, failures) {
                    break;
                }
                continue;
            }
        };
        {
            let mut pool = lock(&component.pool);
            pool.running += 1;
            pool.start_failures = 0;
            pool.settle_state();
        }
        component.settled.notify_all();
        tracing::debug!(target: "airssys::server", component = name, slot, "instance started");
        let (ended, instance) = serve(component, control, instance, epoch, &mut failures);
        {
            let mut pool = lock(&component.pool);
            pool.running -= 1;
            pool.settle_state();
        }
        match ended {
            Ended::Stop => {
                if let Err(error) = instance.shutdown() {
                    tracing::warn!(target: "airssys::server", component = name, %error, "shutdown failed");
                    let error = format!("component `{name}`: shutdown failed: {error}");
                    if control.stop.load(Ordering::SeqCst) {
                        lock(&control.shutdown_errors).push(error);
                    } else {
                        lock(&component.pool).last_error = Some(error);
                    }
                }
                // Not `break`: a reload may have started the component
                // again while `shutdown` ran, and it found this slot
                // still taken, so it started no worker for it. The top
                // of the loop ends the worker only if it is still down.
                continue;
            }
            Ended::Reload => drop(instance),
            Ended::Failed(error) => {
                drop(instance);
                failures = failures.saturating_add(1);
                let delay = backoff(&control.config, failures);
                let restarts = {
                    let mut pool = lock(&component.pool);
                    pool.restarts += 1;
                    pool.last_error = Some(error.clone());
                    pool.settle_state();
                    pool.restarts
                };
                tracing::warn!(
                    target: "airssys::server",
                    component = name,
                    slot,
                    restarts,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = error.as_str(),
                    "instance failed; replacing it with a fresh one"
                );
                pause(component, control, delay);
            }
        }
    }
}

/// Marks a worker's slot free when the worker ends, however it ends. A
/// worker that panicked (a bug of the host, or an embedder's hook that
/// panicked on its thread) must not leave callers waiting for ever: when
/// it was the component's last, the component is `Failed` and its queued
/// requests are answered `Unavailable` (the request it was serving, if
/// any, was answered the same way when its reply channel dropped).
struct SlotGuard<'a> {
    component: &'a Component,
    slot: usize,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let component = self.component;
        let mut pool = lock(&component.pool);
        if let Some(alive) = pool.slots.get_mut(self.slot) {
            *alive = false;
        }
        if std::thread::panicking() {
            let reason = format!(
                "worker thread {} of component `{}` panicked (a bug of the host, or a hook of the \
                 embedder's that panicked); reload the policy to start it again",
                self.slot, component.name
            );
            tracing::error!(target: "airssys::server", component = component.name.as_str(), "{reason}");
            pool.last_error = Some(reason.clone());
            if !pool.slots.iter().any(|alive| *alive) {
                pool.running = 0;
                pool.busy = 0;
                pool.state = ComponentState::Failed;
                let name = component.name.clone();
                pool.fail_queue(|| ServeError::Unavailable {
                    component: name.clone(),
                    reason: reason.clone(),
                });
            }
        }
        drop(pool);
        component.settled.notify_all();
    }
}

/// A failed start: counted; `false` when the component is now `Failed`
/// (or stopping) and the worker should end, `true` after the backoff.
fn start_failed(
    component: &Component,
    control: &Control,
    error: &RuntimeError,
    failures: u32,
) -> bool {
    let name = component.name.as_str();
    let limit = control.config.init_failures_before_failed;
    let delay = backoff(&control.config, failures);
    let mut pool = lock(&component.pool);
    pool.start_failures = pool.start_failures.saturating_add(1);
    pool.restarts += 1;
    pool.last_error = Some(error.to_string());
    if pool.start_failures >= limit {
        if !pool.is_down() {
            pool.state = ComponentState::Failed;
            let reason = format!(
                "failed to start {} times in a row (ServerConfig::init_failures_before_failed); \
                 last error: {error}; fix the component or its policy and reload",
                pool.start_failures
            );
            tracing::error!(target: "airssys::server", component = name, "{reason}");
            pool.last_error = Some(reason.clone());
            pool.fail_queue(|| ServeError::Unavailable {
                component: name.to_owned(),
                reason: reason.clone(),
            });
        }
        drop(pool);
        component.settled.notify_all();
        return false;
    }
    pool.settle_state();
    let restarts = pool.restarts;
    drop(pool);
    tracing::warn!(
        target: "airssys::server",
        component = name,
        restarts,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        %error,
        "instance failed to start; retrying"
    );
    pause(component, control, delay);
    true
}

/// The delay before restart number `failures` (1-based).
fn backoff(config: &ServerConfig, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    config
        .restart_backoff
        .saturating_mul(1 << doublings)
        .min(config.max_restart_backoff)
}

/// Sleeps `delay`, ending early when the server stops.
fn pause(component: &Component, control: &Control, delay: Duration) {
    let until = Instant::now() + delay;
    while !control.stop.load(Ordering::SeqCst) {
        let seen = component.wake.generation();
        if Instant::now() >= until {
            return;
        }
        if control.stop.load(Ordering::SeqCst) {
            return;
        }
        component.wake.wait(seen, until);
    }
}

/// Serves requests and mail with `instance` until it fails, the rights
/// change or the server stops; hands the instance back.
fn serve(
    component: &Component,
    control: &Control,
    mut instance: Instance,
    epoch: u64,
    failures: &mut u32,
) -> (Ended, Instance) {
    let name = component.name.as_str();
    loop {
        let seen = component.wake.generation();
        let job = {
            let mut pool = lock(&component.pool);
            if control.stop.load(Ordering::SeqCst) || pool.is_down() {
                return (Ended::Stop, instance);
            }
            if pool.epoch != epoch {
                return (Ended::Reload, instance);
            }
            let job = pool.queue.pop_front();
            if job.is_some() {
                pool.busy += 1;
            }
            job
        };
        if let Some(job) = job {
            let outcome = call(component, control, &mut instance, job);
            {
                let mut pool = lock(&component.pool);
                pool.busy -= 1;
                pool.completed += 1;
            }
            component.settled.notify_all();
            match outcome {
                Some(error) => return (Ended::Failed(error), instance),
                None => {
                    *failures = 0;
                    continue;
                }
            }
        }
        // Mail: only when there is some, so an idle pass costs nothing.
        if control.broker.pending(name) > 0 {
            lock(&component.pool).busy += 1;
            metrics::mark_delivery_start();
            let delivered = instance.deliver_pending(DELIVERY_BATCH);
            metrics::clear_delivery_mark();
            lock(&component.pool).busy -= 1;
            component.settled.notify_all();
            match delivered {
                Ok(report) if !report.is_empty() => {
                    *failures = 0;
                    continue;
                }
                Ok(_) => {}
                Err(error) => return (Ended::Failed(error.to_string()), instance),
            }
        }
        component.wake.wait(seen, Instant::now() + IDLE_WAKE);
    }
}

/// Runs one request; answers its caller. `Some(error)` when the instance
/// must be replaced.
fn call(
    component: &Component,
    control: &Control,
    instance: &mut Instance,
    job: Job,
) -> Option<String> {
    let name = component.name.as_str();
    let started = Instant::now();
    let result = instance.request(&job.source, &job.payload);
    let took = started.elapsed();
    let (answer, outcome, replace) = match result {
        Ok(Ok(bytes)) => (Ok(bytes), "ok", None),
        Ok(Err(error)) => {
            let outcome = match &error {
                HandlerError::Denied(_) => "denied",
                HandlerError::InvalidInput(_) => "invalid-input",
                _ => "error",
            };
            (Err(super::handler_error(name, error)), outcome, None)
        }
        Err(error) => {
            // The reason logged for the replacement is the whole error: for
            // a limit it also quotes what the call wrote (host only), while
            // the reply names only the limit.
            let reason = error.to_string();
            match error.into_limit() {
                Ok(limit) => (
                    Err(ServeError::Limit {
                        component: name.to_owned(),
                        message: limit.to_string(),
                        limit,
                    }),
                    "limit",
                    Some(reason),
                ),
                Err(RuntimeError::Trap {
                    message, source, ..
                }) => (
                    Err(ServeError::Trap {
                        component: name.to_owned(),
                        message: message.clone(),
                        source,
                    }),
                    "trap",
                    Some(message),
                ),
                Err(error) => {
                    // Replaced unless it can still be called (a missing export).
                    let replace =
                        (!matches!(error, RuntimeError::NoSuchExport { .. })).then_some(reason);
                    (Err(ServeError::Runtime(error)), "error", replace)
                }
            }
        }
    };
    control
        .metrics
        .call(name, KIND_REQUEST, outcome, Some(took));
    let _ = job.reply.send(answer);
    replace
}
