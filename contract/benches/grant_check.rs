//! `GrantSet::check` on allowed requests at 1, 10, 100 and 1,000 grants,
//! with one small `String` allocation measured in the same run as the
//! yardstick. Targets: a check costs at most 2x the allocation, and 1,000
//! grants at most 1.2x one grant. `parse/*` measures validating the
//! request (`Request::parse`), which a host call does before each check.

use std::hint::black_box;

use airssys_contract::capability::{Capability, GrantSet, Request};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// (the grant that allows it, the request)
const TARGETS: [(&str, &str, &str); 3] = [
    (
        "fs",
        "fs:read:/srv/app/**",
        "fs:read:/srv/app/config/settings.toml",
    ),
    (
        "net",
        "net:connect:*.api.example.com:443",
        "net:connect:eu.api.example.com:443",
    ),
    ("kv", "kv:read:counter/*", "kv:read:counter/x"),
];

/// A realistic mix of grants across domains, none of which covers the
/// benchmarked requests.
fn filler(i: usize) -> String {
    match i % 9 {
        0 => format!("fs:read:/srv/app{i}/**"),
        1 => format!("fs:write:/var/data{i}/*"),
        2 => format!("net:connect:svc{i}.internal:8000-8100"),
        3 => format!("net:connect:10.{}.{}.0/24:5432", i % 256, i / 256),
        4 => format!("net:connect:*.tenant{i}.example.com:443"),
        5 => format!("kv:read:bucket{i}/**"),
        6 => format!("kv:write:cache{i}/*"),
        7 => format!("msg:publish:events{i}.>"),
        _ => format!("env:read:APP{i}_*"),
    }
}

fn grant_set(target: &str, size: usize) -> GrantSet {
    let parse = |t: &str| Capability::parse(t).expect("benchmark grants are valid");
    let allows = std::iter::once(parse(target)).chain((1..size).map(|i| parse(&filler(i))));
    let denies = [
        parse("fs:read:/srv/app/secret/**"),
        parse("kv:read:counter/secret"),
    ];
    GrantSet::new(allows, denies)
}

fn bench(c: &mut Criterion) {
    c.bench_function("yardstick/string_from", |b| {
        b.iter(|| String::from(black_box("kv:read:counter/x")))
    });
    let mut group = c.benchmark_group("parse");
    for (name, _, request) in TARGETS {
        group.bench_function(name, |b| b.iter(|| Request::parse(black_box(request))));
    }
    group.finish();
    for (name, grant, request) in TARGETS {
        let request = Request::parse(request).expect("benchmark request is valid");
        let mut group = c.benchmark_group(format!("check/{name}"));
        for size in [1, 10, 100, 1000] {
            let set = grant_set(grant, size);
            assert!(set.check(&request).is_allowed(), "{name} at {size}");
            group.bench_with_input(BenchmarkId::from_parameter(size), &set, |b, set| {
                b.iter(|| black_box(set).check(black_box(&request)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
