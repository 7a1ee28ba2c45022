//! Environment variable names: the resource of `env:read`.

use std::fmt;

use super::error::{CapabilityError, Result};

/// An `env` pattern: one variable or every variable with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnvPattern {
    /// Exactly this variable (case-sensitive).
    Name(String),
    /// `PREFIX_*`: variables that start with the prefix and have at least
    /// one more character. Stores the prefix without the `*`.
    Prefix(String),
}

impl EnvPattern {
    pub(crate) fn parse(text: &str) -> Result<EnvPattern> {
        match text.strip_suffix('*') {
            Some(prefix) => {
                if prefix.is_empty() {
                    return Err(CapabilityError::new(
                        0,
                        1,
                        "expected a prefix before `*`; write `env:read` for every variable",
                    ));
                }
                check_chars(prefix, true)?;
                Ok(EnvPattern::Prefix(prefix.to_owned()))
            }
            None => {
                check_name(text)?;
                Ok(EnvPattern::Name(text.to_owned()))
            }
        }
    }

    pub(crate) fn matches(&self, name: &str) -> bool {
        match self {
            EnvPattern::Name(n) => n == name,
            EnvPattern::Prefix(p) => name.len() > p.len() && name.starts_with(p.as_str()),
        }
    }

    pub(crate) fn is_subset_of(&self, other: &EnvPattern) -> bool {
        match (self, other) {
            (EnvPattern::Name(a), _) => other.matches(a),
            (EnvPattern::Prefix(a), EnvPattern::Prefix(b)) => a.starts_with(b.as_str()),
            (EnvPattern::Prefix(_), EnvPattern::Name(_)) => false,
        }
    }
}

impl fmt::Display for EnvPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvPattern::Name(n) => f.write_str(n),
            EnvPattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// Validates a variable name: `[A-Za-z_][A-Za-z0-9_]*`.
#[inline]
pub(crate) fn check_name(text: &str) -> Result<()> {
    // Checked on every guarded `env` call: one table lookup per byte
    // accepts the usual name; the error is described out of line.
    if is_plain_name(text.as_bytes()) {
        return Ok(());
    }
    name_error(text)
}

/// Why `text` is no variable name.
#[cold]
#[inline(never)]
fn name_error(text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(CapabilityError::new(
            0,
            0,
            "expected an environment variable name",
        ));
    }
    check_chars(text, false)
}

/// Bytes allowed in a variable name: ASCII letters, digits and `_`.
const NAME_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'_';
        b += 1;
    }
    table
};

/// Whether `name` is a valid variable name (`[A-Za-z_][A-Za-z0-9_]*`);
/// `false` also for the empty name.
#[inline]
pub(crate) fn is_plain_name(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            !first.is_ascii_digit()
                && NAME_BYTES[usize::from(*first)]
                && rest.iter().all(|b| NAME_BYTES[usize::from(*b)])
        }
        None => false,
    }
}

fn check_chars(text: &str, prefix: bool) -> Result<()> {
    for (i, c) in text.char_indices() {
        let ok = c.is_ascii_alphanumeric() || c == '_';
        if !ok || (i == 0 && c.is_ascii_digit()) {
            let what = if prefix { "prefix" } else { "name" };
            return Err(CapabilityError::new(
                i,
                c.len_utf8(),
                format!(
                    "`{}` is not allowed in a variable {what} (letters, digits and `_`, \
                     not starting with a digit; `*` only at the end)",
                    c.escape_default()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matching() {
        let p = EnvPattern::parse("APP_*").expect("valid");
        assert!(p.matches("APP_X"));
        assert!(!p.matches("APP_"));
        assert!(!p.matches("app_x"));
        assert_eq!(p.to_string(), "APP_*");
        assert!(
            EnvPattern::parse("APP_DB_*")
                .expect("valid")
                .is_subset_of(&p)
        );
        assert!(!p.is_subset_of(&EnvPattern::parse("APP_X").expect("valid")));
        assert!(EnvPattern::parse("*").is_err());
        assert!(EnvPattern::parse("A*B").is_err());
        assert!(EnvPattern::parse("1A").is_err());
    }

    #[test]
    fn the_fast_name_check_agrees_with_the_full_one() {
        for name in [
            "", "A", "_", "a1", "APP_MODE", "1A", "A-B", "A B", "É", "AÉ", "A\0", "A*", "_9",
        ] {
            assert_eq!(
                is_plain_name(name.as_bytes()),
                check_chars(name, false).is_ok() && !name.is_empty(),
                "{name:?}"
            );
            assert_eq!(
                check_name(name).is_ok(),
                is_plain_name(name.as_bytes()),
                "{name:?}"
            );
        }
    }
}
