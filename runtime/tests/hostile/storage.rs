//! Hostile probes: storage.

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
