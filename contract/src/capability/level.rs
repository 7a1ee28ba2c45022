//! Log levels: the resource of `log:write`.

use std::fmt;

use super::error::{CapabilityError, Result};

/// A log level, ordered from the most verbose to the most severe.
///
/// As a pattern resource (`log:write:warn`) it is a floor: records at that
/// level or above. As a request resource it is the record's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warn`
    Warn,
    /// `error`
    Error,
}

impl LogLevel {
    /// Every level, from the lowest.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
    ];

    const NAMES: [&'static str; 5] = ["trace", "debug", "info", "warn", "error"];

    /// The level's name as written in a capability.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Parses a level name (lower case); errors list the valid names.
    pub(crate) fn parse(text: &str) -> Result<LogLevel> {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == text)
            .ok_or_else(|| {
                CapabilityError::new(
                    0,
                    text.len().max(1),
                    format!(
                        "unknown log level `{text}`; expected one of {}",
                        Self::NAMES.join(", ")
                    ),
                )
                .with_expected(&Self::NAMES)
            })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_order() {
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::parse(l.as_str()), Ok(l));
        }
        assert!(LogLevel::Warn > LogLevel::Info);
        let err = LogLevel::parse("WARN").expect_err("case-sensitive");
        assert_eq!(err.expected().len(), 5);
    }
}
