//! Signatures over a component's code and manifest (ed25519).
//!
//! `airssys sign` appends one [`SIGNATURE_SECTION`] custom section at the
//! component's top level. It holds the signer's public key, two SHA-256
//! digests and an ed25519 signature over both:
//!
//! - the **code digest**: the whole file with its top-level
//!   `airssys:signature` sections left out (so code, manifest and every
//!   other section, byte for byte);
//! - the **manifest digest**: the component's manifest in its binary
//!   encoding (`Manifest::encode`), or of nothing when it has none.
//!
//! [`verify`] checks the signature against the digests it carries, then
//! the digests against the file, so a refusal names what changed: the
//! manifest, or the code. A host policy lists the public keys it trusts
//! (`signed_by`, `docs/policy.md`).
//!
//! Section layout (version 1): `0x01`, public key (32 bytes), code digest
//! (32), manifest digest (32), signature (64) over
//! `b"airssys-signature-v1\0" ‖ code digest ‖ manifest digest`.
//!
//! Keys are files of 64 hex digits: the 32-byte secret seed
//! ([`SecretKey`]), the 32-byte public key ([`PublicKey`]). Neither is
//! ever printed; a public key is shown by its fingerprint.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};
use wasmparser::{BinaryReader, Parser};

use crate::manifest::{Manifest, put_leb};

/// The name of the custom section holding a signature.
pub const SIGNATURE_SECTION: &str = "airssys:signature";

/// The version byte of the section layout.
const VERSION: u8 = 1;
/// What is signed, before the two digests.
const CONTEXT: &[u8] = b"airssys-signature-v1\0";
/// Section contents: version, key, two digests, signature.
const SECTION_LEN: usize = 1 + 32 + 32 + 32 + 64;

/// Why a component's signature does not verify, or a key does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The component carries no `airssys:signature` section.
    #[error(
        "the component is not signed (no `airssys:signature` section); sign it with `airssys sign COMPONENT.wasm --key KEY`"
    )]
    Unsigned,
    /// The component carries more than one signature section.
    #[error(
        "the component carries {0} `airssys:signature` sections; sign it again (signing replaces them)"
    )]
    Several(usize),
    /// The section is not a version-1 signature.
    #[error("the `airssys:signature` section is malformed: {0}")]
    Malformed(String),
    /// Signed by a key the verifier does not trust.
    #[error("signed by key {signer}, which is not one of the trusted keys ({})", trusted.join(", "))]
    Untrusted {
        /// The signer's fingerprint.
        signer: String,
        /// The fingerprints of the trusted keys.
        trusted: Vec<String>,
    },
    /// The signature is not a valid signature of its digests.
    #[error("the signature by key {signer} does not verify: the section was forged or damaged")]
    BadSignature {
        /// The signer's fingerprint.
        signer: String,
    },
    /// The manifest changed after signing.
    #[error(
        "the manifest changed after it was signed by key {signer}: {now}; sign the component again after review"
    )]
    ManifestChanged {
        /// The signer's fingerprint.
        signer: String,
        /// The manifest now (`name version`, or `no manifest`).
        now: String,
    },
    /// The code (or another section) changed after signing.
    #[error(
        "the component's code changed after it was signed by key {signer} (its manifest did not); sign it again after review"
    )]
    CodeChanged {
        /// The signer's fingerprint.
        signer: String,
    },
    /// The bytes are not a wasm binary, or its manifest does not read.
    #[error("{0}")]
    Wasm(String),
    /// A key is not 64 hex digits.
    #[error("not a key: {0}")]
    Key(String),
}

/// An ed25519 secret key (its 32-byte seed). Never printed.
pub struct SecretKey(SigningKey);

/// An ed25519 public key. `Display` and `FromStr` use 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

/// A signature read from a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Who signed.
    pub signer: PublicKey,
    /// The signed code digest.
    pub code_digest: [u8; 32],
    /// The signed manifest digest.
    pub manifest_digest: [u8; 32],
    signature: [u8; 64],
}

impl SecretKey {
    /// A key from a 32-byte seed (e.g. from the operating system's random
    /// source).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// Reads a key file's text: 64 hex digits (surrounding whitespace
    /// ignored).
    ///
    /// # Errors
    ///
    /// [`SignatureError::Key`] when it is not 64 hex digits.
    pub fn from_hex(text: &str) -> Result<SecretKey, SignatureError> {
        Ok(SecretKey::from_seed(hex32(text)?))
    }

    /// The key file's text: the seed as 64 hex digits and a newline.
    pub fn to_hex(&self) -> String {
        format!("{}\n", hex(self.0.as_bytes()))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public_key().fingerprint())
    }
}

