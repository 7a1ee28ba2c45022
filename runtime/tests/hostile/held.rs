//! Hostile probes: results the host holds for a component
//! (`limits.held_bytes`, `limits.max_pending`, `limits.max_handles`).

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{ask, fixture, runtime_with};

/// A 1 MiB file under a mount, and the policy that lets `fsprobe` read it.
fn one_mib_file(limits: &str) -> (tempfile::TempDir, airssys_runtime::Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("big.bin"), vec![7u8; 1 << 20]).expect("write");
    let policy = format!(
        "[components.fsprobe]\ngrants = [\"fs:read:/data/**\"]\nmounts = {{ \"/data\" = \"{}\" \
         }}\nlimits = {{ {limits} }}\n{NEIGHBOUR_POLICY}",
        dir.path().display()
    );
    (dir, runtime_with(&policy))
}

/// 3,000 uncollected 1 MiB reads once took the host to 3.1 GB: now the
/// 17th is refused by the default 16 MiB budget, naming the limit.
#[test]
fn uncollected_reads_are_bounded_by_held_bytes() {
    let (_dir, runtime) = one_mib_file("memory_bytes = 67108864");
    let reply = while_serving(&runtime, || {
        let mut flood = runtime
            .load(fixture("fsprobe"))
            .expect("fsprobe loads")
            .instantiate()
            .expect("fsprobe starts");
        ask(&mut flood, "read-flood:/data/big.bin:3000")
    });
    assert!(
        reply.starts_with("refused after 16: quota-exceeded: held-bytes limit exceeded"),
        "{reply}"
    );
    assert!(reply.contains("limits.held_bytes"), "{reply}");
}

/// The count of pending results is capped too, whatever their size.
#[test]
fn uncollected_reads_are_bounded_by_max_pending() {
    let (_dir, runtime) = one_mib_file("max_pending = 5, held_bytes = 1073741824");
    let mut flood = runtime
        .load(fixture("fsprobe"))
        .expect("fsprobe loads")
        .instantiate()
        .expect("fsprobe starts");
    let reply = ask(&mut flood, "read-flood:/data/big.bin:100");
    assert!(
        reply.starts_with("refused after 5: quota-exceeded: pending-operations limit exceeded"),
        "{reply}"
    );
    assert!(reply.contains("limits.max_pending"), "{reply}");
    // Dropping them gives the slots back.
    assert_eq!(ask(&mut flood, "release:"), "released");
    let reply = ask(&mut flood, "read-flood:/data/big.bin:5");
    assert_eq!(reply, "started 5");
}
