//! The binary form of a manifest, as stored in the `airssys:manifest`
//! custom section.
//!
//! ```text
//! magic        4 bytes  "ASYM"
//! version      1 byte   FORMAT_VERSION
//! name         string
//! version      string
//! requires     u32 count, then count strings
//! optional     u32 count, then count strings
//! string       u32 byte length, then UTF-8 bytes
//! ```
//!
//! Integers are little-endian. Capabilities are stored as their canonical
//! text and parsed again on decode, so a decoded manifest obeys every rule
//! a parsed one does. Nothing may follow the last field.

use super::{
    MAX_CAPABILITIES, Manifest, ManifestError, check_capability_len, check_name, check_version,
    shown, too_many_capabilities,
};
use crate::capability::Capability;

/// The first bytes of an encoded manifest.
pub const MAGIC: [u8; 4] = *b"ASYM";
/// The binary format version this crate writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// The largest encoded manifest [`Manifest::decode`] accepts (1 MiB).
pub const MAX_ENCODED_LEN: usize = 1 << 20;

impl Manifest {
    /// Encodes the manifest for the `airssys:manifest` custom section.
    ///
    /// # Panics
    ///
    /// Never for a manifest whose strings are shorter than 4 GiB.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        put_str(&mut out, &self.name);
        put_str(&mut out, &self.version);
        for list in [&self.requires, &self.optional] {
            put_u32(&mut out, list.len());
            for cap in list {
                put_str(&mut out, &cap.to_string());
            }
        }
        out
    }

    /// Decodes a manifest written by [`Manifest::encode`].
    ///
    /// # Errors
    ///
    /// [`ManifestError::Decode`] with the byte offset of the problem: wrong
    /// magic or format version, truncated or oversized input, invalid
    /// UTF-8, an invalid, over-long or reserved name, an invalid version,
    /// more than [`MAX_CAPABILITIES`]
    /// capabilities (refused before any of them is read), an invalid or
    /// over-long capability, a duplicate, or trailing bytes. Never panics,
    /// whatever the input; takes time linear in its length.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(decode_error(
                MAX_ENCODED_LEN,
                format!(
                    "{} bytes is more than the limit of {MAX_ENCODED_LEN}",
                    bytes.len()
                ),
            ));
        }
        let mut r = Reader { bytes, pos: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(decode_error(0, "wrong magic bytes".to_owned()));
        }
        let version = r.take(1)?[0];
        if version != FORMAT_VERSION {
            return Err(decode_error(
                4,
                format!("format version {version} is not supported (expected {FORMAT_VERSION})"),
            ));
        }
        let at = r.pos;
        let name = r.string()?.to_owned();
        check_name(&name).map_err(|m| decode_error(at, m))?;
        let at = r.pos;
        let version = r.string()?.to_owned();
        check_version(&version).map_err(|m| decode_error(at, m))?;
        let requires = r.capabilities(MAX_CAPABILITIES)?;
        let optional = r.capabilities(MAX_CAPABILITIES - requires.len())?;
        if r.pos != bytes.len() {
            return Err(decode_error(
                r.pos,
                format!("{} unexpected trailing bytes", bytes.len() - r.pos),
            ));
        }
        let manifest = Manifest {
            name,
            version,
            requires,
            optional,
        };
        manifest.validate().map_err(|e| match e {
            ManifestError::Invalid(message) => decode_error(0, message),
            other => other,
        })?;
        Ok(manifest)
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("manifest fields are shorter than 4 GiB");
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn decode_error(offset: usize, message: String) -> ManifestError {
    ManifestError::Decode { offset, message }
}

/// A bounds-checked cursor over the encoded bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ManifestError> {
        let rest = &self.bytes[self.pos..];
        if rest.len() < n {
            return Err(decode_error(
                self.pos,
                format!("truncated: {n} bytes needed, {} left", rest.len()),
            ));
        }
        let (head, _) = rest.split_at(n);
        self.pos += n;
        Ok(head)
    }

    fn u32(&mut self) -> Result<usize, ManifestError> {
        let raw = self.take(4)?;
        let n = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        usize::try_from(n).map_err(|_| decode_error(self.pos - 4, "length overflows".to_owned()))
    }

    fn string(&mut self) -> Result<&'a str, ManifestError> {
        let len = self.u32()?;
        let start = self.pos;
        let raw = self.take(len)?;
        std::str::from_utf8(raw).map_err(|e| {
            decode_error(
                start + e.valid_up_to(),
                "string is not valid UTF-8".to_owned(),
            )
        })
    }

    /// A list of at most `room` capabilities (what is left of
    /// [`MAX_CAPABILITIES`]).
    fn capabilities(&mut self, room: usize) -> Result<Vec<Capability>, ManifestError> {
        let count_at = self.pos;
        let count = self.u32()?;
        // Each capability takes at least 4 bytes, so a larger count is
        // corrupt; checking first keeps a bogus count from allocating.
        if count > (self.bytes.len() - self.pos) / 4 {
            return Err(decode_error(
                count_at,
                format!("capability count {count} exceeds the remaining bytes"),
            ));
        }
        if count > room {
            return Err(decode_error(
                count_at,
                too_many_capabilities((MAX_CAPABILITIES - room).saturating_add(count)),
            ));
        }
        let mut caps = Vec::with_capacity(count);
        for _ in 0..count {
            let at = self.pos;
            let text = self.string()?;
            check_capability_len(text).map_err(|m| decode_error(at, m))?;
            let cap = Capability::parse(text).map_err(|e| {
                decode_error(at, format!("invalid capability `{}`: {e}", shown(text)))
            })?;
            caps.push(cap);
        }
        Ok(caps)
    }
}
