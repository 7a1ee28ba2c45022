//! The manifest inside a wasm binary: finding it, and attaching one to a
//! component built by any toolchain (`airssys manifest attach`).

use wasmparser::{BinaryReader, KnownCustom, Parser, Payload};

use super::{MANIFEST_SECTION, Manifest, ManifestError};

/// Where an `airssys:manifest` section sits in a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In the outermost component (or module): where `airssys manifest
    /// attach` puts it.
    TopLevel,
    /// Inside a nested core module or component: where the Rust linker
    /// leaves the section `#[airssys::component]` emits.
    Nested,
}

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
        for (_, data) in manifest_sections(bytes)? {
            let manifest = Manifest::decode(data)?;
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

    /// Where the binary's [`MANIFEST_SECTION`] sections sit, in order.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Wasm`] when the binary is malformed.
    pub fn placements(bytes: &[u8]) -> Result<Vec<Placement>, ManifestError> {
        Ok(manifest_sections(bytes)?
            .into_iter()
            .map(|(placement, _)| placement)
            .collect())
    }

    /// `component` with this manifest in a [`MANIFEST_SECTION`] custom
    /// section at its top level, appended after everything else.
    ///
    /// Without `replace`, a binary that already carries a manifest section
    /// (anywhere) is refused; with it, every such section is removed first,
    /// nested ones included, so the result carries exactly this manifest.
    /// Nothing else changes: the other sections are copied byte for byte.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Invalid`] when the manifest breaks a rule,
    /// [`ManifestError::Wasm`] when `component` is not a wasm binary,
    /// [`ManifestError::AlreadyAttached`] when it has a manifest and
    /// `replace` is false.
    pub fn attach(&self, component: &[u8], replace: bool) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let sections = manifest_sections(component)?;
        if !sections.is_empty() && !replace {
            let existing = sections
                .iter()
                .find_map(|(_, data)| Manifest::decode(data).ok())
                .map(|m| format!("`{}` {}", m.name, m.version));
            return Err(ManifestError::AlreadyAttached { existing });
        }
        let mut out = if sections.is_empty() {
            component.to_vec()
        } else {
            strip(component, 0)?.0
        };
        let encoded = self.encode();
        let mut payload = Vec::with_capacity(encoded.len() + MANIFEST_SECTION.len() + 5);
        put_leb(&mut payload, MANIFEST_SECTION.len());
        payload.extend_from_slice(MANIFEST_SECTION.as_bytes());
        payload.extend_from_slice(&encoded);
        out.push(0); // custom section
        put_leb(&mut out, payload.len());
        out.extend_from_slice(&payload);
        Ok(out)
    }
}

/// Every [`MANIFEST_SECTION`] of `bytes`, at any depth, with its data.
fn manifest_sections(bytes: &[u8]) -> Result<Vec<(Placement, &[u8])>, ManifestError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ManifestError::Wasm(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                // `End` of the outermost binary brings depth back to 0;
                // a section of the outermost binary is seen at depth 0.
                let placement = if depth == 0 {
                    Placement::TopLevel
                } else {
                    Placement::Nested
                };
                out.push((placement, section.data()));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The languages the binary's `producers` sections name (`Rust`,
/// `Python`, `JavaScript`, `C11`, ...), at any depth, without repeats.
///
/// # Errors
///
/// [`ManifestError::Wasm`] when the binary is malformed.
pub fn languages(bytes: &[u8]) -> Result<Vec<String>, ManifestError> {
    let mut out: Vec<String> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ManifestError::Wasm(e.to_string()))?;
        let Payload::CustomSection(section) = payload else {
            continue;
        };
        let KnownCustom::Producers(reader) = section.as_known() else {
            continue;
        };
        for field in reader.into_iter().flatten() {
            if field.name != "language" {
                continue;
            }
            for value in field.values.into_iter().flatten() {
                if !out.iter().any(|l| l == value.name) {
                    out.push(value.name.to_owned());
                }
            }
        }
    }
    Ok(out)
}

/// The deepest nesting of modules and components [`strip`] walks, so a
/// hostile binary cannot overflow the stack: the runtime's own limit
/// (a component nested deeper does not load; real ones nest a few levels).
const MAX_NESTING: usize = 100;

