//! Who a component is: its digest.
//!
//! A component's name comes from its own manifest, which whoever built the
//! component wrote; grants, storage, mailboxes and requests all follow
//! that name. What the host can check is the component's bytes: a
//! [`ComponentDigest`] is the SHA-256 of the whole component file as
//! loaded (the bytes given to the runtime's `Runtime::load`, custom
//! sections and the manifest included), the same value
//! `sha256sum component.wasm` prints. A policy may pin a name to one
//! digest (`sha256 = ".."` in `[components.<name>]`, a [`DigestPin`](super::DigestPin)),
//! and the runtime never lets two different components hold one name at
//! once. See `docs/decisions/containment-identity.md`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The SHA-256 digest of a component file, shown and parsed as 64
/// lower-case hexadecimal digits (as `sha256sum` prints it).
///
/// # Examples
///
/// ```
/// use airssys_contract::policy::ComponentDigest;
///
/// let digest = ComponentDigest::of(b"");
/// assert_eq!(
///     digest.to_string(),
///     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// assert_eq!(digest.to_string().parse::<ComponentDigest>(), Ok(digest));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ComponentDigest([u8; 32]);

impl ComponentDigest {
    /// The digest of `bytes`: the whole component file.
    pub fn of(bytes: &[u8]) -> ComponentDigest {
        ComponentDigest(Sha256::digest(bytes).into())
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ComponentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentDigest({self})")
    }
}

/// A `sha256` value that is not 64 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a sha256 digest is 64 hexadecimal digits, as `sha256sum component.wasm` prints them; {problem}"
)]
pub struct InvalidDigest {
    /// What is wrong with the text.
    problem: String,
}

impl FromStr for ComponentDigest {
    type Err = InvalidDigest;

    /// Parses 64 hexadecimal digits, in either case.
    fn from_str(text: &str) -> Result<ComponentDigest, InvalidDigest> {
        let invalid = |problem: String| InvalidDigest { problem };
        if let Some((at, bad)) = text.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "this one has {:?} at byte {at}",
                bad.escape_debug().to_string()
            )));
        }
        if text.len() != 64 {
            return Err(invalid(format!("this one has {} digits", text.len())));
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|e| invalid(e.to_string()))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|e| invalid(e.to_string()))?;
        }
        Ok(ComponentDigest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_either_case_and_refuses_anything_else() {
        let digest = ComponentDigest::of(b"abc");
        let hex = digest.to_string();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex.to_uppercase().parse::<ComponentDigest>(), Ok(digest));
        let err = hex[..63].parse::<ComponentDigest>().expect_err("invalid");
        assert!(err.to_string().contains("this one has 63 digits"), "{err}");
        let err = format!("sha256:{hex}")
            .parse::<ComponentDigest>()
            .expect_err("invalid");
        assert!(err.to_string().contains("\"s\" at byte 0"), "{err}");
        let err = format!("{}\u{1b}", &hex[..63])
            .parse::<ComponentDigest>()
            .expect_err("invalid");
        assert!(!err.to_string().contains('\u{1b}'), "{err}");
    }
}
