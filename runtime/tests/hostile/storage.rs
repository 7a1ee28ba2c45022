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
