//! [`Instance`]: one running instance of a [`LoadedComponent`], and the
//! calls into it (requests, typed exports, `init` and `shutdown`), each
//! under the component's time limit.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::component::{ComponentNamedList, Lift, Lower, TypedFunc};
use wasmtime::{Store, Trap};

use super::dispatch::Dispatch;
use super::loaded::Loaded;
#[cfg(doc)]
use super::loaded::LoadedComponent;
use crate::error::{LimitExceeded, RuntimeError};
use crate::host::bindings::airssys::core::types::KeyValue;
use crate::host::bindings::exports::airssys::core::{handler, lifecycle};
use crate::host::state::{ComponentInfo, HostState};
use crate::rate::ComponentMeters;

/// A typed export of one [`Instance`], found once with
/// [`Instance::export`].
pub struct Export<P, R> {
    func: TypedFunc<P, R>,
}

impl<P, R> std::fmt::Debug for Export<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export").finish_non_exhaustive()
    }
}

/// What a component's handler returned as its error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The component refused the message or caller.
    #[error("denied: {0}")]
    Denied(String),
    /// The payload was not acceptable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl From<handler::Error> for HandlerError {
    fn from(error: handler::Error) -> HandlerError {
        match error {
            handler::Error::Denied(m) => HandlerError::Denied(m),
            handler::Error::InvalidInput(m) => HandlerError::InvalidInput(m),
            handler::Error::Other(m) => HandlerError::Other(m),
        }
    }
}

/// A running instance of a [`LoadedComponent`], with its own store,
/// handles and limits. Dropping it calls the component's `shutdown`
/// (unless it trapped); [`Instance::shutdown`] does so explicitly.
pub struct Instance {
    pub(super) store: Store<HostState>,
    pub(super) instance: Option<wasmtime::component::Instance>,
    lifecycle: Option<lifecycle::Guest>,
    pub(super) handler: Option<handler::Guest>,
    /// Delivery state reused between passes (see `deliver_pending`).
    pub(super) delivery: Dispatch,
    pub(super) loaded: Arc<Loaded>,
    /// The instance trapped; wasmtime refuses further calls.
    pub(super) poisoned: bool,
    stopped: bool,
    /// Counts the instance against `limits.max_instances` until dropped
    /// (after `Drop for Instance` has run `shutdown`).
    _live: Live,
}

/// One live instance of a component, counted against its
/// `limits.max_instances` until dropped.
struct Live(Arc<ComponentMeters>);

