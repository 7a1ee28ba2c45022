//! A text's fingerprint: its length and two words read without a loop,
//! which for texts of up to 16 bytes hold every byte. The grant set's
//! exact-name tables key names with it, so a lookup takes a few loads
//! instead of hashing the name byte by byte and comparing it through a
//! pointer.

/// The multiplier of rustc's `FxHasher`.
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// A second odd constant (digits of pi), so that a print whose tail and
/// length are zero still multiplies by something other than zero.
const SEED_LOW: u64 = 0x24_3f_6a_88_85_a3_08_d3;

/// A text's length with words read from its ends: for up to 16 bytes,
/// equal prints mean equal texts (see [`Print::of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Print {
    /// The length in bytes.
    pub(crate) len: usize,
    /// The first eight bytes (shorter texts: see [`Print::of`]).
    pub(crate) head: u64,
    /// The last eight bytes, for texts of at least eight bytes; else 0.
    pub(crate) tail: u64,
}

impl Print {
    /// The print of `bytes`:
    ///
    /// - 8 bytes or more: the first and the last eight (overlapping below
    ///   16 bytes);
    /// - 4 to 7 bytes: the first and the last four, in one word;
    /// - 1 to 3 bytes: the first, the middle and the last byte;
    /// - none: zeros.
    ///
    /// With the length, each form covers every byte of a text of up to 16
    /// bytes, so equal prints of such texts mean equal texts.
    #[inline(always)]
    pub(crate) fn of(bytes: &[u8]) -> Print {
        let len = bytes.len();
        let (head, tail) =
            if let (Some(h), Some(t)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
                (u64::from_le_bytes(*h), u64::from_le_bytes(*t))
            } else if let (Some(h), Some(t)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
                let (h, t) = (u32::from_le_bytes(*h), u32::from_le_bytes(*t));
                (u64::from(h) | (u64::from(t) << 32), 0)
            } else {
                let byte = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
                let packed = match len {
                    0 => 0,
                    _ => byte(0) | (byte(len / 2) << 8) | (byte(len - 1) << 16),
                };
                (packed, 0)
            };
        Print { len, head, tail }
    }

    /// Whether the print alone decides equality (at most 16 bytes).
    #[inline]
    pub(crate) fn is_whole(&self) -> bool {
        self.len <= 16
    }

    /// A hash of the print whose low bits depend on every bit it holds:
    /// one full 64 × 64 → 128-bit multiply of its two halves, folded (a
    /// plain multiply carries only upwards, so names differing in their
    /// last bytes would share their low bits).
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        let product =
            u128::from(self.head ^ SEED) * u128::from(self.tail ^ self.len as u64 ^ SEED_LOW);
        (product as u64) ^ ((product >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every text of up to 16 bytes over a small alphabet (every length,
    /// every position changed) has its own print; longer texts share a
    /// print only when their ends agree.
    #[test]
    fn prints_of_short_texts_are_unique() {
        let mut seen = std::collections::HashMap::new();
        for len in 0..=16usize {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let mut texts = vec![base.clone()];
            for at in 0..len {
                for b in [0u8, b'Z', 0xff] {
                    let mut t = base.clone();
                    t[at] = b;
                    texts.push(t);
                }
            }
            for t in texts {
                if let Some(other) = seen.insert(Print::of(&t), t.clone()) {
                    assert_eq!(other, t, "two texts with one print");
                }
            }
        }
        // Exhaustive over three bytes of a small alphabet, all lengths 0..=7.
        let alphabet = [0u8, b'a', b'b', 0xff];
        let mut seen = std::collections::HashMap::new();
        for len in 0..=7usize {
            let count = alphabet.len().pow(len.min(5) as u32);
            for n in 0..count {
                let t: Vec<u8> = (0..len)
                    .map(|i| alphabet[(n / alphabet.len().pow(i.min(4) as u32)) % alphabet.len()])
                    .collect();
                if let Some(other) = seen.insert(Print::of(&t), t.clone()) {
                    assert_eq!(other, t, "two texts with one print");
                }
            }
        }
        // The hash spreads names that differ only in their last bytes
        // (`VAR_1` .. `VAR_999`) over a table of twice their number.
        let homes: std::collections::HashSet<u64> = (1..1000)
            .map(|i| Print::of(format!("VAR_{i}").as_bytes()).hash() & 2047)
            .collect();
        assert!(homes.len() > 700, "{} home slots", homes.len());
        let long = b"abcdefgh_middle_ijklmnop";
        let mut other = *long;
        other[10] = b'X';
        assert_eq!(Print::of(long), Print::of(&other));
        assert!(!Print::of(long).is_whole());
    }
}
