//! Resource limits: what one component (or one of its instances) may make
//! the host hold. Every limit has a built-in default, a policy key under
//! `limits`, and a named error when it is reached (see `docs/runtime.md`,
//! "Limits").

use std::time::Duration;

/// Default memory cap per component instance: 64 MiB.
pub const DEFAULT_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
/// Default time limit of one call into a component: 10 s.
pub const DEFAULT_CPU_TIME: Duration = Duration::from_secs(10);
/// Default storage quota per component: 16 MiB.
pub const DEFAULT_STORAGE_BYTES: u64 = 16 * 1024 * 1024;
/// Default number of child processes a component may have running at
/// once (across its instances).
pub const DEFAULT_MAX_CHILDREN: u32 = 16;
/// Default bytes of results the host may hold for one instance: 16 MiB.
pub const DEFAULT_HELD_BYTES: u64 = 16 * 1024 * 1024;
/// Default number of operations one instance may have pending at once.
pub const DEFAULT_MAX_PENDING: u32 = 64;
/// Default number of host handles (resource table entries) of one
/// instance.
pub const DEFAULT_MAX_HANDLES: u32 = 1024;
/// Default number of network operations one component may have running
/// at once (across its instances).
pub const DEFAULT_MAX_NET_IN_FLIGHT: u32 = 32;
/// Default longest time one network operation may take (a connect, a
/// read, a write, a datagram, an HTTP exchange with its redirects): 300 s.
pub const DEFAULT_NET_TIMEOUT: Duration = Duration::from_secs(300);

/// Resource limits of a component. `None` means "inherit".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Linear memory cap of one instance, in bytes (`memory_bytes`).
    pub memory_bytes: Option<u64>,
    /// Wall-clock time one call into the component may run, waits
    /// included (`cpu_time_ms`; measured with epoch interruption, so it
    /// is enforced at the next tick).
    pub cpu_time: Option<Duration>,
    /// Bytes the component may keep in storage (`storage_bytes`).
    pub storage_bytes: Option<u64>,
    /// Child processes the component may have running at once, across
    /// its instances (`max_children`).
    pub max_children: Option<u32>,
    /// Bytes of results the host holds for one instance until it collects
    /// them: pending file and network reads, HTTP responses, replies,
    /// child output (`held_bytes`).
    pub held_bytes: Option<u64>,
    /// Operations one instance may have pending at once, whatever holds
    /// their result (`max_pending`).
    pub max_pending: Option<u32>,
    /// Host handles (resource table entries: buckets, files, sockets,
    /// pending operations, pollables, ...) one instance may hold
    /// (`max_handles`).
    pub max_handles: Option<u32>,
    /// Network operations the component may have running at once, across
    /// its instances (`max_net_in_flight`).
    pub max_net_in_flight: Option<u32>,
    /// Longest time one network operation may take, from its start to its
    /// result, whatever the component asked for (`net_timeout_ms`).
    pub net_timeout: Option<Duration>,
}

impl Limits {
    /// No limit set: every field inherits.
    pub fn new() -> Limits {
        Limits::default()
    }

    /// Sets `memory_bytes`.
    pub fn memory_bytes(mut self, bytes: u64) -> Limits {
        self.memory_bytes = Some(bytes);
        self
    }

    /// Sets the time limit of one call.
    pub fn cpu_time(mut self, time: Duration) -> Limits {
        self.cpu_time = Some(time);
        self
    }

    /// Sets `storage_bytes`.
    pub fn storage_bytes(mut self, bytes: u64) -> Limits {
        self.storage_bytes = Some(bytes);
        self
    }

    /// Sets `max_children`.
    pub fn max_children(mut self, count: u32) -> Limits {
        self.max_children = Some(count);
        self
    }

    /// Sets `held_bytes`.
    pub fn held_bytes(mut self, bytes: u64) -> Limits {
        self.held_bytes = Some(bytes);
        self
    }

