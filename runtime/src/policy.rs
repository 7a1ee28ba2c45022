//! The host policy: which capabilities each component may be granted, which
//! are denied outright, the configuration passed to `init`, the environment
//! a component may see, and its resource limits.
//!
//! The model and its TOML reader are pure logic and live in
//! [`airssys_contract::policy`] (feature `policy`); this module re-exports
//! all of it, so `airssys_runtime::policy::X` and `airssys_runtime::X` name
//! the same items as before. A policy is read from a TOML file
//! ([`Policy::from_toml_str`], [`Policy::from_toml_file`]) or built in code
//! ([`Policy::builder`]). It is deny by default: an empty policy grants
//! nothing, and components without a manifest are refused unless
//! [`PolicyBuilder::allow_unannotated`] (or `allow_unannotated = true`)
//! says otherwise.
//!
//! ```toml
//! allow_unannotated = false
//!
//! [defaults]
//! grants = ["log:write:info"]
//! denies = ["env:read:AWS_*"]
//! limits = { memory_bytes = 67108864, cpu_time_ms = 5000, storage_bytes = 16777216 }
//!
//! [components.counter]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! grants = ["kv:read:counter/*", "kv:write:counter/*"]
//! config = { start = "10" }
//! env = { APP_MODE = "test" }
//! mounts = { "/data" = "/srv/counter-data" }
//! ```
//!
//! See `docs/policy.md` for every key.

pub use airssys_contract::policy::*;
