//! Finding the manifest inside a wasm binary.

use wasmparser::{Parser, Payload};

use super::{MANIFEST_SECTION, Manifest, ManifestError};

impl Manifest {
    /// Reads the manifest from the [`MANIFEST_SECTION`] custom section of a
    /// core module or a component, wherever it sits: at the top level or
    /// inside a nested core module or component.
    ///
    /// Returns `Ok(None)` when the binary has no such section. Several
    /// identical sections (the linker may copy one) count as one.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Wasm`] when the binary is malformed,
    /// [`ManifestError::Decode`] when the section is corrupt, and
    /// [`ManifestError::ConflictingSections`] when two sections disagree.
    pub fn from_wasm(bytes: &[u8]) -> Result<Option<Manifest>, ManifestError> {
        let mut found: Option<Manifest> = None;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| ManifestError::Wasm(e.to_string()))?;
            let Payload::CustomSection(section) = payload else {
                continue;
            };
            if section.name() != MANIFEST_SECTION {
                continue;
            }
            let manifest = Manifest::decode(section.data())?;
            match &found {
                Some(previous) if *previous != manifest => {
                    return Err(ManifestError::ConflictingSections);
                }
                Some(_) => {}
                None => found = Some(manifest),
            }
        }
        Ok(found)
    }
}