impl PublicKey {
    /// The first 16 hex digits of the SHA-256 of the key: how messages
    /// name it.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        format!("ed25519:{}", &hex(&digest)[..16])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl FromStr for PublicKey {
    type Err = SignatureError;

    /// 64 hex digits (surrounding whitespace ignored).
    fn from_str(text: &str) -> Result<PublicKey, SignatureError> {
        let bytes = hex32(text)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| SignatureError::Key("not a valid ed25519 public key".to_owned()))
    }
}

/// `component` signed by `key`: every top-level `airssys:signature`
/// section is removed and one new section appended. Nothing else changes.
///
/// # Errors
///
/// [`SignatureError::Wasm`] when `component` is not a wasm binary or its
/// manifest does not read.
pub fn sign(component: &[u8], key: &SecretKey) -> Result<Vec<u8>, SignatureError> {
    let (mut out, _) = split(component)?;
    let code_digest: [u8; 32] = Sha256::digest(&out).into();
    let manifest_digest = manifest_digest(component)?;
    let signature = key.0.sign(&message(&code_digest, &manifest_digest));
    let mut contents = Vec::with_capacity(SECTION_LEN);
    contents.push(VERSION);
    contents.extend_from_slice(key.public_key().0.as_bytes());
    contents.extend_from_slice(&code_digest);
    contents.extend_from_slice(&manifest_digest);
    contents.extend_from_slice(&signature.to_bytes());
    let mut payload = Vec::new();
    put_leb(&mut payload, SIGNATURE_SECTION.len());
    payload.extend_from_slice(SIGNATURE_SECTION.as_bytes());
    payload.extend_from_slice(&contents);
    out.push(0);
    put_leb(&mut out, payload.len());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The signature `component` carries, if any.
///
/// # Errors
///
/// [`SignatureError::Several`] or [`SignatureError::Malformed`] for a
/// section that cannot be used, [`SignatureError::Wasm`] for a binary that
/// does not parse.
pub fn read(component: &[u8]) -> Result<Option<Signature>, SignatureError> {
    let (_, sections) = split(component)?;
    match sections.as_slice() {
        [] => Ok(None),
        [one] => parse(one).map(Some),
        many => Err(SignatureError::Several(many.len())),
    }
}

/// Checks that `component` is signed by one of `trusted` and that neither
/// its manifest nor its code changed since; returns the signer.
///
/// # Errors
///
/// A [`SignatureError`] naming what does not verify.
pub fn verify(component: &[u8], trusted: &[PublicKey]) -> Result<PublicKey, SignatureError> {
    let Some(sig) = read(component)? else {
        return Err(SignatureError::Unsigned);
    };
    let signer = sig.signer.fingerprint();
    if !trusted.contains(&sig.signer) {
        return Err(SignatureError::Untrusted {
            signer,
            trusted: trusted.iter().map(PublicKey::fingerprint).collect(),
        });
    }
    let signature = ed25519_dalek::Signature::from_bytes(&sig.signature);
    sig.signer
        .0
        .verify(&message(&sig.code_digest, &sig.manifest_digest), &signature)
        .map_err(|_| SignatureError::BadSignature {
            signer: signer.clone(),
        })?;
    if manifest_digest(component)? != sig.manifest_digest {
        let now = match Manifest::from_wasm(component) {
            Ok(Some(m)) => format!("it is now `{}` {}", m.name, m.version),
            _ => "it now has none".to_owned(),
        };
        return Err(SignatureError::ManifestChanged { signer, now });
    }
    let (unsigned, _) = split(component)?;
    let code_digest: [u8; 32] = Sha256::digest(&unsigned).into();
    if code_digest != sig.code_digest {
        return Err(SignatureError::CodeChanged { signer });
    }
    Ok(sig.signer)
}

fn message(code: &[u8; 32], manifest: &[u8; 32]) -> Vec<u8> {
    [CONTEXT, code, manifest].concat()
}

fn manifest_digest(component: &[u8]) -> Result<[u8; 32], SignatureError> {
    let manifest =
        Manifest::from_wasm(component).map_err(|e| SignatureError::Wasm(e.to_string()))?;
    let encoded = manifest.map(|m| m.encode()).unwrap_or_default();
    Ok(Sha256::digest(&encoded).into())
}

fn parse(contents: &[u8]) -> Result<Signature, SignatureError> {
    if contents.len() != SECTION_LEN || contents[0] != VERSION {
        return Err(SignatureError::Malformed(format!(
            "expected {SECTION_LEN} bytes of version {VERSION}, found {} bytes{}",
            contents.len(),
            contents
                .first()
                .map(|v| format!(" of version {v}"))
                .unwrap_or_default()
        )));
    }
    let take = |from: usize| -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(&contents[from..from + 32]);
        out
    };
    let signer = VerifyingKey::from_bytes(&take(1))
        .map(PublicKey)
        .map_err(|_| SignatureError::Malformed("the public key is not valid".to_owned()))?;
    let mut signature = [0; 64];
    signature.copy_from_slice(&contents[97..161]);
    Ok(Signature {
        signer,
        code_digest: take(33),
        manifest_digest: take(65),
        signature,
    })
}