    /// Sets `max_pending`.
    pub fn max_pending(mut self, count: u32) -> Limits {
        self.max_pending = Some(count);
        self
    }

    /// Sets `max_handles`.
    pub fn max_handles(mut self, count: u32) -> Limits {
        self.max_handles = Some(count);
        self
    }

    /// Sets `max_net_in_flight`.
    pub fn max_net_in_flight(mut self, count: u32) -> Limits {
        self.max_net_in_flight = Some(count);
        self
    }

    /// Sets the longest time of one network operation.
    pub fn net_timeout(mut self, time: Duration) -> Limits {
        self.net_timeout = Some(time);
        self
    }

    /// `self`, with unset fields taken from `fallback`.
    pub fn or(self, fallback: Limits) -> Limits {
        Limits {
            memory_bytes: self.memory_bytes.or(fallback.memory_bytes),
            cpu_time: self.cpu_time.or(fallback.cpu_time),
            storage_bytes: self.storage_bytes.or(fallback.storage_bytes),
            max_children: self.max_children.or(fallback.max_children),
            held_bytes: self.held_bytes.or(fallback.held_bytes),
            max_pending: self.max_pending.or(fallback.max_pending),
            max_handles: self.max_handles.or(fallback.max_handles),
            max_net_in_flight: self.max_net_in_flight.or(fallback.max_net_in_flight),
            net_timeout: self.net_timeout.or(fallback.net_timeout),
        }
    }

    /// Every field decided, unset ones from `base`.
    pub fn resolve(self, base: ResolvedLimits) -> ResolvedLimits {
        ResolvedLimits {
            memory_bytes: self.memory_bytes.unwrap_or(base.memory_bytes),
            cpu_time: self.cpu_time.unwrap_or(base.cpu_time),
            storage_bytes: self.storage_bytes.unwrap_or(base.storage_bytes),
            max_children: self.max_children.unwrap_or(base.max_children),
            held_bytes: self.held_bytes.unwrap_or(base.held_bytes),
            max_pending: self.max_pending.unwrap_or(base.max_pending),
            max_handles: self.max_handles.unwrap_or(base.max_handles),
            max_net_in_flight: self.max_net_in_flight.unwrap_or(base.max_net_in_flight),
            net_timeout: self.net_timeout.unwrap_or(base.net_timeout),
        }
    }
}

/// Limits with every field decided. See [`Limits`] for what each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedLimits {
    /// Linear memory cap of one instance, in bytes.
    pub memory_bytes: u64,
    /// Time one call into the component may run.
    pub cpu_time: Duration,
    /// Storage quota in bytes.
    pub storage_bytes: u64,
    /// Child processes running at once, across the component's instances.
    pub max_children: u32,
    /// Bytes of results the host holds for one instance.
    pub held_bytes: u64,
    /// Operations one instance may have pending at once.
    pub max_pending: u32,
    /// Host handles one instance may hold.
    pub max_handles: u32,
    /// Network operations running at once, across the component's
    /// instances.
    pub max_net_in_flight: u32,
    /// Longest time of one network operation.
    pub net_timeout: Duration,
}

impl Default for ResolvedLimits {
    fn default() -> Self {
        ResolvedLimits {
            memory_bytes: DEFAULT_MEMORY_BYTES,
            cpu_time: DEFAULT_CPU_TIME,
            storage_bytes: DEFAULT_STORAGE_BYTES,
            max_children: DEFAULT_MAX_CHILDREN,
            held_bytes: DEFAULT_HELD_BYTES,
            max_pending: DEFAULT_MAX_PENDING,
            max_handles: DEFAULT_MAX_HANDLES,
            max_net_in_flight: DEFAULT_MAX_NET_IN_FLIGHT,
            net_timeout: DEFAULT_NET_TIMEOUT,
        }
    }
}

impl ResolvedLimits {
    /// `self` with the limits set in `limits` replaced.
    pub fn with(self, limits: Limits) -> ResolvedLimits {
        limits.resolve(self)
    }
}
