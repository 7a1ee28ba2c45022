//! Hostile probes: the component file itself (its structure, before any
//! of its code runs).

use std::time::Duration;

use crate::neighbour::{NEIGHBOUR_POLICY, while_serving};
use crate::support::{fixture, runtime_with};

/// Appends `n` as an unsigned LEB128 (wasm-encoder's encoding of sizes).
fn leb(out: &mut Vec<u8>, n: usize) {
    use wasm_encoder::Encode as _;
    n.encode(out);
}

/// `inner` wrapped in `levels` components, each holding the next in a
/// nested-component section (10 bytes a level).
fn nested(inner: &[u8], levels: usize) -> Vec<u8> {
    let mut sizes = vec![inner.len()];
    for _ in 0..levels {
        let size = *sizes.last().expect("one");
        let mut header = Vec::new();
        leb(&mut header, size);
        sizes.push(9 + header.len() + size);
    }
    let mut out = Vec::with_capacity(*sizes.last().expect("one"));
    for size in sizes[..levels].iter().rev() {
        out.extend_from_slice(b"\0asm\x0d\0\x01\0\x04");
        leb(&mut out, *size);
    }
    out.extend_from_slice(inner);
    out
}

/// A 2 MB file nesting 200,000 components (the `fsprobe` fixture at
/// the bottom) once held a host core for hours in validation, whose cost
/// grows with the square of the depth (4,000 levels: 1 s): it is refused
/// at once by the nesting limit, and the neighbour keeps serving.
#[test]
fn a_file_nesting_components_too_deep_is_refused_at_once() {
    let runtime = std::sync::Arc::new(runtime_with(NEIGHBOUR_POLICY));
    let bytes = nested(fixture("fsprobe"), 200_000);
    let error = while_serving(&runtime, || {
        let (done, result) = std::sync::mpsc::channel();
        let runtime = std::sync::Arc::clone(&runtime);
        // Not scoped: without the limit the load runs on for hours.
        std::thread::spawn(move || {
            let _ = done.send(runtime.load(&bytes).map(|_| ()));
        });
        result
            .recv_timeout(Duration::from_secs(60))
            .expect("the load of a 2 MB file ends within 60 s")
            .expect_err("refused")
    });
    let text = error.to_string();
    assert!(text.contains("more than 100 levels deep"), "{text}");
}

/// Nesting within the limit still loads (`fsprobe`, 50 levels down).
#[test]
fn a_file_nesting_components_within_the_limit_loads() {
    let runtime = runtime_with(&format!(
        "[components.fsprobe]\ngrants = [\"fs:read:/data/**\"]\n{NEIGHBOUR_POLICY}"
    ));
    runtime
        .load(&nested(fixture("fsprobe"), 50))
        .expect("loads");
}