/// The binary without its top-level signature sections, and the contents
/// of those sections. Sections are walked by their headers, so everything
/// else is copied as it is.
fn split(bytes: &[u8]) -> Result<(Vec<u8>, Vec<&[u8]>), SignatureError> {
    let wasm = |e: wasmparser::BinaryReaderError| SignatureError::Wasm(e.to_string());
    if !Parser::is_component(bytes) && !Parser::is_core_wasm(bytes) {
        return Err(SignatureError::Wasm(
            "not a WebAssembly component (no wasm header)".to_owned(),
        ));
    }
    let mut reader = BinaryReader::new(bytes, 0);
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(reader.read_bytes(8).map_err(wasm)?);
    let mut sections = Vec::new();
    while !reader.eof() {
        let start = reader.current_position();
        let id = reader.read_u8().map_err(wasm)?;
        let size = reader.read_var_u32().map_err(wasm)? as usize;
        let payload = reader.read_bytes(size).map_err(wasm)?;
        if id == 0 {
            let mut name = BinaryReader::new(payload, 0);
            if name.read_string().ok() == Some(SIGNATURE_SECTION) {
                sections.push(&payload[name.current_position()..]);
                continue;
            }
        }
        out.extend_from_slice(&bytes[start..reader.current_position()]);
    }
    Ok((out, sections))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex32(text: &str) -> Result<[u8; 32], SignatureError> {
    let text = text.trim();
    let bad = || SignatureError::Key("expected 64 hex digits".to_owned());
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal component: the header and one custom section.
    fn component(extra: &[u8]) -> Vec<u8> {
        let mut out = b"\0asm\x0d\x00\x01\x00".to_vec();
        let mut payload = Vec::new();
        put_leb(&mut payload, 4);
        payload.extend_from_slice(b"code");
        payload.extend_from_slice(extra);
        out.push(0);
        put_leb(&mut out, payload.len());
        out.extend_from_slice(&payload);
        out
    }

    fn manifest() -> Manifest {
        Manifest {
            name: "counter".into(),
            version: "0.1.0".into(),
            requires: vec![
                "kv:read:counter/*"
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            ],
            optional: vec![],
        }
    }

    #[test]
    fn a_signed_component_verifies_and_every_change_is_named() {
        let key = SecretKey::from_seed([7; 32]);
        let other = SecretKey::from_seed([8; 32]);
        let original = manifest()
            .attach(&component(b"v1"), false)
            .unwrap_or_else(|e| panic!("{e}"));
        let signed = sign(&original, &key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verify(&signed, &[key.public_key()]), Ok(key.public_key()));
        // Signing again replaces the signature.
        let twice = sign(&signed, &key).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(twice, signed);

        assert_eq!(
            verify(&original, &[key.public_key()]),
            Err(SignatureError::Unsigned)
        );
        assert!(matches!(
            verify(&signed, &[other.public_key()]),
            Err(SignatureError::Untrusted { .. })
        ));

        let mut widened = manifest();
        widened.requires = vec!["kv:read:**".parse().unwrap_or_else(|e| panic!("{e}"))];
        widened.version = "0.1.0".into();
        let tampered = widened
            .attach(&signed, true)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = verify(&tampered, &[key.public_key()]).expect_err("manifest changed");
        assert!(
            matches!(err, SignatureError::ManifestChanged { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("the manifest changed after it was signed by key ed25519:")
        );

        // The same manifest over other code.
        let sig_section = &signed[original.len()..];
        let other_code = manifest()
            .attach(&component(b"v2"), false)
            .unwrap_or_else(|e| panic!("{e}"));
        let swapped = [other_code.as_slice(), sig_section].concat();
        let err = verify(&swapped, &[key.public_key()]).expect_err("code changed");
        assert!(matches!(err, SignatureError::CodeChanged { .. }), "{err}");

        // A flipped bit in the signature itself.
        let mut forged = signed.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert!(matches!(
            verify(&forged, &[key.public_key()]),
            Err(SignatureError::BadSignature { .. })
        ));
    }

    #[test]
    fn keys_round_trip_and_bad_keys_are_refused() {
        let key = SecretKey::from_seed([1; 32]);
        let again = SecretKey::from_hex(&key.to_hex()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.public_key(), key.public_key());
        let public: PublicKey = key
            .public_key()
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(public, key.public_key());
        assert!("abc".parse::<PublicKey>().is_err());
        assert!(SecretKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(!format!("{key:?}").contains(&key.to_hex()[..16]));
    }
}