/// `bytes` (a module or component, `depth` levels down) without its
/// [`MANIFEST_SECTION`] sections, nested ones included, and how many were
/// removed. Sections are walked by their headers, so everything else is
/// copied as it is.
fn strip(bytes: &[u8], depth: usize) -> Result<(Vec<u8>, usize), ManifestError> {
    let wasm = |e: wasmparser::BinaryReaderError| ManifestError::Wasm(e.to_string());
    if depth > MAX_NESTING {
        return Err(ManifestError::Wasm(format!(
            "modules and components nested more than {MAX_NESTING} deep (the runtime loads \
             none nested deeper; real components nest a few levels)"
        )));
    }
    let is_component = Parser::is_component(bytes);
    if !is_component && !Parser::is_core_wasm(bytes) {
        return Err(ManifestError::Wasm(
            "not a WebAssembly module or component (no wasm header)".to_owned(),
        ));
    }
    let mut reader = BinaryReader::new(bytes, 0);
    let header = reader.read_bytes(8).map_err(wasm)?;
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(header);
    let mut removed = 0;
    while !reader.eof() {
        let start = reader.current_position();
        let id = reader.read_u8().map_err(wasm)?;
        let size = reader.read_var_u32().map_err(wasm)?;
        let size = usize::try_from(size)
            .map_err(|_| ManifestError::Wasm("section too large".to_owned()))?;
        let payload = reader.read_bytes(size).map_err(wasm)?;
        let whole = &bytes[start..reader.current_position()];
        match id {
            0 if custom_name(payload) == Some(MANIFEST_SECTION) => removed += 1,
            // A component's core module (1) and nested component (4)
            // sections hold whole binaries.
            1 | 4 if is_component => {
                let (inner, n) = strip(payload, depth + 1)?;
                if n == 0 {
                    out.extend_from_slice(whole);
                } else {
                    removed += n;
                    out.push(id);
                    put_leb(&mut out, inner.len());
                    out.extend_from_slice(&inner);
                }
            }
            _ => out.extend_from_slice(whole),
        }
    }
    Ok((out, removed))
}

/// The name of a custom section, from its payload.
fn custom_name(payload: &[u8]) -> Option<&str> {
    BinaryReader::new(payload, 0).read_string().ok()
}

/// Appends `n` as an unsigned LEB128 (the sizes here are below 4 GiB;
/// also used to write the signature section).
pub(crate) fn put_leb(out: &mut Vec<u8>, n: usize) {
    let mut n = n as u64;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(name: &str) -> Manifest {
        Manifest::from_toml_str(&format!(
            "[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n[capabilities]\n\
             requires = [\"log:write\"]\n"
        ))
        .expect("valid")
    }

    /// A component nesting a core module that carries `section`.
    fn component_with_nested(section: Option<&Manifest>) -> Vec<u8> {
        let mut module = wasm_encoder::Module::new();
        if let Some(m) = section {
            module.section(&wasm_encoder::CustomSection {
                name: MANIFEST_SECTION.into(),
                data: m.encode().into(),
            });
        }
        let mut component = wasm_encoder::Component::new();
        component.section(&wasm_encoder::ModuleSection(&module));
        component.finish()
    }

    #[test]
    fn attach_puts_the_section_at_the_top_and_reads_back() {
        let bytes = component_with_nested(None);
        let m = manifest("app");
        let out = m.attach(&bytes, false).expect("attached");
        assert_eq!(Manifest::from_wasm(&out).expect("reads"), Some(m));
        assert_eq!(
            Manifest::placements(&out).expect("parses"),
            [Placement::TopLevel]
        );
        assert!(
            out.starts_with(&bytes),
            "everything else is copied as it is"
        );
        wasmparser::Validator::new()
            .validate_all(&out)
            .expect("still a valid component");
    }

    #[test]
    fn an_existing_manifest_is_replaced_only_when_asked() {
        let old = manifest("old");
        let bytes = component_with_nested(Some(&old));
        let new = manifest("new");
        let err = new.attach(&bytes, false).expect_err("refused");
        assert!(err.to_string().contains("`old` 0.1.0"), "{err}");

        let out = new.attach(&bytes, true).expect("replaced");
        assert_eq!(
            Manifest::placements(&out).expect("parses"),
            [Placement::TopLevel]
        );
        assert_eq!(Manifest::from_wasm(&out).expect("reads"), Some(new.clone()));
        wasmparser::Validator::new()
            .validate_all(&out)
            .expect("still a valid component");
        // Replacing again leaves one section.
        let again = new.attach(&out, true).expect("replaced");
        assert_eq!(Manifest::placements(&again).expect("parses").len(), 1);
    }

    #[test]
    fn attach_refuses_what_is_not_wasm() {
        let m = manifest("app");
        assert!(matches!(
            m.attach(b"not wasm", false),
            Err(ManifestError::Wasm(_))
        ));
    }

    /// A hostile binary nesting components far deeper than any valid one
    /// (each level costs 10 bytes) is refused by name when its manifest is
    /// replaced, instead of overflowing the stack.
    #[test]
    fn replacing_in_a_binary_nested_too_deep_is_an_error_not_a_stack_overflow() {
        let m = manifest("deep");
        let mut bytes = component_with_nested(Some(&m));
        // 2 MiB of stack, as a test thread (and a small CLI thread) has.
        let nested = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                for _ in 0..20_000 {
                    let mut outer = wasm_encoder::Component::new();
                    outer.section(&wasm_encoder::RawSection {
                        id: 4,
                        data: &bytes,
                    });
                    bytes = outer.finish();
                }
                m.attach(&bytes, true).map(|out| out.len())
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
        let err = nested.expect_err("refused");
        assert!(
            err.to_string().contains("nested more than 100 deep"),
            "{err}"
        );
    }
}
