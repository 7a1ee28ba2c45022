//! The storage backends the storage tests run on: each such test takes a
//! `&dyn Backend` and is instantiated once per backend (memory always; a
//! JetStream key-value bucket with the `nats` feature), so the backends'
//! behaviour is compared by the same assertions.

use airssys_runtime::Runtime;

/// Makes runtimes whose storage is one backend.
pub(crate) trait Backend {
    /// A runtime with `policy` and fresh, empty storage of this backend.
    fn runtime(&self, policy: &str) -> Runtime;
}

/// `MemoryStorage`.
pub(crate) struct Memory;

impl Backend for Memory {
    fn runtime(&self, policy: &str) -> Runtime {
        super::runtime_with(policy)
    }
}

/// `NatsKvStorage` on a `nats-server -js` of the test: a bucket of its
/// own per runtime.
#[cfg(feature = "nats")]
pub(crate) struct NatsKv {
    server: super::jetstream::JetStreamServer,
    buckets: std::sync::atomic::AtomicUsize,
}

#[cfg(feature = "nats")]
impl NatsKv {
    pub(crate) fn start() -> NatsKv {
        NatsKv {
            server: super::jetstream::JetStreamServer::start(),
            buckets: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

#[cfg(feature = "nats")]
impl Backend for NatsKv {
    fn runtime(&self, policy: &str) -> Runtime {
        let n = self
            .buckets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let storage = airssys_runtime::storage::NatsKvStorage::connect(self.server.url())
            .bucket(format!("test{n}"))
            .open()
            .expect("opens the test's bucket");
        Runtime::builder()
            .policy(airssys_runtime::Policy::from_toml_str(policy).expect("valid policy"))
            .storage_backend(std::sync::Arc::new(storage))
            .max_instances(16)
            .build()
            .expect("runtime")
    }
}

/// Instantiates each named test `fn name(backend: &dyn Backend)` once per
/// backend: `memory::name` and (feature `nats`) `nats_kv::name`.
#[macro_export]
macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[test]
                fn $test() {
                    super::$test(&$crate::support::backends::Memory);
                }
            )*
        }
        #[cfg(feature = "nats")]
        mod nats_kv {
            $(
                #[test]
                fn $test() {
                    super::$test(&$crate::support::backends::NatsKv::start());
                }
            )*
        }
    };
}
