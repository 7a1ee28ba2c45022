//! Who a component is.
//!
//! A component's name comes from its own manifest, which whoever built the
//! component wrote; grants, storage, mailboxes and requests all follow
//! that name. What the host can check is the component's bytes: a
//! [`ComponentDigest`] is the SHA-256 of the whole component file as
//! loaded (the bytes given to [`Runtime::load`](crate::Runtime::load),
//! custom sections and the manifest included), the same value
//! `sha256sum component.wasm` prints. A policy may pin a name to one
//! digest (`sha256 = ".."` in `[components.<name>]`), and the runtime never
//! lets two different components hold one name at once. See
//! `docs/decisions/containment-identity.md`.
//!
//! [`ComponentDigest`] and [`InvalidDigest`] live with the policy that
//! pins them, in [`airssys_contract::policy`].

pub use airssys_contract::policy::{ComponentDigest, InvalidDigest};

/// The name given to components without a manifest.
pub const UNANNOTATED_NAME: &str = "unannotated";
