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
