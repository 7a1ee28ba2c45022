//! A fixed number of guard checks, for counting instructions with
//! callgrind (deterministic, unlike timings on a shared machine):
//!
//! ```sh
//! cargo build --profile bench -p airssys-contract --example guard_profile
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/guard_profile miss 100000
//! ```
//!
//! Run it with 0 and with N calls: the difference in `Collected`
//! instructions, divided by N, is the cost of one call. The modes mirror
//! `runtime/benches/host.rs`: a grant set of 1,000 `env:read` grants plus
//! two `kv` grants, the `environment.get-var` guard, and a context with a
//! decision cache whose `record` returns at once for allows (no audit
//! sink), as the runtime's host state does.
//!
//! - `hit`: `APP_MODE` every call (the cached path);
//! - `miss`: `VAR_1` .. `VAR_128` in turn, more names than the cache
//!   holds (the 128-name row);
//! - `uncached`: `APP_MODE` with no cache at all (the full check).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use airssys_contract::capability::{Action, Capability, Domain, GrantSet};
use airssys_contract::guard::{DecisionCache, GuardContext, GuardEvent, HostFnGuard, Outcome};

struct Ctx {
    grants: GrantSet,
    cache: Option<DecisionCache>,
    sink: bool,
}

impl GuardContext for Ctx {
    fn component(&self) -> &str {
        "bench"
    }
    fn grants(&self) -> &GrantSet {
        &self.grants
    }
    fn record(&self, event: &GuardEvent<'_>) {
        if matches!(event.outcome, Outcome::Allowed(_)) && !black_box(self.sink) {
            return;
        }
        black_box(event);
    }
    fn decisions(&self) -> Option<&DecisionCache> {
        self.cache.as_ref()
    }
}

static GET_VAR: HostFnGuard = HostFnGuard::new(
    "airssys:core/environment@1.0.0#get-var",
    "env:read",
    Domain::Env,
    Action::Read,
);

fn grants() -> GrantSet {
    let parse = |t: &str| Capability::parse(t).expect("valid grant");
    let allows = std::iter::once(parse("env:read:APP_MODE"))
        .chain((1..1000).map(|i| parse(&format!("env:read:VAR_{i}"))))
        .chain([parse("kv:read:data/*"), parse("kv:write:data/*")]);
    GrantSet::new(allows, [])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "miss".to_owned());
    let calls: usize = args.next().map_or(100_000, |n| n.parse().expect("a count"));
    let names: Vec<String> = (1..=128).map(|i| format!("VAR_{i}")).collect();
    let ctx = Ctx {
        grants: grants(),
        cache: (mode != "uncached").then(DecisionCache::new),
        sink: false,
    };
    // Warm up: the guard's scope and identity, the cache's slots.
    for name in &names {
        GET_VAR.authorize(&ctx, &[name.as_str()]).expect("granted");
    }
    let mut allowed = 0usize;
    for i in 0..calls {
        let name = match mode.as_str() {
            "miss" => names[i % names.len()].as_str(),
            _ => "APP_MODE",
        };
        allowed += usize::from(GET_VAR.authorize(&ctx, &[black_box(name)]).is_ok());
    }
    assert_eq!(allowed, calls);
    println!("{mode}: {calls} calls allowed");
}
