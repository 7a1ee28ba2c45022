//! Adversarial capability cases: one table of (allows, denies, request,
//! expected verdict). A request that does not parse counts as denied.

#![allow(clippy::unwrap_used)]

use airssys_contract::capability::{Capability, GrantSet, Request, Verdict};

use Verdict::{Allow as A, Deny as D};

/// (allow patterns, deny patterns, request, expected verdict)
type Case = (
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
    Verdict,
);

const DATA: &[&str] = &["fs:read:/data/**"];
const DATA_ONE: &[&str] = &["fs:read:/data/*"];
const EX: &[&str] = &["net:connect:*.example.com:443"];
const NONE: &[&str] = &[];

#[rustfmt::skip]
const CASES: &[Case] = &[
    // --- fs: normalization is strict; anything not normalized is denied
    (DATA, NONE, "fs:read:/data/../etc/passwd", D),
    (DATA, NONE, "fs:read:/data/x/../../etc/passwd", D),
    (DATA, NONE, "fs:read:/data/./x", D),
    (DATA, NONE, "fs:read:/data//x", D),
    (DATA, NONE, "fs:read:/data/x/", D),
    (DATA, NONE, "fs:read:data/x", D),
    (DATA, NONE, "fs:read:/data/x\0", D),
    (DATA, NONE, "fs:read:/data/x\0/../../etc", D),
    (DATA, NONE, "fs:read:/data\\..\\etc\\passwd", D),
    (DATA, NONE, "fs:read:/data/x\\y", D),
    (&["fs:read:/**"], NONE, "fs:read:/data\\x", D),
    (DATA, NONE, "fs:read:/data/%2e%2e/etc/passwd", A),
    (&["fs:read:/data/x"], NONE, "fs:read:/data/%2e%2e", D),
    (&["fs:read:/data/%2e%2e"], NONE, "fs:read:/data/..", D),
    (DATA, NONE, "fs:read:/data/%2E%2E%2Fetc", A),
    (DATA, NONE, "fs:read:/data/...", A),
    (DATA, NONE, "fs:read:/data/.hidden", A),
    // /data vs /data2 vs /data/
    (DATA, NONE, "fs:read:/data", D),
    (DATA, NONE, "fs:read:/data2", D),
    (DATA, NONE, "fs:read:/data2/x", D),
    (DATA, NONE, "fs:read:/data/", D),
    (&["fs:read:/data"], NONE, "fs:read:/data", A),
    (&["fs:read:/data"], NONE, "fs:read:/data/x", D),
    (&["fs:read:/data"], NONE, "fs:read:/data2", D),
    (&["fs:read:/data", "fs:read:/data/**"], NONE, "fs:read:/data", A),
    // ** at the edges: one or more components below, never the directory itself
    (DATA, NONE, "fs:read:/data/x", A),
    (DATA, NONE, "fs:read:/data/a/b/c/d", A),
    (&["fs:read:/**"], NONE, "fs:read:/", D),
    (&["fs:read:/**"], NONE, "fs:read:/etc/passwd", A),
    (&["fs:read:/"], NONE, "fs:read:/", A),
    (&["fs:read:/"], NONE, "fs:read:/etc", D),
    // * is one whole component and never crosses /
    (DATA_ONE, NONE, "fs:read:/data/x", A),
    (DATA_ONE, NONE, "fs:read:/data/x/y", D),
    (DATA_ONE, NONE, "fs:read:/data", D),
    (DATA_ONE, NONE, "fs:read:/data/*", A),
    (&["fs:read:/home/*/notes"], NONE, "fs:read:/home/ann/notes", A),
    (&["fs:read:/home/*/notes"], NONE, "fs:read:/home/ann/bob/notes", D),
    (&["fs:read:/home/*/notes"], NONE, "fs:read:/home/notes", D),
    // actions are separate
    (DATA, NONE, "fs:write:/data/x", D),
    (&["fs:read"], NONE, "fs:read:/anything/at/all", A),
    (&["fs:read"], NONE, "fs:read:/a/../b", D),
    // case matters for paths
    (DATA, NONE, "fs:read:/DATA/x", D),

    // --- net names
    (EX, NONE, "net:connect:api.example.com:443", A),
    (EX, NONE, "net:connect:a.b.example.com:443", A),
    (EX, NONE, "net:connect:example.com:443", D),
    (EX, NONE, "net:connect:evilexample.com:443", D),
    (EX, NONE, "net:connect:api.evilexample.com:443", D),
    (EX, NONE, "net:connect:example.com.evil.org:443", D),
    (EX, NONE, "net:connect:api.example.com.:443", D),
    (&["net:connect:example.com:443"], NONE, "net:connect:example.com.:443", D),
    (EX, NONE, "net:connect:API.EXAMPLE.COM:443", A),
    (&["net:connect:EXAMPLE.com:443"], NONE, "net:connect:example.COM:443", A),
    (&["net:connect:example.com:443"], NONE, "net:connect:www.example.com:443", D),
    (EX, NONE, "net:connect:api.example.com:80", D),
    (EX, NONE, "net:http:api.example.com:443", D),
    (EX, NONE, "net:connect:api.example.com", D),
    (EX, NONE, "net:connect:api_x.example.com:443", A),
    (EX, NONE, "net:connect:api%2eexample.com:443", D),
    // numeric host forms a resolver reads as loopback
    (&["net:connect:127.0.0.1:80"], NONE, "net:connect:127.0.0.1:80", A),
    (&["net:connect:*:80"], NONE, "net:connect:127.1:80", D),
    (&["net:connect:*:80"], NONE, "net:connect:2130706433:80", D),
    (&["net:connect:*:80"], NONE, "net:connect:0x7f.1:80", D),
    (&["net:connect:*:80"], NONE, "net:connect:0x7f000001:80", D),
    (&["net:connect:*:80"], NONE, "net:connect:017.0.0.1:80", D),
    (&["net:connect:*:80"], NONE, "net:connect:127.0.0.1.:80", D),
    (&["net:connect:*:80"], NONE, "net:connect:::1:80", D),
    (&["net:connect:*:80"], &["net:connect:127.0.0.0/8:*"], "net:connect:[::ffff:127.0.0.1]:80", D),
    (&["net:connect:127.0.0.1:80"], NONE, "net:connect:[::ffff:127.0.0.1]:80", A),
    (&["net:connect:127.0.0.1:80"], NONE, "net:connect:[::ffff:7f00:1]:80", A),
    (&["net:connect:[::1]:443"], NONE, "net:connect:[::1]:443", A),
    (&["net:connect:[::1]:443"], NONE, "net:connect:[0:0:0:0:0:0:0:1]:443", A),
    (&["net:connect:[::1]:443"], NONE, "net:connect:127.0.0.1:443", D),
    (&["net:connect:127.0.0.1:443"], NONE, "net:connect:[::1]:443", D),
    (&["net:connect:*:443"], &["net:connect:[::1]:*"], "net:connect:[::1]:443", D),
    (&["net:connect:localhost:443"], NONE, "net:connect:127.0.0.1:443", D),
    // CIDR edges
    (&["net:connect:10.0.0.0/8:*"], NONE, "net:connect:10.0.0.0:1", A),
    (&["net:connect:10.0.0.0/8:*"], NONE, "net:connect:10.255.255.255:1", A),
    (&["net:connect:10.0.0.0/8:*"], NONE, "net:connect:9.255.255.255:1", D),
    (&["net:connect:10.0.0.0/8:*"], NONE, "net:connect:11.0.0.0:1", D),
    (&["net:connect:192.168.1.0/24:*"], NONE, "net:connect:192.168.1.255:1", A),
    (&["net:connect:192.168.1.0/24:*"], NONE, "net:connect:192.168.2.0:1", D),
    (&["net:connect:[fd00::/8]:*"], NONE, "net:connect:[fd00::]:1", A),
    (&["net:connect:[fd00::/8]:*"], NONE, "net:connect:[fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", A),
    (&["net:connect:[fd00::/8]:*"], NONE, "net:connect:[fe00::]:1", D),
    (&["net:connect:[fd00::/8]:*"], NONE, "net:connect:[fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1", D),
    (&["net:connect:0.0.0.0/0:*"], NONE, "net:connect:[::1]:1", D),
    (&["net:connect:10.0.0.0/8:*"], NONE, "net:connect:ten.internal:1", D),
    // port ranges at both ends; port 0 and 65536
    (&["net:connect:db:5432-5434"], NONE, "net:connect:db:5431", D),
    (&["net:connect:db:5432-5434"], NONE, "net:connect:db:5432", A),
    (&["net:connect:db:5432-5434"], NONE, "net:connect:db:5434", A),
    (&["net:connect:db:5432-5434"], NONE, "net:connect:db:5435", D),
    (&["net:connect:db:*"], NONE, "net:connect:db:65535", A),
    (&["net:connect:db:*"], NONE, "net:connect:db:1", A),
    (&["net:connect:db:*"], NONE, "net:connect:db:0", D),
    (&["net:connect:db:*"], NONE, "net:connect:db:65536", D),
    (&["net:connect:db:*"], NONE, "net:connect:db:080", D),
    (&["net:connect:db:*"], NONE, "net:connect:db:-1", D),
    (&["net:connect:db:*"], NONE, "net:connect:db:80-81", D),

    // --- msg topics
    (&["msg:publish:orders.*"], NONE, "msg:publish:orders.new", A),
    (&["msg:publish:orders.*"], NONE, "msg:publish:orders", D),
    (&["msg:publish:orders.*"], NONE, "msg:publish:orders.a.b", D),
    (&["msg:publish:orders.*"], NONE, "msg:publish:ordersX.a", D),
    (&["msg:publish:orders.*"], NONE, "msg:publish:orders.", D),
    (&["msg:publish:orders.*"], NONE, "msg:publish:orders..a", D),
    (&["msg:publish:orders.>"], NONE, "msg:publish:orders.a.b", A),
    (&["msg:publish:orders.>"], NONE, "msg:publish:orders", D),
    (&["msg:publish:orders.>"], NONE, "msg:publish:orders.>", D),
    (&["msg:publish:>"], NONE, "msg:publish:anything.at.all", A),
    (&["msg:publish:orders.*"], NONE, "msg:subscribe:orders.new", D),
    (&["msg:publish:orders.*"], NONE, "msg:publish:orders.a b", D),
    (&["msg:request:billing"], NONE, "msg:request:billing", A),
    (&["msg:request:billing"], NONE, "msg:request:Billing", D),

    // --- kv keys
    (&["kv:read:cache/*"], NONE, "kv:read:cache/x", A),
    (&["kv:read:cache/*"], NONE, "kv:read:cache/x/y", D),
    (&["kv:read:cache/*"], NONE, "kv:read:cache", D),
    (&["kv:read:cache/*"], NONE, "kv:read:cache/", D),
    (&["kv:read:cache/*"], NONE, "kv:read:cache2/x", D),
    (&["kv:read:cache/**"], NONE, "kv:read:cache/x/y/z", A),
    (&["kv:read:cache/**"], NONE, "kv:read:cache", D),
    (&["kv:read:cache/**"], NONE, "kv:read:cache//x", D),
    (&["kv:read:cache/**"], NONE, "kv:read:/cache/x", D),
    (&["kv:read:*/config"], NONE, "kv:read:app/config", A),
    (&["kv:read:*/config"], NONE, "kv:read:app/sub/config", D),
    (&["kv:read:**"], NONE, "kv:read:any", A),

    // --- log, env, proc
    (&["log:write:warn"], NONE, "log:write:error", A),
    (&["log:write:warn"], NONE, "log:write:info", D),
    (&["log:write:warn"], NONE, "log:write", D),
    (&["env:read:APP_*"], NONE, "env:read:APP_MODE", A),
    (&["env:read:APP_*"], NONE, "env:read:APP_", D),
    (&["env:read:APP_*"], NONE, "env:read:LD_PRELOAD", D),
    (&["env:read:APP_*"], NONE, "env:read:app_mode", D),
    (&["proc:spawn:/usr/bin/git"], NONE, "proc:spawn:/usr/bin/git", A),
    (&["proc:spawn:/usr/bin/git"], NONE, "proc:spawn:/usr/bin/../bin/git", D),
    (&["proc:spawn:/usr/bin/git"], NONE, "proc:spawn:git", D),

    // --- deny overrides allow
    (DATA, &["fs:read:/data/secret/**"], "fs:read:/data/secret/key", D),
    (DATA, &["fs:read:/data/secret/**"], "fs:read:/data/secret", A),
    (DATA, &["fs:read:/data/secret/**"], "fs:read:/data/secrets", A),
    (&["fs:read"], &["fs:read:/etc/*"], "fs:read:/etc/shadow", D),
    (&["fs:read:/data/x"], &["fs:read"], "fs:read:/data/x", D),
    (DATA, &["fs:write"], "fs:read:/data/x", A),
    (EX, &["net:connect:admin.example.com:*"], "net:connect:ADMIN.example.com:443", D),
    (&["net:connect:*:*"], &["net:connect:10.0.0.0/8:*"], "net:connect:10.1.2.3:80", D),
    (&["net:connect:*:*"], &["net:connect:*:22"], "net:connect:host:22", D),
    (&["msg:publish:>"], &["msg:publish:admin.>"], "msg:publish:admin.reset", D),
    (&["kv:read:**"], &["kv:read:secrets/*"], "kv:read:secrets/token", D),
    (&["env:read:APP_*"], &["env:read:APP_SECRET"], "env:read:APP_SECRET", D),
    (NONE, NONE, "fs:read:/", D),
];

#[test]
fn adversarial_table() {
    assert!(CASES.len() >= 90, "only {} cases", CASES.len());
    let parse = |list: &[&str]| -> Vec<Capability> {
        list.iter()
            .map(|p| p.parse().unwrap_or_else(|e| panic!("pattern `{p}`: {e}")))
            .collect()
    };
    let mut failures = Vec::new();
    for (i, (allows, denies, request, expected)) in CASES.iter().enumerate() {
        let set = GrantSet::new(parse(allows), parse(denies));
        let got = match Request::parse(request) {
            Ok(r) => {
                let decision = set.check(&r);
                // The compiled set agrees with the patterns themselves.
                let naive = !set.denies().iter().any(|c| c.covers(&r))
                    && set.allows().iter().any(|c| c.covers(&r));
                assert_eq!(decision.is_allowed(), naive, "case {i}: index vs covers");
                decision.verdict
            }
            Err(_) => Verdict::Deny,
        };
        if got != *expected {
            failures.push(format!(
                "case {i}: {request:?} with allows {allows:?} denies {denies:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
