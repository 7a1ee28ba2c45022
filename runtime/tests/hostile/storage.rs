//! Hostile probes: storage.

/// Names as grants see them: bucket names and `list-keys` (one block,
/// first in this file).
mod names {
    use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
    use crate::support::{ask, instance, runtime_with};

    /// Item 5: `kv:write:counter/secret/x` once meant two entries (bucket
    /// `counter/secret`, key `x`, or bucket `counter`, key `secret/x`); a
    /// bucket name with `/` is now refused, naming the rule.
    #[test]
    fn a_bucket_name_with_a_slash_is_refused() {
        let runtime = runtime_with(&format!(
            "[components.fsprobe]\ngrants = [\"kv:write:counter/**\", \"kv:read:counter/**\"]\n\
             denies = [\"kv:write:counter/secret/**\"]\n{NEIGHBOUR_POLICY}"
        ));
        let mut attacker = instance(&runtime, "fsprobe");
        let reply = while_serving(&runtime, || {
            ask(&mut attacker, "kv-set:counter/secret|x=pwned")
        });
        assert!(reply.starts_with("invalid-input: "), "{reply}");
        assert!(reply.contains("contains `/`"), "{reply}");
        assert!(reply.contains("one segment"), "{reply}");
    }

    /// Item 3 for storage: keys under a denied subtree are not listed.
    #[test]
    fn list_keys_does_not_reveal_keys_under_a_denied_subtree() {
        let runtime = runtime_with(&format!(
            "[components.fsprobe]\ngrants = [\"kv:read:counter/**\", \"kv:list:counter\"]\n\
             denies = [\"kv:read:counter/secret/**\"]\n{NEIGHBOUR_POLICY}"
        ));
        for key in ["public", "secret/admin-password", "secret/api-key"] {
            runtime
                .storage()
                .set("fsprobe", "counter", key, b"v", None)
                .expect("set");
        }
        let mut attacker = instance(&runtime, "fsprobe");
        let (keys, read) = while_serving(&runtime, || {
            (
                ask(&mut attacker, "kv-keys:counter"),
                ask(&mut attacker, "kv-get:counter|secret/api-key"),
            )
        });
        assert_eq!(keys, "pages 1: public");
        assert!(read.starts_with("denied: "), "{read}");
        assert!(read.contains("`kv:read:counter/secret/**`"), "{read}");
    }
}

/// Storage flood: the quota and the fairness of commits.
mod flood {
    use airssys_runtime::{Policy, Runtime};

    use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
    use crate::support::fixture_as;

    /// Has a `hog` instance write 100-byte values until refused.
    fn fill(hog: &mut airssys_runtime::Instance, bucket: &str) -> String {
        let command = format!("kv-fill:{bucket}:100000:100");
        let reply = hog
            .request("host", command.as_bytes())
            .expect("call succeeds")
            .expect("handler succeeds");
        String::from_utf8(reply).expect("UTF-8")
    }

    const HOG: &str = r#"
[components.hog]
grants = ["kv:write:*/*"]
limits = { storage_bytes = 262144 }
"#;

    /// Three instances of one component write durably in a loop until its
    /// 256 KiB quota (`limits.storage_bytes`) refuses them, on a redb file
    /// as in production; meanwhile the neighbour's own durable writes
    /// still commit within the liveness bound (`SERVING`, checked by
    /// `while_serving`): writes are committed in batches chosen
    /// round-robin per component, so the hog's loop cannot starve them.
    #[test]
    fn a_write_loop_to_the_quota_does_not_starve_the_neighbours_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::builder()
            .policy(Policy::from_toml_str(&format!("{HOG}{NEIGHBOUR_POLICY}")).expect("policy"))
            .storage_path(dir.path().join("state.redb"))
            .max_instances(16)
            .build()
            .expect("runtime");
        let hog = runtime
            .load(&fixture_as("messenger", "hog", &["kv:write:*/*"]))
            .expect("hog loads");
        let mut hogs: Vec<_> = (0..3)
            .map(|_| hog.instantiate().expect("hog starts"))
            .collect();
        let replies = while_serving(&runtime, || {
            std::thread::scope(|scope| {
                let writers: Vec<_> = hogs
                    .iter_mut()
                    .enumerate()
                    .map(|(i, hog)| scope.spawn(move || fill(hog, &format!("b{i}"))))
                    .collect();
                writers
                    .into_iter()
                    .map(|w| w.join().expect("writer"))
                    .collect::<Vec<_>>()
            })
        });
        for reply in &replies {
            assert!(
                reply.starts_with("after ") && reply.contains(": quota-exceeded: storage quota"),
                "{reply}"
            );
            assert!(reply.contains("`limits.storage_bytes`"), "{reply}");
        }
        let used = runtime.storage().usage("hog").expect("usage");
        assert!(used <= 262_144, "{used}");
        // Within one entry of the quota: it was filled, not refused early.
        assert!(used > 262_144 - 200, "{used}");
    }
}

