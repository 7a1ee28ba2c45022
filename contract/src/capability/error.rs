//! The error every capability parse reports: a byte span and what was
//! expected there.

/// A capability pattern or request that does not parse.
///
/// `offset` and `len` locate the offending bytes in the input so callers can
/// underline them (the CLI prints a caret, the macros point a span into the
/// string literal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset})")]
pub struct CapabilityError {
    /// Byte offset of the offending text in the parsed input.
    pub offset: usize,
    /// Length in bytes of the offending text; 0 only when something is
    /// missing at the end of the input.
    pub len: usize,
    message: String,
    expected: Vec<&'static str>,
}

impl CapabilityError {
    pub(crate) fn new(offset: usize, len: usize, message: impl Into<String>) -> Self {
        CapabilityError {
            offset,
            len,
            message: message.into(),
            expected: Vec::new(),
        }
    }

    /// Records the list of valid alternatives at this place.
    pub(crate) fn with_expected(mut self, expected: &[&'static str]) -> Self {
        self.expected = expected.to_vec();
        self
    }

    /// Moves the span right by `by` bytes: errors found in a part of the
    /// input are reported relative to the whole input.
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }

    /// Keeps the span inside an input of `len` bytes: a part missing at
    /// the end (an empty port or prefix length, which the part's own
    /// parser underlines as one byte) becomes an empty span at the end.
    pub(crate) fn within(mut self, len: usize) -> Self {
        self.offset = self.offset.min(len);
        self.len = self.len.min(len - self.offset);
        self
    }

    /// What went wrong and what was expected, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The valid alternatives at this place (domain or action names, log
    /// levels), empty when the error is not about a choice among names.
    pub fn expected(&self) -> &[&'static str] {
        &self.expected
    }
}

/// Shorthand for the parsers of this module.
pub(crate) type Result<T> = std::result::Result<T, CapabilityError>;
