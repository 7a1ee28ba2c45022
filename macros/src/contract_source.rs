//! Where both macros get the WIT contract: the copy embedded in
//! `airssys-contract`, or a `wit = ".."` directory beside the user's crate.
//!
//! The embedded contract is parsed once per compiler process (it sits in a
//! `OnceLock` of the contract crate) and needs no tracking: it changes only
//! with the crate. A directory is read at each expansion and every file it
//! resolved is returned, so the expansion can track it with
//! `include_bytes!` and an edit of the WIT rebuilds the crate.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use airssys_contract::model::{Contract, ContractError};
use syn::LitStr;

/// The contract an expansion works from.
pub(crate) enum ContractSource {
    /// `Contract::embedded()`: nothing to track.
    Embedded(&'static Contract),
    /// A user's directory, with every file read.
    Dir(Box<Contract>, Vec<PathBuf>),
}

impl Deref for ContractSource {
    type Target = Contract;
    fn deref(&self) -> &Contract {
        match self {
            ContractSource::Embedded(c) => c,
            ContractSource::Dir(c, _) => c,
        }
    }
}

impl ContractSource {
    /// The files to track with `include_bytes!` (absolute paths).
    pub(crate) fn tracked(&self) -> &[PathBuf] {
        match self {
            ContractSource::Embedded(_) => &[],
            ContractSource::Dir(_, files) => files,
        }
    }
}

/// Loads the contract: the embedded one when `wit` is `None`, otherwise
/// the directory the `wit = ".."` literal names, relative to
/// `manifest_dir` (the crate's `CARGO_MANIFEST_DIR`).
///
/// # Errors
///
/// A `syn::Error` on the `wit` literal; invalid WIT keeps wit-parser's
/// rendering with the file and line.
pub(crate) fn load(wit: Option<&LitStr>, manifest_dir: &Path) -> syn::Result<ContractSource> {
    let Some(lit) = wit else {
        return Ok(ContractSource::Embedded(Contract::embedded()));
    };
    let dir = manifest_dir.join(lit.value());
    // Canonical paths keep messages free of `..` (and stable in tests).
    let dir = canonical(&dir);
    match Contract::load_dir(&dir) {
        Ok(contract) => {
            let files = contract
                .resolve()
                .source_map
                .source_files()
                .map(|p| absolute(manifest_dir, p))
                .collect();
            Ok(ContractSource::Dir(Box::new(contract), files))
        }
        Err(e) => Err(syn::Error::new(lit.span(), message(lit, &dir, &e))),
    }
}

/// `path` with its longest existing ancestor made canonical (links
/// followed, no `..`), the rest appended: a path that does not exist is
/// still shown where it would be.
pub(crate) fn canonical(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut base = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(base) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                base = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn message(lit: &LitStr, dir: &Path, e: &ContractError) -> String {
    match e {
        ContractError::NotADirectory { .. } => format!(
            "WIT directory `{}` not found (resolved to `{}`); `wit = \"..\"` is relative to \
             the crate's Cargo.toml, or leave it out to use the contract shipped with airssys",
            lit.value(),
            dir.display()
        ),
        ContractError::Wit { message, .. } => {
            format!("invalid WIT in `{}`:\n{message}", lit.value())
        }
        other => format!("cannot load WIT `{}`: {other}", lit.value()),
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn repo_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default()
    }

    #[test]
    fn embedded_contract_tracks_nothing() {
        let source = load(None, Path::new("/nowhere")).expect("embedded contract");
        assert!(source.tracked().is_empty());
        assert!(!source.worlds().is_empty());
    }

    #[test]
    fn directory_tracks_every_file_read() {
        let lit: LitStr = parse_quote!("tests/fixtures/wit/small");
        let source = load(Some(&lit), &repo_root()).expect("small fixture loads");
        assert!(!source.tracked().is_empty());
        assert!(
            source
                .tracked()
                .iter()
                .all(|p| p.is_absolute() && p.exists()),
            "{:?}",
            source.tracked()
        );
    }

    #[test]
    fn missing_directory_says_where_it_looked() {
        let lit: LitStr = parse_quote!("no/such/wit");
        let Err(e) = load(Some(&lit), Path::new("/crate")) else {
            panic!("a missing directory must not load");
        };
        let text = e.to_string();
        assert!(text.contains("`no/such/wit` not found"), "{text}");
        assert!(text.contains("/crate/no/such/wit"), "{text}");
    }

    #[test]
    fn invalid_wit_keeps_file_and_line() {
        let lit: LitStr = parse_quote!("tests/fixtures/wit/invalid");
        let Err(e) = load(Some(&lit), &repo_root()) else {
            panic!("invalid WIT must not load");
        };
        let text = e.to_string();
        assert!(text.starts_with("invalid WIT in"), "{text}");
        assert!(text.contains("greeter.wit:"), "{text}");
    }
}