/// Storage over NATS: no wait for the server outlasts the calling
/// component's time limit.
#[cfg(feature = "nats")]
mod nats_kv {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use airssys_runtime::storage::{MemoryStorage, NatsKvStorage, StorageBackend, StorageError};
    use airssys_runtime::{Policy, Runtime};

    use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
    use crate::support::instance;
    use crate::support::jetstream::JetStreamServer;

    /// The neighbour (`probe`) on in-process storage, every other
    /// component in the NATS key-value bucket.
    struct Split {
        kv: NatsKvStorage,
        local: MemoryStorage,
    }

    impl Split {
        fn pick(&self, namespace: &str) -> &dyn StorageBackend {
            if namespace == "probe" {
                &self.local
            } else {
                &self.kv
            }
        }
    }

    impl StorageBackend for Split {
        fn get(&self, n: &str, b: &str, k: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.pick(n).get(n, b, k)
        }
        fn get_by(
            &self,
            n: &str,
            b: &str,
            k: &str,
            deadline: Option<Instant>,
        ) -> Result<Option<Vec<u8>>, StorageError> {
            self.pick(n).get_by(n, b, k, deadline)
        }
        fn set(
            &self,
            n: &str,
            b: &str,
            k: &str,
            v: &[u8],
            quota: Option<u64>,
        ) -> Result<(), StorageError> {
            self.pick(n).set(n, b, k, v, quota)
        }
        fn set_by(
            &self,
            n: &str,
            b: &str,
            k: &str,
            v: &[u8],
            quota: Option<u64>,
            deadline: Option<Instant>,
        ) -> Result<(), StorageError> {
            self.pick(n).set_by(n, b, k, v, quota, deadline)
        }
        fn delete(&self, n: &str, b: &str, k: &str) -> Result<bool, StorageError> {
            self.pick(n).delete(n, b, k)
        }
        fn list_keys(
            &self,
            n: &str,
            b: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<String>, StorageError> {
            self.pick(n).list_keys(n, b, after, limit)
        }
        fn list_keys_by(
            &self,
            n: &str,
            b: &str,
            after: Option<&str>,
            limit: usize,
            deadline: Option<Instant>,
        ) -> Result<Vec<String>, StorageError> {
            self.pick(n).list_keys_by(n, b, after, limit, deadline)
        }
        fn usage(&self, n: &str) -> Result<u64, StorageError> {
            self.pick(n).usage(n)
        }
    }

    /// The attacker's time limit.
    const LIMIT: Duration = Duration::from_millis(300);

    /// The KV server stops answering (SIGSTOP) while a component's `set`,
    /// `get` and `list-keys` wait for it, with the storage's own
    /// `op_timeout` at 60 s: each call returns within the component's
    /// CPU-time limit (`limits.cpu_time_ms = 300`, plus a margin for a
    /// loaded machine), the component sees `other` naming the limit, and
    /// the neighbour keeps serving meanwhile.
    #[test]
    fn a_paused_kv_server_holds_no_call_past_its_time_limit() {
        let server = JetStreamServer::start();
        let kv = NatsKvStorage::connect(server.url())
            .op_timeout(Duration::from_secs(60))
            .open()
            .expect("opens the bucket");
        let storage = Split {
            kv,
            local: MemoryStorage::new(),
        };
        let policy = format!(
            "[components.fsprobe]\ngrants = [\"kv:read:b/*\", \"kv:write:b/*\", \
             \"kv:list:b\"]\nlimits = {{ cpu_time_ms = {} }}\n{NEIGHBOUR_POLICY}",
            LIMIT.as_millis()
        );
        let runtime = Runtime::builder()
            .policy(Policy::from_toml_str(&policy).expect("policy"))
            .storage_backend(Arc::new(storage))
            // Ticks far longer than the limit: the time-limit trap comes
            // well after the call's deadline, so the component has time
            // to report the storage error it got at the deadline.
            .epoch_tick(Duration::from_secs(1))
            .max_instances(16)
            .build()
            .expect("runtime");
        let mut attacker = instance(&runtime, "fsprobe");
        let set = crate::support::ask(&mut attacker, "kv-set:b|k=v");
        assert_eq!(set, "ok", "the server answers before it is paused");
        let replies = {
            let _paused = server.pause();
            while_serving(&runtime, || {
                ["kv-set:b|k=w", "kv-get:b|k", "kv-keys:b"].map(|command| {
                    let started = Instant::now();
                    let reply = attacker.request("test", command.as_bytes());
                    (command, started.elapsed(), reply)
                })
            })
        };
        for (command, took, reply) in replies {
            assert!(
                took < LIMIT + Duration::from_secs(2),
                "`{command}` waited {took:?} for the paused server ({reply:?}): longer than the \
                 call's time limit of {LIMIT:?} allows"
            );
            let reply = String::from_utf8(
                reply
                    .unwrap_or_else(|e| panic!("`{command}`: the call failed: {e}"))
                    .unwrap_or_else(|e| panic!("`{command}`: the handler failed: {e:?}")),
            )
            .expect("UTF-8");
            assert!(reply.starts_with("other: "), "`{command}`: {reply}");
            assert!(
                reply.contains("CPU time limit of 300 ms")
                    && reply.contains("`limits.cpu_time_ms`")
                    && reply.contains("storage server"),
                "`{command}`: {reply}"
            );
        }
    }
}

/// `list-keys` reading on past keys that deny rules hide stops at the
/// call's deadline, whatever the backend.
mod hidden_keys {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use airssys_runtime::storage::{MemoryStorage, StorageBackend, StorageError};
    use airssys_runtime::{Policy, Runtime};

