//! Reading a manifest from `Component.toml`, with line and column on every
//! error.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{
    MAX_CAPABILITIES, Manifest, ManifestError, check_capability_len, check_name, check_version,
    too_many_capabilities,
};
use crate::capability::Capability;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    component: RawComponent,
    #[serde(default)]
    capabilities: RawCapabilities,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    name: Spanned<String>,
    version: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    optional: Vec<Spanned<String>>,
}

impl Manifest {
    /// Reads a manifest from the text of a `Component.toml`.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Toml`] with the line and column of the first
    /// problem: invalid TOML, a missing or unknown key (the message lists
    /// the valid keys), an invalid, over-long or reserved name, an invalid
    /// or over-long version, more than
    /// [`MAX_CAPABILITIES`] capabilities (at the
    /// first one over), an invalid or over-long capability (pointing at
    /// the offending character inside the string), or a capability listed
    /// twice or both required and optional.
    ///
    /// # Examples
    ///
    /// ```
    /// # use airssys_contract::manifest::Manifest;
    /// let m = Manifest::from_toml_str(
    ///     "[component]\nname = \"counter\"\nversion = \"0.1.0\"\n\
    ///      [capabilities]\nrequires = [\"log:write\"]\n",
    /// )?;
    /// assert_eq!(m.requires[0].to_string(), "log:write");
    /// # Ok::<(), airssys_contract::manifest::ManifestError>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Manifest, ManifestError> {
        let at = |span: Range<usize>, message: String| toml_error(text, span.start, message);
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset..offset, e.message().trim_end().to_owned())
        })?;

        let name = &raw.component.name;
        check_name(name.get_ref()).map_err(|m| at(name.span(), m))?;
        let version = &raw.component.version;
        check_version(version.get_ref()).map_err(|m| at(version.span(), m))?;

        let caps = &raw.capabilities;
        if let Some(over) = caps
            .requires
            .iter()
            .chain(&caps.optional)
            .nth(MAX_CAPABILITIES)
        {
            let count = caps.requires.len() + caps.optional.len();
            return Err(at(over.span(), too_many_capabilities(count)));
        }
        let requires = parse_list(text, &raw.capabilities.requires)?;
        let optional = parse_list(text, &raw.capabilities.optional)?;
        check_duplicates(text, &raw.capabilities, &requires, &optional)?;

        Ok(Manifest {
            name: raw.component.name.into_inner(),
            version: raw.component.version.into_inner(),
            requires,
            optional,
        })
    }

    /// Reads a manifest from a `Component.toml` file.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Io`] when the file cannot be read; otherwise as
    /// [`Manifest::from_toml_str`], with the path set.
    pub fn from_toml_file(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Manifest::from_toml_str(&text).map_err(|e| match e {
            ManifestError::Toml {
                line,
                column,
                message,
                ..
            } => ManifestError::Toml {
                path: Some(path.to_owned()),
                line,
                column,
                message,
            },
            other => other,
        })
    }
}

impl Manifest {
    /// The 1-based line and column where `capability` is written in the
    /// `Component.toml` text `text` (first occurrence, `requires` before
    /// `optional`); `None` when the text does not parse or does not list
    /// it. For messages about a manifest that did parse: a capability no
    /// imported function can use, say.
    pub fn locate_in_toml(text: &str, capability: &Capability) -> Option<(u32, u32)> {
        let raw: RawManifest = toml::from_str(text).ok()?;
        raw.capabilities
            .requires
            .iter()
            .chain(&raw.capabilities.optional)
            .find(|item| Capability::parse(item.get_ref()).ok().as_ref() == Some(capability))
            .map(|item| line_column(text, item.span().start))
    }
}

/// Parses each capability string, pointing an error at the offending
/// character inside the string literal.
fn parse_list(text: &str, items: &[Spanned<String>]) -> Result<Vec<Capability>, ManifestError> {
    items
        .iter()
        .map(|item| {
            check_capability_len(item.get_ref())
                .map_err(|m| toml_error(text, item.span().start, m))?;
            Capability::parse(item.get_ref()).map_err(|e| {
                let offset = offset_in_literal(text, item.span(), item.get_ref(), e.offset);
                toml_error(
                    text,
                    offset,
                    format!("invalid capability `{}`: {}", item.get_ref(), e.message()),
                )
            })
        })
        .collect()
}

/// Rejects a capability listed twice in one list or in both lists, at the
/// second occurrence. One pass with a hash map per list: linear in the
/// number of capabilities.
fn check_duplicates(
    text: &str,
    raw: &RawCapabilities,
    requires: &[Capability],
    optional: &[Capability],
) -> Result<(), ManifestError> {
    let lists = [
        ("requires", &raw.requires, requires),
        ("optional", &raw.optional, optional),
    ];
    let mut required: HashMap<&Capability, usize> = HashMap::new();
    for (key, spans, caps) in lists {
        let mut seen: HashMap<&Capability, usize> = HashMap::with_capacity(caps.len());
        for (i, cap) in caps.iter().enumerate() {
            if let Some(&first) = seen.get(cap) {
                let (line, _) = line_column(text, spans[first].span().start);
                return Err(toml_error(
                    text,
                    spans[i].span().start,
                    format!("capability `{cap}` is listed twice in `{key}` (first on line {line})"),
                ));
            }
            seen.insert(cap, i);
        }
        if key == "requires" {
            required = seen;
        }
    }
    for (i, cap) in optional.iter().enumerate() {
        if let Some(&first) = required.get(cap) {
            let (line, _) = line_column(text, raw.requires[first].span().start);
            return Err(toml_error(
                text,
                raw.optional[i].span().start,
                format!(
                    "capability `{cap}` is both required (line {line}) and optional; list it once"
                ),
            ));
        }
    }
    Ok(())
}

/// The byte offset in `text` of byte `offset` of the string `value`, whose
/// literal (quotes included) spans `span`. When the literal holds escapes
/// the offsets do not line up, so the literal's start is used.
fn offset_in_literal(text: &str, span: Range<usize>, value: &str, offset: usize) -> usize {
    let Some(literal) = text.get(span.clone()) else {
        return span.start;
    };
    for quote in ["\"\"\"", "'''", "\"", "'"] {
        if let Some(inner) = literal
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            if inner == value {
                return span.start + quote.len() + offset.min(value.len());
            }
            break;
        }
    }
    span.start
}

fn toml_error(text: &str, offset: usize, message: String) -> ManifestError {
    let (line, column) = line_column(text, offset);
    ManifestError::Toml {
        path: None,
        line,
        column,
        message,
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}
