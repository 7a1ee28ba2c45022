//! Storage names as grants see them, with the `fsprobe` component's
//! `kv-*` commands: a bucket name is one segment (no `/`), and
//! `list-keys` leaves out keys a deny rule hides, page after page. Every
//! test runs on each storage backend (`support::backends`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use airssys_runtime::Runtime;
use support::ask;
use support::backends::Backend;

on_every_backend!(
    bucket_names_with_a_slash_are_refused,
    list_keys_hides_keys_under_a_denied_subtree,
    paging_stays_exact_when_keys_are_hidden,
);

fn runtime(backend: &dyn Backend, grants: &str, denies: &str) -> Runtime {
    backend.runtime(&format!(
        "[components.fsprobe]\ngrants = [{grants}]\ndenies = [{denies}]\n"
    ))
}

const COUNTER: &str = r#""kv:read:counter/**", "kv:write:counter/**", "kv:list:counter""#;

fn bucket_names_with_a_slash_are_refused(backend: &dyn Backend) {
    let rt = runtime(backend, r#""kv:read:**", "kv:write:**", "kv:list:*""#, "");
    let mut p = support::instance(&rt, "fsprobe");
    let reply = ask(&mut p, "kv-open:counter/secret");
    assert!(reply.starts_with("invalid-input: "), "{reply}");
    assert!(reply.contains("`counter/secret` contains `/`"), "{reply}");
    assert!(reply.contains("one segment"), "{reply}");
    // So `kv:write:counter/secret/x` can only mean key `secret/x` of
    // bucket `counter`.
    let reply = ask(&mut p, "kv-set:counter/secret|x=1");
    assert!(reply.starts_with("invalid-input: "), "{reply}");
    assert_eq!(ask(&mut p, "kv-set:counter|secret/x=1"), "ok");
    assert_eq!(ask(&mut p, "kv-get:counter|secret/x"), "value: 1");
    // The rules that held before still hold.
    for bad in ["", "/counter", "counter/", "a//b"] {
        let reply = ask(&mut p, &format!("kv-open:{bad}"));
        assert!(reply.starts_with("invalid-input: "), "{bad:?}: {reply}");
    }
    assert_eq!(ask(&mut p, "kv-open:counter.v2-x_y"), "opened");
}

fn list_keys_hides_keys_under_a_denied_subtree(backend: &dyn Backend) {
    let rt = runtime(backend, COUNTER, r#""kv:read:counter/secret/**""#);
    let storage = rt.storage();
    for key in ["a", "secret/k1", "secret/k2", "secretary", "z"] {
        storage
            .set("fsprobe", "counter", key, b"v", None)
            .expect("set");
    }
    let mut p = support::instance(&rt, "fsprobe");
    assert_eq!(ask(&mut p, "kv-keys:counter"), "pages 1: a,secretary,z");
    let reply = ask(&mut p, "kv-get:counter|secret/k1");
    assert!(reply.contains("`kv:read:counter/secret/**`"), "{reply}");
    // A deny on listing keys hides them as well.
    let rt = runtime(backend, COUNTER, r#""kv:list:counter/z""#);
    rt.storage()
        .set("fsprobe", "counter", "z", b"v", None)
        .expect("set");
    rt.storage()
        .set("fsprobe", "counter", "y", b"v", None)
        .expect("set");
    let mut p = support::instance(&rt, "fsprobe");
    assert_eq!(ask(&mut p, "kv-keys:counter"), "pages 1: y");
}

fn paging_stays_exact_when_keys_are_hidden(backend: &dyn Backend) {
    // `k0099/h/..` sorts between `k0099` and `k0100`: hidden keys
    // interleaved with the visible ones.
    let rt = runtime(backend, COUNTER, r#""kv:read:counter/*/h/**""#);
    let storage = rt.storage();
    let set = |key: &str| {
        storage
            .set("fsprobe", "counter", key, b"v", None)
            .expect("set");
    };
    let mut visible = Vec::new();
    for i in 0..200 {
        let key = format!("k{i:04}");
        set(&key);
        visible.push(key);
    }
    let hide_after = |i: usize, n: usize| {
        for j in 0..n {
            set(&format!("k{i:04}/h/{j:04}"));
        }
    };
    hide_after(10, 5);
    // More than a page of hidden keys right at the first page's end.
    hide_after(99, 300);
    hide_after(100, 1);
    // Only hidden keys after the last visible one: no empty third page.
    hide_after(199, 150);
    let mut p = support::instance(&rt, "fsprobe");
    let reply = ask(&mut p, "kv-keys:counter");
    let (pages, keys) = reply.split_once(": ").expect("pages");
    assert_eq!(pages, "pages 2");
    assert_eq!(keys.split(',').collect::<Vec<_>>(), visible);
    // The cursors are visible keys, never hidden ones.
    let first = ask(&mut p, "kv-page:counter|");
    assert!(first.ends_with(" | k0099"), "{first}");
    let second = ask(&mut p, "kv-page:counter|k0099");
    assert!(second.starts_with("k0100,k0101,"), "{second}");
    assert!(second.ends_with("k0199 | "), "{second}");
    // A hidden key given as the cursor tells nothing: the same page as
    // any cursor between the two visible keys around it.
    assert_eq!(ask(&mut p, "kv-page:counter|k0099/h/0150"), second);
    assert_eq!(ask(&mut p, "kv-page:counter|k0099~"), second);
}