    use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
    use crate::support::{ask, instance};

    /// In-process storage whose every listing takes 100 ms (a backend
    /// that never waits past what one call needs, but is slow).
    struct SlowListing(MemoryStorage);

    impl StorageBackend for SlowListing {
        fn get(&self, n: &str, b: &str, k: &str) -> Result<Option<Vec<u8>>, StorageError> {
            self.0.get(n, b, k)
        }
        fn set(
            &self,
            n: &str,
            b: &str,
            k: &str,
            v: &[u8],
            quota: Option<u64>,
        ) -> Result<(), StorageError> {
            self.0.set(n, b, k, v, quota)
        }
        fn delete(&self, n: &str, b: &str, k: &str) -> Result<bool, StorageError> {
            self.0.delete(n, b, k)
        }
        fn list_keys(
            &self,
            n: &str,
            b: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<String>, StorageError> {
            std::thread::sleep(Duration::from_millis(100));
            self.0.list_keys(n, b, after, limit)
        }
        fn usage(&self, n: &str) -> Result<u64, StorageError> {
            self.0.usage(n)
        }
    }

    /// 4,000 keys that a deny rule hides come before the only visible
    /// one: one `list-keys` page would read 40 batches (4 s on this
    /// backend). Under a 300 ms time limit the call ends after the batch
    /// that passed the deadline, with `other` naming the limit, and the
    /// neighbour keeps serving.
    #[test]
    fn reading_past_hidden_keys_ends_at_the_calls_time_limit() {
        let limit = Duration::from_millis(300);
        let policy = format!(
            "[components.fsprobe]\ngrants = [\"kv:read:b/**\", \"kv:list:b\"]\ndenies = \
             [\"kv:read:b/h/**\"]\nlimits = {{ cpu_time_ms = {} }}\n{NEIGHBOUR_POLICY}",
            limit.as_millis()
        );
        let storage = SlowListing(MemoryStorage::new());
        for i in 0..4000 {
            storage
                .set("fsprobe", "b", &format!("h/{i:04}"), b"", None)
                .expect("set");
        }
        storage.set("fsprobe", "b", "z", b"", None).expect("set");
        let runtime = Runtime::builder()
            .policy(Policy::from_toml_str(&policy).expect("policy"))
            .storage_backend(Arc::new(storage))
            // The time-limit trap comes well after the deadline, so the
            // component reports the error it got.
            .epoch_tick(Duration::from_secs(1))
            .max_instances(16)
            .build()
            .expect("runtime");
        let mut attacker = instance(&runtime, "fsprobe");
        let (reply, took) = while_serving(&runtime, || {
            let started = Instant::now();
            let reply = ask(&mut attacker, "kv-keys:b");
            (reply, started.elapsed())
        });
        assert!(
            took < limit + Duration::from_secs(2),
            "`list-keys` took {took:?} ({reply}): longer than its time limit of {limit:?} allows"
        );
        assert!(reply.starts_with("other: "), "{reply}");
        assert!(
            reply.contains("CPU time limit of 300 ms") && reply.contains("`limits.cpu_time_ms`"),
            "{reply}"
        );
        assert!(reply.contains("deny rules hide"), "{reply}");
    }
}
