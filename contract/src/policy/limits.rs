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
/// Default number of instances one component may have alive at once.
pub const DEFAULT_MAX_INSTANCES_PER_COMPONENT: u32 = 32;
/// Default number of core (module) instances one instance of a component
/// may contain. A Rust `wasm32-wasip2` component needs 3, a minimal
/// componentize-py 0.25.1 component 14 (measured).
pub const DEFAULT_MAX_CORE_INSTANCES: u32 = 16;
/// Default number of linear memories one instance of a component may
/// contain. A Rust `wasm32-wasip2` component needs 1 (measured).
pub const DEFAULT_MAX_MEMORIES: u32 = 2;
/// Default number of tables one instance of a component may contain. A
/// Rust `wasm32-wasip2` component needs 2 (measured).
pub const DEFAULT_MAX_TABLES: u32 = 4;
/// Default number of log records (and stdout/stderr lines) one component
/// may emit per second.
pub const DEFAULT_LOG_LINES_PER_SECOND: u64 = 1000;
/// Default bytes of log records (and stdout/stderr lines) one component
/// may emit per second: 1 MiB.
pub const DEFAULT_LOG_BYTES_PER_SECOND: u64 = 1024 * 1024;
/// Default number of audit records of denials written per second for one
/// component.
pub const DEFAULT_AUDIT_DENIALS_PER_SECOND: u64 = 100;

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
    /// Instances of the component alive at once (`max_instances`).
    pub max_instances: Option<u32>,
    /// Core (module) instances one instance may contain
    /// (`max_core_instances`).
    pub max_core_instances: Option<u32>,
    /// Linear memories one instance may contain (`max_memories`).
    pub max_memories: Option<u32>,
    /// Tables one instance may contain (`max_tables`).
    pub max_tables: Option<u32>,
    /// Log records, stdout lines and stderr lines the component may emit
    /// per second, across its instances (`log_lines_per_second`).
    pub log_lines_per_second: Option<u64>,
    /// Bytes of those records per second (`log_bytes_per_second`).
    pub log_bytes_per_second: Option<u64>,
    /// Audit records of the component's denials written per second
    /// (`audit_denials_per_second`).
    pub audit_denials_per_second: Option<u64>,
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

    /// Sets `max_instances`.
    pub fn max_instances(mut self, count: u32) -> Limits {
        self.max_instances = Some(count);
        self
    }

    /// Sets `max_core_instances`.
    pub fn max_core_instances(mut self, count: u32) -> Limits {
        self.max_core_instances = Some(count);
        self
    }

    /// Sets `max_memories`.
    pub fn max_memories(mut self, count: u32) -> Limits {
        self.max_memories = Some(count);
        self
    }

    /// Sets `max_tables`.
    pub fn max_tables(mut self, count: u32) -> Limits {
        self.max_tables = Some(count);
        self
    }

    /// Sets `log_lines_per_second`.
    pub fn log_lines_per_second(mut self, count: u64) -> Limits {
        self.log_lines_per_second = Some(count);
        self
    }

    /// Sets `log_bytes_per_second`.
    pub fn log_bytes_per_second(mut self, bytes: u64) -> Limits {
        self.log_bytes_per_second = Some(bytes);
        self
    }

    /// Sets `audit_denials_per_second`.
    pub fn audit_denials_per_second(mut self, count: u64) -> Limits {
        self.audit_denials_per_second = Some(count);
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
            max_instances: self.max_instances.or(fallback.max_instances),
            max_core_instances: self.max_core_instances.or(fallback.max_core_instances),
            max_memories: self.max_memories.or(fallback.max_memories),
            max_tables: self.max_tables.or(fallback.max_tables),
            log_lines_per_second: self.log_lines_per_second.or(fallback.log_lines_per_second),
            log_bytes_per_second: self.log_bytes_per_second.or(fallback.log_bytes_per_second),
            audit_denials_per_second: self
                .audit_denials_per_second
                .or(fallback.audit_denials_per_second),
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
            max_instances: self.max_instances.unwrap_or(base.max_instances),
            max_core_instances: self.max_core_instances.unwrap_or(base.max_core_instances),
            max_memories: self.max_memories.unwrap_or(base.max_memories),
            max_tables: self.max_tables.unwrap_or(base.max_tables),
            log_lines_per_second: self
                .log_lines_per_second
                .unwrap_or(base.log_lines_per_second),
            log_bytes_per_second: self
                .log_bytes_per_second
                .unwrap_or(base.log_bytes_per_second),
            audit_denials_per_second: self
                .audit_denials_per_second
                .unwrap_or(base.audit_denials_per_second),
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
    /// Instances of the component alive at once.
    pub max_instances: u32,
    /// Core (module) instances one instance may contain.
    pub max_core_instances: u32,
    /// Linear memories one instance may contain.
    pub max_memories: u32,
    /// Tables one instance may contain.
    pub max_tables: u32,
    /// Log records (stdout and stderr lines included) per second, across
    /// the component's instances.
    pub log_lines_per_second: u64,
    /// Bytes of those records per second.
    pub log_bytes_per_second: u64,
    /// Audit records of denials per second.
    pub audit_denials_per_second: u64,
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
            max_instances: DEFAULT_MAX_INSTANCES_PER_COMPONENT,
            max_core_instances: DEFAULT_MAX_CORE_INSTANCES,
            max_memories: DEFAULT_MAX_MEMORIES,
            max_tables: DEFAULT_MAX_TABLES,
            log_lines_per_second: DEFAULT_LOG_LINES_PER_SECOND,
            log_bytes_per_second: DEFAULT_LOG_BYTES_PER_SECOND,
            audit_denials_per_second: DEFAULT_AUDIT_DENIALS_PER_SECOND,
        }
    }
}

impl ResolvedLimits {
    /// `self` with the limits set in `limits` replaced.
    pub fn with(self, limits: Limits) -> ResolvedLimits {
        limits.resolve(self)
    }
}