impl Live {
    fn enter(meters: Arc<ComponentMeters>, info: &ComponentInfo) -> Result<Live, RuntimeError> {
        let limit = info.limits.max_instances;
        meters
            .live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .map_err(|_| {
                RuntimeError::Limit(LimitExceeded::Instances {
                    component: info.name.clone(),
                    limit,
                })
            })?;
        Ok(Live(meters))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("component", &self.loaded.info.name)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Instance {
    /// Creates an instance of `loaded` and calls its `init` export (see
    /// [`LoadedComponent::instantiate`]).
    pub(super) fn start(loaded: &Arc<Loaded>) -> Result<Instance, RuntimeError> {
        let services = &loaded.shared.services;
        let live = Live::enter(services.meters.of(&loaded.info.name), &loaded.info)?;
        services.audit.limit_denials(
            &loaded.info.name,
            loaded.info.limits.audit_denials_per_second,
        );
        let mut state = HostState::new(
            Arc::clone(&loaded.info),
            Arc::clone(&loaded.shared.services),
        );
        state.extensions = loaded.shared.extensions.instance_states(&loaded.info.name);
        let mut store = Store::new(&loaded.shared.engine, state);
        store.limiter(|state| state as &mut dyn wasmtime::ResourceLimiter);
        store.epoch_deadline_trap();
        // Undone in `Drop for Instance`.
        loaded
            .shared
            .services
            .broker
            .set_running(&loaded.info.name, true);
        let mut instance = Instance {
            store,
            instance: None,
            lifecycle: None,
            handler: None,
            delivery: Dispatch::default(),
            loaded: Arc::clone(loaded),
            poisoned: false,
            stopped: false,
            _live: live,
        };
        instance.arm();
        let created = loaded.pre.instantiate(&mut instance.store);
        instance.report_drops();
        let created = created.map_err(|e| {
            instance.classify(e, |component, message, source| RuntimeError::Instantiate {
                component,
                message,
                source: Some(source),
            })
        })?;
        instance.lifecycle = match &loaded.lifecycle {
            Some(indices) => Some(
                indices
                    .load(&mut instance.store, &created)
                    .map_err(|e| instance.trap(e))?,
            ),
            None => None,
        };
        instance.handler = match &loaded.handler {
            Some(indices) => Some(
                indices
                    .load(&mut instance.store, &created)
                    .map_err(|e| instance.trap(e))?,
            ),
            None => None,
        };
        instance.instance = Some(created);
        instance.init()?;
        Ok(instance)
    }

    /// The component's name.
    pub fn name(&self) -> &str {
        &self.loaded.info.name
    }

    /// Sends a request to the component's `handler.handle-request` export,
    /// as if from the component `source`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NoSuchExport`] when the component has no handler;
    /// a limit or trap error when the call fails. The component's own
    /// error is the inner `Err`.
    pub fn request(
        &mut self,
        source: &str,
        payload: &[u8],
    ) -> Result<Result<Vec<u8>, HandlerError>, RuntimeError> {
        let Some(handler) = self.handler.clone() else {
            return Err(self.no_export("airssys:core/handler@1.0.0#handle-request"));
        };
        self.enter()?;
        let result = handler.call_handle_request(&mut self.store, &source.to_owned(), payload);
        self.finish(result).map(|r| r.map_err(HandlerError::from))
    }

    /// Looks up the exported function `name` (inside the exported
    /// interface `interface`, e.g. `my:pkg/api@1.0.0`, or at the top level
    /// when `None`) and checks its type, once; call it with
    /// [`Instance::invoke`].
    ///
    /// # Errors
    ///
    /// [`RuntimeError::NoSuchExport`] when there is no such export of that
    /// type.
    pub fn export<P, R>(
        &mut self,
        interface: Option<&str>,
        name: &str,
    ) -> Result<Export<P, R>, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync,
    {
        let export = match interface {
            Some(i) => format!("{i}#{name}"),
            None => name.to_owned(),
        };
        let Some(instance) = self.instance else {
            return Err(self.no_export(&export));
        };
        let index = match interface {
            Some(i) => instance
                .get_export_index(&mut self.store, None, i)
                .and_then(|parent| instance.get_export_index(&mut self.store, Some(&parent), name)),
            None => instance.get_export_index(&mut self.store, None, name),
        };
        let Some(index) = index else {
            return Err(self.no_export(&export));
        };
        let func = instance
            .get_typed_func::<P, R>(&mut self.store, &index)
            .map_err(|e| RuntimeError::NoSuchExport {
                component: self.name().to_owned(),
                export,
                message: format!("{e}"),
                source: Some(e),
            })?;
        Ok(Export { func })
    }

    /// Calls an export found with [`Instance::export`] on this instance.
    ///
    /// # Errors
    ///
    /// A limit or trap error when the call fails.
    pub fn invoke<P, R>(&mut self, export: &Export<P, R>, params: P) -> Result<R, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync,
    {
        self.enter()?;
        let result = export.func.call(&mut self.store, params);
        self.finish(result)
    }

    /// Looks up and calls an export in one step: [`Instance::export`]
    /// then [`Instance::invoke`].
    ///
    /// # Errors
    ///
    /// As [`Instance::export`] and [`Instance::invoke`].
    pub fn call<P, R>(
        &mut self,
        interface: Option<&str>,
        name: &str,
        params: P,
    ) -> Result<R, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync,
    {
        let export = self.export(interface, name)?;
        self.invoke(&export, params)
    }

    /// Calls the component's `shutdown` export (when it has one) and drops
    /// the instance.
    ///
    /// # Errors
    ///
    /// A limit or trap error raised by `shutdown`.
    pub fn shutdown(mut self) -> Result<(), RuntimeError> {
        self.stop()
    }

    fn init(&mut self) -> Result<(), RuntimeError> {
        let Some(lifecycle) = self.lifecycle.clone() else {
            return Ok(());
        };
        let config: Vec<KeyValue> = self
            .loaded
            .info
            .config
            .iter()
            .map(|(key, value)| KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        self.enter()?;
        let result = lifecycle.call_init(&mut self.store, &config);
        match self.finish(result)? {
            Ok(()) => Ok(()),
            Err(error) => Err(RuntimeError::Init {
                component: self.name().to_owned(),
                message: match error {
                    lifecycle::Error::Denied(m) => format!("denied: {m}"),
                    lifecycle::Error::InvalidConfig(m) => format!("invalid configuration: {m}"),
                    lifecycle::Error::Other(m) => m,
                },
            }),
        }
    }

    fn stop(&mut self) -> Result<(), RuntimeError> {
        if self.stopped || self.poisoned {
            return Ok(());
        }
        self.stopped = true;
        let Some(lifecycle) = self.lifecycle.clone() else {
            return Ok(());
        };
        self.enter()?;
        let result = lifecycle.call_shutdown(&mut self.store);
        self.finish(result)
    }

    /// Sets the time limit for the next call into the guest.
    fn arm(&mut self) {
        let tick = self.loaded.shared.tick.as_nanos().max(1);
        let limit = self.loaded.info.limits.cpu_time.as_nanos();
        // One extra tick: the current one may be about to end.
        let ticks = u64::try_from(limit.div_ceil(tick))
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.store.set_epoch_deadline(ticks);
        // `poll` waits no longer than the same limit (see host/poll.rs).
        let now = std::time::Instant::now();
        self.store.data_mut().call_deadline = now.checked_add(self.loaded.info.limits.cpu_time);
    }

    pub(super) fn enter(&mut self) -> Result<(), RuntimeError> {
        if self.poisoned {
            return Err(RuntimeError::Trap {
                component: self.name().to_owned(),
                message: "the instance trapped earlier and cannot be called again; instantiate \
                          the component anew"
                    .to_owned(),
                source: None,
            });
        }
        self.arm();
        self.store.data().log.start_of_call();
        Ok(())
    }

    pub(super) fn finish<T>(&mut self, result: wasmtime::Result<T>) -> Result<T, RuntimeError> {
        self.report_drops();
        result.map_err(|e| self.trap(e))
    }

    /// Ends the unfinished stdout and stderr lines of the call, and says
    /// what the component's rate limits dropped (log records, output
    /// lines, audit records of refusals) since the last time: at the end
    /// of every call, so no drop goes unsaid.
    fn report_drops(&self) {
        let state = self.store.data();
        state.log.end_of_call();
        state.services.audit.report_dropped(&state.info.name);
    }

    fn trap(&mut self, error: wasmtime::Error) -> RuntimeError {
        self.classify(error, |component, message, source| RuntimeError::Trap {
            component,
            message,
            source: Some(source),
        })
    }

    /// Turns a wasmtime error into the limit it reports, or `other`.
    fn classify(
        &mut self,
        error: wasmtime::Error,
        other: impl FnOnce(String, String, wasmtime::Error) -> RuntimeError,
    ) -> RuntimeError {
        self.poisoned = true;
        let limit = if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
            Some(limit.clone())
        } else if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            Some(LimitExceeded::CpuTime {
                component: self.name().to_owned(),
                limit: self.loaded.info.limits.cpu_time,
            })
        } else {
            None
        };
        // A limit quotes what the call wrote as a trap does (below).
        if let Some(limit) = limit {
            return match self
                .store
                .data()
                .log
                .written_before("the limit ended the call")
            {
                Some(written) => RuntimeError::LimitAfterOutput { limit, written },
                None => RuntimeError::Limit(limit),
            };
        }
        // The message gives the cause first ("wasm `unreachable`
        // instruction executed"), then wasmtime's report with the wasm
        // backtrace, for people; the error itself goes along for code (its
        // `Trap` code, say). What the component wrote to stderr and stdout
        // in the call comes between (a panic message, say), whatever its
        // `log:write` grants: the error goes to the host only.
        let written = match self.store.data().log.written_before("the trap") {
            Some(text) => format!("{text}\n"),
            None => String::new(),
        };
        let message = format!("{}\n{written}{error:?}", error.root_cause());
        other(self.name().to_owned(), message, error)
    }

    pub(super) fn no_export(&self, export: &str) -> RuntimeError {
        RuntimeError::NoSuchExport {
            component: self.name().to_owned(),
            export: export.to_owned(),
            message: "the component does not export it".to_owned(),
            source: None,
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            tracing::warn!(component = self.name(), %error, "shutdown failed");
        }
        let broker = &self.loaded.shared.services.broker;
        broker.set_running(&self.loaded.info.name, false);
    }
}
