//! "Did you mean ..." for names a person typed: the macros' unknown keys
//! and functions, the CLI's unknown component names.

/// The candidate closest to `word` within a small edit distance
/// (Levenshtein over chars, at most a third of `word`'s length, at least
/// one); the first of equally close ones.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest("gett", ["get", "set", "delete"]), Some("get"));
        assert_eq!(
            closest("interfce", ["interface", "wit", "crate"]),
            Some("interface")
        );
        assert_eq!(closest("zzzzzz", ["get", "set"]), None);
        // Within a third of the word's length: 3 edits for 7 letters is too
        // many, 2 is not.
        assert_eq!(closest("sittign", ["kitten"]), None);
        assert_eq!(closest("kittne", ["kitten"]), Some("kitten"));
        assert_eq!(closest("x", []), None);
    }
}
